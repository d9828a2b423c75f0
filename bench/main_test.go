package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/bench/load"
	serverconfig "github.com/vigil-secrets/vigil/internal/config"
)

// The generated configuration is one the server accepts, and lifts the
// login rate limit out of the measurement's way.
func TestVigilConfig(t *testing.T) {
	for _, storage := range []string{"bolt", "inmem"} {
		src := vigilConfig(storage, t.TempDir(), "127.0.0.1:8299", storage == "bolt")
		cfg, err := serverconfig.Parse("vigil.hcl", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v\n%s", storage, err, src)
		}
		if cfg.LoginRateLimit != 1000000 || cfg.LoginBurst != 1000000 {
			t.Errorf("%s: login_rate_limit %d, login_burst %d", storage, cfg.LoginRateLimit, cfg.LoginBurst)
		}
		if len(cfg.Listeners) != 1 || cfg.LogLevel != "error" || (len(cfg.Audit) == 1) != (storage == "bolt") {
			t.Errorf("%s: %+v", storage, cfg)
		}
	}
}

// run against the real server, briefly: every scenario is set up and
// measured without a single error, and the report has every ratio.
func TestRunAllScenarios(t *testing.T) {
	c := config{
		concurrency: 4, duration: 2 * load.MinSlice, rounds: 2, warmup: 0,
		keys: 20, valueSize: 32, storage: "bolt", scenarios: load.Scenarios,
	}
	rep, err := run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Name)
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors; first: %s", r.Name, r.Requests, r.Errors, r.FirstError)
		}
	}
	if strings.Join(names, ",") != strings.Join(load.Scenarios, ",") {
		t.Errorf("scenarios %q", names)
	}
	if len(rep.Ratios) != len(load.Ratios) {
		t.Errorf("%d ratios, want %d: %+v", len(rep.Ratios), len(load.Ratios), rep.Ratios)
	}
	if rep.KVReadBodyBytes == 0 {
		t.Error("no kv2 read body size")
	}
}

// A subset runs only its scenarios and needs only their setup.
func TestRunSubset(t *testing.T) {
	for _, login := range []string{load.AppRoleLogin, load.JWTLoginRS256} {
		t.Run(login, func(t *testing.T) {
			names, err := load.ParseScenarios(login + ",bare POST")
			if err != nil {
				t.Fatal(err)
			}
			c := config{
				concurrency: 4, duration: 100 * time.Millisecond, rounds: 1, warmup: 0,
				keys: 1000000, valueSize: 32, storage: "inmem", scenarios: names, // keys: not preloaded
			}
			rep, err := run(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != 2 || rep.Results[0].Name != load.BarePOST || rep.Results[1].Name != login {
				t.Fatalf("results %+v", rep.Results)
			}
			for _, r := range rep.Results {
				if r.Requests == 0 || r.Errors != 0 {
					t.Errorf("%s: %d requests, %d errors; first: %s", r.Name, r.Requests, r.Errors, r.FirstError)
				}
			}
			if len(rep.Ratios) != 1 || rep.Ratios[0].Num != login || rep.KVReadBodyBytes != 0 {
				t.Errorf("ratios %+v, kv2 read body %d B", rep.Ratios, rep.KVReadBodyBytes)
			}
		})
	}
}

// The JWTs outlive the longest run the configuration allows by an hour.
func TestJWTLifetime(t *testing.T) {
	c := config{duration: 10 * time.Minute, rounds: 20, warmup: 30 * time.Second, scenarios: load.Scenarios}
	run := time.Duration(len(load.Scenarios)) * (c.duration + c.warmup + time.Duration(c.rounds)*load.Rewarmup)
	if got := jwtLifetime(c); got < run+time.Hour {
		t.Errorf("jwtLifetime = %v for a run of up to %v", got, run)
	}
}
