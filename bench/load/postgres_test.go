package load

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// The database scenarios' tests share one throwaway PostgreSQL server
// (or VIGIL_TEST_PG_URL's), each in a database of its own.
func TestMain(m *testing.M) { pgtest.Main(m) }

const pgPassword = "PG-PASSWORD-do-not-print"

func TestParsePGURL(t *testing.T) {
	for _, c := range []struct {
		raw     string
		wantURL string // "" for an error
	}{
		{"postgres://admin:" + pgPassword + "@db.example:5433/features?sslmode=require",
			"postgres://{{username}}:{{password}}@db.example:5433/features?sslmode=require"},
		{"postgresql://admin:" + pgPassword + "@127.0.0.1/postgres",
			"postgresql://{{username}}:{{password}}@127.0.0.1/postgres"},
		{"postgres://admin:p%40ss%2F" + pgPassword + "@[::1]:5432/db",
			"postgres://{{username}}:{{password}}@[::1]:5432/db"},
		{"host=db user=admin password=" + pgPassword, ""},         // a DSN
		{"postgres://admin@db/x", ""},                             // no password
		{"postgres://admin:@db/x", ""},                            // an empty one
		{"postgres://:" + pgPassword + "@db/x", ""},               // no user
		{"postgres://db/x?user=admin&password=" + pgPassword, ""}, // in the query
		{"mysql://admin:" + pgPassword + "@db/x", ""},
		{"postgres://admin:" + pgPassword + "@db:notaport/x", ""},
		{"postgres://admin:" + pgPassword + "@db/x?sslmode=sometimes", ""}, // pgx refuses it
		{"postgres://admin:" + pgPassword + "@db/x\x7f", ""},
	} {
		pg, err := ParsePGURL(c.raw)
		if c.wantURL == "" {
			if err == nil {
				t.Errorf("ParsePGURL(%q): no error", c.raw)
			} else if strings.Contains(err.Error(), pgPassword) {
				t.Errorf("ParsePGURL(%q): the error shows the password: %v", c.raw, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePGURL(%q): %v", c.raw, err)
			continue
		}
		if got := pg.ConnectionURL(); got != c.wantURL {
			t.Errorf("ParsePGURL(%q).ConnectionURL() = %q, want %q", c.raw, got, c.wantURL)
		}
		if pg.Username() != "admin" || !strings.HasSuffix(pg.Password(), pgPassword) {
			t.Errorf("ParsePGURL(%q): user %q", c.raw, pg.Username())
		}
		if s := pg.String(); strings.Contains(s, pgPassword) || !strings.Contains(s, `as "admin"`) {
			t.Errorf("String() = %q", s)
		}
	}
}

// newPG prepares a PG on a database of t's own with a prefix of t's own,
// and cleans up after t.
func newPG(t *testing.T) (*PG, *pgtest.DB) {
	t.Helper()
	db := pgtest.New(t)
	pg, err := ParsePGURL(db.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Prepare(t.Context(), NewPGPrefix()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pg.Cleanup(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return pg, db
}

// runUsers counts the roles whose names begin with the run's prefix, the
// group role included.
func runUsers(t *testing.T, db *pgtest.DB, prefix string) string {
	t.Helper()
	return db.QueryString(t, "SELECT count(*)::text FROM pg_roles WHERE starts_with(rolname, $1)", prefix)
}

func TestPGBaseline(t *testing.T) {
	pg, db := newPG(t)
	ctx := t.Context()
	if v := pg.Version(); v == "" {
		t.Error("no server version")
	}
	if !strings.HasPrefix(pg.Prefix(), "vbench_") || len(pg.Prefix()) != len("vbench_")+8 {
		t.Errorf("prefix %q", pg.Prefix())
	}
	// The prefix is the run's: another run cannot take it.
	other, _ := ParsePGURL(db.AdminURL())
	if err := other.Prepare(ctx, pg.Prefix()); err == nil || !strings.Contains(err.Error(), "create schema") {
		t.Errorf("Prepare with a prefix in use: %v", err)
	}
	if n, err := other.Cleanup(ctx); n != 0 || err != nil {
		t.Errorf("Cleanup after a failed Prepare: %d, %v", n, err)
	}
	for _, bad := range []string{"", "Vbench", "1bench", "vbench-x", `v"`, "vbench_0123456789ab"} {
		if err := other.Prepare(ctx, bad); err == nil {
			t.Errorf("Prepare(%q): no error", bad)
		}
	}

	b, err := pg.NewBaseline(ctx, 2, dbTestTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	user, password, err := b.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(user, pg.Prefix()+"-pg-") || len(user) > 63 || password == "" {
		t.Errorf("user %q (%d bytes)", user, len(user))
	}
	// A working user: it logs in, reads the table, expires with its TTL.
	if err := pg.LogIn(ctx, user, password); err != nil {
		t.Fatal(err)
	}
	if until := db.ValidUntil(t, user); until.IsZero() {
		t.Error("no VALID UNTIL")
	}
	if err := pg.LogIn(ctx, user, "wrong-"+password); !errors.Is(err, ErrLoginRefused) || strings.Contains(err.Error(), password) {
		t.Errorf("wrong password: %v", err)
	}
	if err := b.Drop(ctx, user); err != nil {
		t.Fatal(err)
	}
	if err := pg.LogIn(ctx, user, password); !errors.Is(err, ErrLoginRefused) {
		t.Errorf("dropped user: %v", err)
	}
	if ok, err := pg.RoleExists(ctx, user); ok || err != nil {
		t.Errorf("dropped user exists: %v, %v", ok, err)
	}
	if err := b.Drop(ctx, user); err != nil {
		t.Errorf("dropping a user that is gone: %v", err)
	}

	// Concurrently, more workers than connections: none fails.
	var wg sync.WaitGroup
	errs := make(chan error, 8*10)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if err := b.CreateDrop(ctx); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := (Suite{PGCreateDrop: b}).CheckDatabase(ctx, []string{BareGET, PGCreateDrop}); err != nil {
		t.Error(err)
	}

	// Operations cut short by their context leave the pool usable.
	cctx, cancel := context.WithCancel(ctx)
	wg = sync.WaitGroup{}
	for range 4 {
		wg.Go(func() {
			for cctx.Err() == nil {
				_ = b.CreateDrop(cctx)
			}
		})
	}
	for range 20 {
		if _, _, err := b.Create(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	for range 4 {
		if err := b.CreateDrop(ctx); err != nil {
			t.Errorf("after cancellations: %v", err)
		}
	}

	// Cleanup drops the users left (the 20 above, and any the cancelled
	// operations left half-way), then the schema and the group role.
	n, err := pg.Cleanup(ctx)
	if err != nil || n < 20 {
		t.Errorf("Cleanup: dropped %d, %v; want at least 20", n, err)
	}
	if got := runUsers(t, db, pg.Prefix()); got != "0" {
		t.Errorf("%s roles of the run left", got)
	}
	if got := db.QueryString(t, "SELECT count(*)::text FROM pg_namespace WHERE nspname = $1", pg.Prefix()); got != "0" {
		t.Error("the schema is left")
	}
	if n, err := pg.Cleanup(ctx); n != 0 || err != nil {
		t.Errorf("second Cleanup: %d, %v", n, err)
	}
}

// A baseline's errors and a refused login show no password.
func TestPGErrorsKeepSecrets(t *testing.T) {
	pg, db := newPG(t)
	ctx := t.Context()
	// The admin's password, wrong: the connection fails without it.
	bad, err := ParsePGURL(strings.Replace(db.AdminURL(), ":"+db.Password+"@", ":"+pgPassword+"@", 1))
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Prepare(ctx, NewPGPrefix())
	if err == nil || strings.Contains(err.Error(), pgPassword) || !strings.Contains(err.Error(), "connect to postgresql at") {
		t.Errorf("wrong admin password: %v", err)
	}
	if _, err := bad.NewBaseline(ctx, 1, dbTestTTL); err == nil {
		t.Error("NewBaseline before Prepare: no error")
	}
	if err := pg.LogIn(ctx, pg.Prefix()+"-nobody", pgPassword); !errors.Is(err, ErrLoginRefused) || strings.Contains(err.Error(), pgPassword) {
		t.Errorf("unknown user: %v", err)
	}
}

// The HA cluster's database: created empty, reachable as the admin at
// DatabaseURL, dropped even with a session open, and nothing shows the
// password.
func TestPGDatabase(t *testing.T) {
	db := pgtest.New(t)
	ctx := t.Context()
	pg, err := ParsePGURL(db.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	name := NewPGPrefix() + "_ha"
	exists := func() string {
		return db.QueryString(t, "SELECT count(*)::text FROM pg_database WHERE datname = $1", name)
	}
	t.Cleanup(func() { pg.DropDatabase(context.Background(), name) })
	if err := pg.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	if exists() != "1" || pg.Version() == "" {
		t.Fatalf("database %s: %s; version %q", name, exists(), pg.Version())
	}
	u := pg.DatabaseURL(name)
	if !strings.Contains(u, "/"+name+"?sslmode=disable") || strings.Contains(u, "/"+db.Name) {
		t.Errorf("DatabaseURL: %d bytes, not the database's", len(u))
	}
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var current string
	if err := c.QueryRow(ctx, "SELECT current_database()").Scan(&current); err != nil || current != name {
		t.Errorf("connected to %q (%v), want %q", current, err, name)
	}
	// Another run's database is not taken over.
	if err := pg.CreateDatabase(ctx, name); err == nil || !strings.Contains(err.Error(), "create database") || strings.Contains(err.Error(), db.Password) {
		t.Errorf("CreateDatabase of an existing one: %v", err)
	}
	for _, bad := range []string{"", "Vbench", "1bench", "v-b", `v"`, strings.Repeat("v", 64)} {
		if err := pg.CreateDatabase(ctx, bad); err == nil {
			t.Errorf("CreateDatabase(%q): no error", bad)
		}
	}
	// Dropped with c still connected to it, and again: no error.
	if err := pg.DropDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	if exists() != "0" {
		t.Error("database not dropped")
	}
	if err := pg.DropDatabase(ctx, name); err != nil {
		t.Errorf("second DropDatabase: %v", err)
	}
	// A wrong password fails both, without showing it.
	wrong, err := ParsePGURL(strings.Replace(db.AdminURL(), ":"+db.Password+"@", ":"+pgPassword+"@", 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{wrong.CreateDatabase(ctx, name), wrong.DropDatabase(ctx, name)} {
		if err == nil || strings.Contains(err.Error(), pgPassword) {
			t.Errorf("wrong admin password: %v", err)
		}
	}
}
