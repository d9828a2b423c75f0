package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/bench/load"
	serverconfig "github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// The database scenarios run against a throwaway PostgreSQL server shared
// by the tests (or VIGIL_TEST_PG_URL's), each test in a database of its
// own and with a prefix of its own.
func TestMain(m *testing.M) { pgtest.Main(m) }

// withPG points c at a database of t's own with a prefix of t's own.
func withPG(t *testing.T, c *config) *pgtest.DB {
	t.Helper()
	db := pgtest.New(t)
	c.pgURL, c.pgConns, c.pgPrefix = db.AdminURL(), 3, load.NewPGPrefix()
	return db
}

// checkNoRoles fails t if a role whose name begins with prefix is left
// on db's server, or the run's schema in db.
func checkNoRoles(t *testing.T, db *pgtest.DB, prefix string) {
	t.Helper()
	if n := db.QueryString(t, "SELECT count(*)::text FROM pg_roles WHERE starts_with(rolname, $1)", prefix); n != "0" {
		t.Errorf("%s roles whose names begin with %q left behind", n, prefix)
	}
	if n := db.QueryString(t, "SELECT count(*)::text FROM pg_namespace WHERE nspname = $1", prefix); n != "0" {
		t.Errorf("schema %s left behind", prefix)
	}
}

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
	db := withPG(t, &c)
	rep, err := run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	checkNoRoles(t, db, c.pgPrefix)
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
	if rep.PostgreSQL == "" || rep.PGConns != 3 {
		t.Errorf("postgresql %q, %d connections", rep.PostgreSQL, rep.PGConns)
	}
}

// The two database scenarios alone: Vigil's credentials beside the
// baseline, their ratio printed, and nothing left on the server.
func TestRunDatabase(t *testing.T) {
	c := config{
		concurrency: 6, duration: 2 * load.MinSlice, rounds: 2, warmup: 20 * time.Millisecond,
		keys: 1000000, valueSize: 32, storage: "inmem", scenarios: load.DatabaseScenarios, // keys: not preloaded
	}
	db := withPG(t, &c)
	rep, err := run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	checkNoRoles(t, db, c.pgPrefix)
	if len(rep.Results) != 2 || rep.Results[0].Name != load.PGCreateDrop || rep.Results[1].Name != load.DBCreds {
		t.Fatalf("results %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d operations, %d errors; first: %s", r.Name, r.Requests, r.Errors, r.FirstError)
		}
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	s := text.String()
	if strings.Count(s, "\ndb creds / pg create/drop = ") != 1 || !strings.Contains(s, " (for information)\n") ||
		!strings.Contains(s, "\nper round, min–max of 2: db creds / pg create/drop ") ||
		!strings.Contains(s, "\npostgresql "+rep.PostgreSQL+", 3 connections for Vigil's database engine") {
		t.Errorf("report:\n%s", s)
	}
	if strings.Contains(s, db.Password) {
		t.Errorf("the report shows the admin password:\n%s", s)
	}

	// A server that cannot be reached fails the setup, without the
	// password, and leaves nothing behind.
	bad := c
	bad.pgURL = strings.Replace(c.pgURL, ":"+db.Password+"@", ":wrong-"+db.Password+"@", 1)
	if _, err := run(t.Context(), bad); err == nil || strings.Contains(err.Error(), db.Password) {
		t.Errorf("wrong admin password: err = %v", err)
	}
	checkNoRoles(t, db, c.pgPrefix)
}

// The database scenarios need a server: asked for without one, they are
// an error; left to the default list, they are skipped, and said to be.
func TestChooseScenarios(t *testing.T) {
	all := strings.Join(load.Scenarios, ",")
	nonDB := load.Scenarios[:len(load.Scenarios)-2]
	for _, c := range []struct {
		name              string
		list              string
		explicit, havePG  bool
		want, wantSkipped []string
		wantErr           string
	}{
		{"default with a server", all, false, true, load.Scenarios, nil, ""},
		{"default without", all, false, false, nonDB, load.DatabaseScenarios, ""},
		{"asked for, with a server", "db creds", true, true, []string{load.DBCreds}, nil, ""},
		{"asked for, without", "bare POST,db creds", true, false, nil, nil, "db creds needs a PostgreSQL server: give -pg-url"},
		{"both asked for, without", "pg create/drop,db creds", true, false, nil, nil, "pg create/drop and db creds need a PostgreSQL server"},
		{"others, without", "bare POST,approle login", true, false, []string{load.BarePOST, load.AppRoleLogin}, nil, ""},
		{"unknown", "db cred", true, true, nil, nil, "invalid -scenarios: unknown scenario"},
	} {
		got, skipped, err := chooseScenarios(c.list, c.explicit, c.havePG)
		if c.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.wantErr) {
				t.Errorf("%s: %q, %q, %v; want an error %q", c.name, got, skipped, err, c.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(c.want, ",") || strings.Join(skipped, ",") != strings.Join(c.wantSkipped, ",") {
			t.Errorf("%s: %q, skipped %q, %v; want %q, skipped %q", c.name, got, skipped, err, c.want, c.wantSkipped)
		}
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
