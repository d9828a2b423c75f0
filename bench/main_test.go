package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/bench/load"
	serverconfig "github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// The database and HA scenarios run against a throwaway PostgreSQL
// server shared by the tests (or VIGIL_TEST_PG_URL's), each test in a
// database of its own and with a prefix of its own. The HA cluster's
// servers are this test binary run again, as the benchmark's binary is
// (see serverArg).
func TestMain(m *testing.M) {
	if isServerChild(os.Args) {
		os.Exit(serveChild(os.Args[2:]))
	}
	pgtest.Main(m)
}

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

// An HA server's configuration is one the server accepts: HA storage on
// PostgreSQL, its listener's address as api_addr, and a static seal,
// with neither the storage's URL (a credential) nor the seal's key in
// the file.
func TestHAConfig(t *testing.T) {
	src := haConfig("127.0.0.1:8299")
	cfg, err := serverconfig.Parse("vigil.hcl", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if p := cfg.Storage.Postgres; p == nil || !p.HAEnabled || p.ConnectionURL != "" {
		t.Errorf("storage %+v", cfg.Storage)
	}
	if cfg.APIAddr != "http://127.0.0.1:8299" || len(cfg.Listeners) != 1 || cfg.Listeners[0].Address != "127.0.0.1:8299" || !cfg.Listeners[0].TLSDisable {
		t.Errorf("api_addr %q, listeners %+v", cfg.APIAddr, cfg.Listeners)
	}
	if st := cfg.Seal.Static; st == nil || st.CurrentKey != "env://"+sealKeyEnv || cfg.LogLevel != "error" {
		t.Errorf("seal %+v, log level %q", cfg.Seal, cfg.LogLevel)
	}
}

// run against the real server, briefly: every scenario is set up and
// measured without a single error, and the report has every ratio. The
// HA scenarios, which start processes, are TestRunHA's.
func TestRunAllScenarios(t *testing.T) {
	scenarios := slices.DeleteFunc(slices.Clone(load.Scenarios), func(n string) bool { return slices.Contains(load.HAScenarios, n) })
	c := config{
		concurrency: 4, duration: 2 * load.MinSlice, rounds: 2, warmup: 0,
		keys: 20, valueSize: 32, storage: "bolt", scenarios: scenarios,
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
	if strings.Join(names, ",") != strings.Join(scenarios, ",") {
		t.Errorf("scenarios %q", names)
	}
	if want := len(load.Ratios) - 2; len(rep.Ratios) != want { // all but the HA ones
		t.Errorf("%d ratios, want %d: %+v", len(rep.Ratios), want, rep.Ratios)
	}
	if rep.HAPostgreSQL != "" || rep.Failover != nil {
		t.Errorf("an HA cluster without the HA scenarios: %q, %+v", rep.HAPostgreSQL, rep.Failover)
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
	pg := slices.Concat(load.DatabaseScenarios, load.HAScenarios)
	nonPG := slices.DeleteFunc(slices.Clone(load.Scenarios), func(n string) bool { return slices.Contains(pg, n) })
	for _, c := range []struct {
		name              string
		list              string
		explicit, havePG  bool
		want, wantSkipped []string
		wantErr           string
	}{
		{"default with a server", all, false, true, load.Scenarios, nil, ""},
		{"default without", all, false, false, nonPG, pg, ""},
		{"asked for, with a server", "db creds", true, true, []string{load.DBCreds}, nil, ""},
		{"asked for, without", "bare POST,db creds", true, false, nil, nil, "db creds needs a PostgreSQL server: give -pg-url"},
		{"both asked for, without", "pg create/drop,db creds", true, false, nil, nil, "pg create/drop and db creds need a PostgreSQL server"},
		{"HA asked for, with a server", "kv2 write standby,bare GET", true, true, []string{load.BareGET, load.KV2WriteStandby}, nil, ""},
		{"HA asked for, without", "kv2 read standby", true, false, nil, nil, "kv2 read standby needs a PostgreSQL server: give -pg-url"},
		{"three asked for, without", "kv2 read active,db creds,kv2 write active", true, false, nil, nil, "db creds, kv2 read active and kv2 write active need a PostgreSQL server"},
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

// The HA scenarios and the failover measurement against two real server
// processes on PostgreSQL, briefly (one kill): every scenario measured
// without an error, the ratio lines printed, failover times that are
// times, and nothing left on the server: no database, no server process.
func TestRunHA(t *testing.T) {
	c := config{
		concurrency: 4, duration: 2 * load.MinSlice, rounds: 2, warmup: 20 * time.Millisecond,
		keys: 20, valueSize: 32, storage: "inmem", scenarios: load.HAScenarios, failover: 1,
	}
	db := withPG(t, &c)
	rep, err := run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if n := db.QueryString(t, "SELECT count(*)::text FROM pg_database WHERE datname = $1", c.pgPrefix+"_ha"); n != "0" {
		t.Errorf("database %s_ha left behind", c.pgPrefix)
	}
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Name)
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors; first: %s", r.Name, r.Requests, r.Errors, r.FirstError)
		}
	}
	if strings.Join(names, ",") != strings.Join(load.HAScenarios, ",") {
		t.Errorf("scenarios %q", names)
	}
	if rep.HAPostgreSQL == "" || rep.HAServers != 2 {
		t.Errorf("ha: postgresql %q, %d servers", rep.HAPostgreSQL, rep.HAServers)
	}
	f := rep.Failover
	if f == nil || len(f.Kills) != 1 || f.Kills[0] <= 0 || f.Frozen <= 0 {
		t.Fatalf("failover %+v", f)
	}
	t.Logf("failover after kill -9: %v; after SIGSTOP: %v", f.Kills[0], f.Frozen)
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	s := text.String()
	for _, want := range []string{
		"\nha: 2 vigil server processes (1 active, 1 standby) on postgresql " + rep.HAPostgreSQL + ", in a database of their own\n",
		"\nkv2 read standby / kv2 read active = ", "\nkv2 write standby / kv2 write active = ",
		"\nper round, min–max of 2: kv2 read standby / kv2 read active ",
		"\nfailover after kill -9 of the active server, 1 time: ", "\nfailover median = ", "\nfailover frozen = ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, db.Password) || strings.Contains(s, "database engine") {
		t.Errorf("the report shows the admin password, or database scenarios that did not run:\n%s", s)
	}
	if n := childServers(t); n != 0 {
		t.Errorf("%d server processes left running", n)
	}
}

// childServers counts the HA cluster's server processes that this
// process started and that still run (Linux: it reads /proc).
func childServers(t *testing.T) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		t.Log("no /proc: server processes not counted")
		return 0
	}
	n := 0
	for _, stat := range stats {
		b, err := os.ReadFile(stat)
		if err != nil {
			continue // gone since
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := bytes.LastIndex(b, []byte(") "))
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+2:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(stat), "cmdline"))
		if bytes.Contains(cmdline, []byte(serverArg)) {
			n++
		}
	}
	return n
}
