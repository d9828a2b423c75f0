package render

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/agent/watch"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// setupDatabase mounts the database engine at database/ with a
// connection "ml" to a database of the test's own, reached as a user of
// the test's own, and a role "reader" whose users live an hour (at most a
// day).
func setupDatabase(t *testing.T, root *api.Client) *pgtest.DB {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	admin, adminPW := db.CreateRole(t, "CREATEROLE")
	if err := root.Sys().Mount(ctx, "database", api.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string]map[string]any{
		"database/config/ml": {
			"plugin_name": "postgresql-database-plugin", "connection_url": db.TemplateURL(),
			"username": admin, "password": adminPW, "allowed_roles": "*",
		},
		"database/roles/reader": {
			"db_name":             "ml",
			"creation_statements": []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`},
			"default_ttl":         "1h", "max_ttl": "24h",
		},
	} {
		if _, err := root.Logical().Write(ctx, path, data); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
	}
	return db
}

// userOf reads the user name a creds template rendered ("user=NAME ...").
func userOf(s string) string {
	for _, f := range strings.Fields(s) {
		if u, ok := strings.CutPrefix(f, "user="); ok {
			return u
		}
	}
	return ""
}

// TestDynamicLease: two templates that read one dynamic secret get one
// user (one lease); the lease is renewed at two thirds of its life
// without a new rendering; a hint "" reads KV again but issues no new
// credentials; a lease the server no longer renews is replaced by new
// credentials; a new token renders everything again, with new
// credentials. A fake clock moves time.
func TestDynamicLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	db := setupDatabase(t, f.root)
	f.put(t, "app", map[string]any{"key": "kv-1"})
	clk := clock.NewFake(time.Now())
	o := f.options(t, f.srv.URL)
	o.Clock = clk
	o.Config.StaticSecretRenderInterval = 100 * time.Hour
	o.Watchers = []secretenv.Watcher{secretenv.Poller{Interval: 10 * time.Minute, Clock: clk}}
	creds := `{{ with secret "database/creds/reader" }}user={{ .Data.username }} password={{ .Data.password }}{{ end }}`
	o.Templates = []config.Template{
		fileTemplate(f.path("db.conf"), creds+` {{ with secret "secret/app" }}key={{ .Data.data.key }}{{ end }}`),
		fileTemplate(f.path("db2.conf"), creds),
	}
	r := newRunner(t, o)
	ctx, cancel := context.WithCancel(t.Context())
	ch := start(ctx, r)
	rendered(t, f, r)
	first := readFile(f.path("db.conf"))
	user := userOf(first)
	if user == "" || !strings.HasSuffix(first, " key=kv-1") || userOf(readFile(f.path("db2.conf"))) != user {
		t.Fatalf("rendered %q and %q", first, readFile(f.path("db2.conf")))
	}
	db.DropRoleAtEnd(t, user)
	leases, err := f.root.Sys().LeaseList(ctx, "database/creds/reader/")
	if err != nil || len(leases) != 1 {
		t.Fatalf("leases: %v, %v", leases, err)
	}

	// A hint "" (the poller) reads KV again, and keeps the lease.
	f.put(t, "app", map[string]any{"key": "kv-2"})
	waitFor(t, "the poller's ticker and the runner's timer", func() bool { return clk.Pending() >= 2 })
	clk.Advance(10 * time.Minute)
	waitFor(t, "kv-2", func() bool { return strings.HasSuffix(readFile(f.path("db.conf")), " key=kv-2") })
	if got := userOf(readFile(f.path("db.conf"))); got != user {
		t.Fatalf("a hint issued new credentials: %s, then %s", user, got)
	}

	// Renewed at two thirds of the hour.
	clk.Advance(31 * time.Minute)
	waitFor(t, "a renewal", func() bool { return f.logs.Count(`msg="lease renewed" path=database/creds/reader`) == 1 })
	if got := userOf(readFile(f.path("db.conf"))); got != user {
		t.Fatalf("a renewal rendered new credentials")
	}

	// Revoked behind the agent's back: the next renewal fails, and new
	// credentials are rendered in both files.
	if err := f.root.Sys().LeaseRevoke(ctx, "database/creds/reader/"+leases[0], true); err != nil {
		t.Fatal(err)
	}
	clk.Advance(41 * time.Minute)
	waitFor(t, "new credentials", func() bool {
		u := userOf(readFile(f.path("db.conf")))
		return u != "" && u != user && userOf(readFile(f.path("db2.conf"))) == u
	})
	second := userOf(readFile(f.path("db.conf")))
	db.DropRoleAtEnd(t, second)

	// A new token: everything is rendered again.
	r.TokenChanged()
	waitFor(t, "credentials for the new token", func() bool {
		u := userOf(readFile(f.path("db.conf")))
		return u != "" && u != second && userOf(readFile(f.path("db2.conf"))) == u
	})
	db.DropRoleAtEnd(t, userOf(readFile(f.path("db.conf"))))
	stop(t, f, cancel, ch)

	// No password in the messages.
	for _, p := range []string{f.path("db.conf"), f.path("db2.conf")} {
		for _, field := range strings.Fields(readFile(p)) {
			if pw, ok := strings.CutPrefix(field, "password="); ok {
				f.noValues(t, pw)
			}
		}
	}
	f.noValues(t, "kv-1", "kv-2")
}

// TestStaticRole: a static role's password is read again when its ttl
// ends (the rotation), with no hint and a static interval far longer; a
// rotation's change event re-renders at once.
func TestStaticRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	db := setupDatabase(t, f.root)
	name, _ := db.CreateRole(t, "")
	ctx := context.Background()
	if _, err := f.root.Logical().Write(ctx, "database/static-roles/svc", map[string]any{"db_name": "ml", "username": name, "rotation_period": "24h"}); err != nil {
		t.Fatal(err)
	}
	tmpl := fileTemplate(f.path("static.conf"), `{{ with secret "database/static-creds/svc" }}{{ .Data.username }}:{{ .Data.password }}{{ end }}`)
	password := func() string { _, pw, _ := strings.Cut(readFile(f.path("static.conf")), ":"); return pw }
	rotate := func() {
		if _, err := f.root.Logical().Write(ctx, "database/rotate-role/svc", nil); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ttl", func(t *testing.T) {
		clk := clock.NewFake(time.Now())
		o := f.options(t, f.srv.URL)
		o.Clock = clk
		o.Config.StaticSecretRenderInterval = 100 * time.Hour
		o.Templates = []config.Template{tmpl}
		r := newRunner(t, o)
		cctx, cancel := context.WithCancel(t.Context())
		ch := start(cctx, r)
		rendered(t, f, r)
		pw1 := password()
		rotate()
		clk.Advance(23 * time.Hour)
		if password() != pw1 {
			t.Fatal("read again before the ttl ended")
		}
		clk.Advance(2 * time.Hour)
		waitFor(t, "the rotated password", func() bool { return password() != pw1 && password() != "" })
		stop(t, f, cancel, ch)
		f.noValues(t, pw1, password())
	})

	t.Run("event", func(t *testing.T) {
		o := f.options(t, f.srv.URL)
		o.Config.StaticSecretRenderInterval = 100 * time.Hour
		o.Watchers = []secretenv.Watcher{watch.Events{Client: o.Client, Backoff: o.Backoff}}
		o.Templates = []config.Template{tmpl}
		r := newRunner(t, o)
		cctx, cancel := context.WithCancel(t.Context())
		ch := start(cctx, r)
		rendered(t, f, r)
		waitFor(t, "the subscription", func() bool { return f.logs.Count(`msg="change hint" path=""`) > 0 })
		pw := password()
		rotate()
		waitFor(t, "the rotated password", func() bool { return password() != pw && password() != "" })
		stop(t, f, cancel, ch)
		f.noValues(t, pw, password())
	})
}
