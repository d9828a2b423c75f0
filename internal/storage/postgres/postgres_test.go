package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(childEnv); url != "" {
		// A node in a process of its own (see ha_process_test.go).
		os.Exit(haChild(url))
	}
	pgtest.Main(m)
}

// open opens a backend on url with test settings, and closes it when t
// ends.
func open(t *testing.T, url string, opts Options) *Backend {
	t.Helper()
	opts.ConnectionURL = url
	if opts.MaxParallel == 0 {
		opts.MaxParallel = 24
	}
	b, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return open(t, pgtest.New(t).AdminURL(), Options{})
	})
}

// TestConformanceFenced runs the suite on a backend that holds the leader
// lock: every write goes through the fenced statements.
func TestConformanceFenced(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b := open(t, pgtest.New(t).AdminURL(), Options{HAEnabled: true})
		campaign(t, b, "node-a")
		return b
	})
}

func TestDurable(t *testing.T) {
	// The "directory" of a reopen names a database of its own.
	dbs := map[string]string{}
	var mu sync.Mutex
	storagetest.RunDurable(t, func(t *testing.T, dir string) storage.Backend {
		mu.Lock()
		url, ok := dbs[dir]
		if !ok {
			url = pgtest.New(t).AdminURL()
			dbs[dir] = url
		}
		mu.Unlock()
		b, err := Open(t.Context(), Options{ConnectionURL: url, MaxParallel: 8})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	})
}

// TestSurvivesRestart stops and restarts PostgreSQL under an open
// backend: the pool's connections all break, and the next calls succeed
// on new ones without the caller noticing.
func TestSurvivesRestart(t *testing.T) {
	srv := pgtest.Start(t)
	db := srv.NewDB(t)
	b := open(t, db.AdminURL(), Options{})
	ctx := t.Context()
	mustPut(t, b, "a/b", []byte("before"))
	// Several connections in the pool, all to be broken.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := b.Get(ctx, "a/b"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	srv.Stop(t)
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := b.Get(short, "a/b")
	cancel()
	if err == nil {
		t.Fatal("Get succeeded while the server was down")
	}
	srv.Restart(t)

	if got := mustGet(t, b, "a/b"); string(got) != "before" {
		t.Fatalf("after restart, Get = %q", got)
	}
	mustPut(t, b, "a/c", []byte("after"))
	if got, err := b.List(ctx, "a/"); err != nil || strings.Join(got, ",") != "b,c" {
		t.Fatalf("after restart, List = %q, %v", got, err)
	}
}

// TestRetriesBrokenConnections ends every session of the pool from the
// server side: the next call meets a dead connection, and succeeds by
// retrying on a new one.
func TestRetriesBrokenConnections(t *testing.T) {
	db := pgtest.New(t)
	b := open(t, db.AdminURL(), Options{})
	ctx := t.Context()
	mustPut(t, b, "k", []byte("v"))
	for round := range 3 {
		db.Exec(t, `SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`)
		before := b.retries.Load()
		switch round {
		case 0:
			if got := mustGet(t, b, "k"); string(got) != "v" {
				t.Fatalf("Get = %q", got)
			}
		case 1:
			mustPut(t, b, "k", []byte("w"))
		case 2:
			if got, err := b.List(ctx, ""); err != nil || len(got) != 1 {
				t.Fatalf("List = %q, %v", got, err)
			}
		}
		if b.retries.Load() == before {
			t.Errorf("round %d: no retry was needed after the sessions were ended", round)
		}
	}
}

func TestOptions(t *testing.T) {
	url := pgtest.New(t).AdminURL()
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"no url", Options{}, "no connection URL"},
		{"uppercase table", Options{ConnectionURL: url, Table: "Vigil"}, "invalid table"},
		{"quote in table", Options{ConnectionURL: url, Table: `a"b`}, "invalid table"},
		{"three parts", Options{ConnectionURL: url, Table: "a.b.c"}, "invalid table"},
		{"long table", Options{ConnectionURL: url, Table: strings.Repeat("t", 60)}, "at most"},
		{"bad ha table", Options{ConnectionURL: url, HATable: "x;drop"}, "invalid ha_table"},
		{"same tables", Options{ConnectionURL: url, Table: "t", HATable: "t"}, "must differ"},
		{"negative parallel", Options{ConnectionURL: url, MaxParallel: -1}, "max_parallel"},
		{"negative idle", Options{ConnectionURL: url, MaxIdleConnections: -1}, "max_idle_connections"},
		{"tiny ttl", Options{ConnectionURL: url, LockTTL: time.Millisecond}, "lock TTL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Open(t.Context(), c.opts)
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// TestSchemaQualifiedTable keeps the data in a schema of its own.
func TestSchemaQualifiedTable(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, "CREATE SCHEMA vault")
	b := open(t, db.AdminURL(), Options{Table: "vault.kv", HATable: "vault.locks", HAEnabled: true})
	campaign(t, b, "n")
	mustPut(t, b, "x/y", []byte("z"))
	if n := db.QueryString(t, "SELECT count(*)::text FROM vault.kv"); n != "1" {
		t.Fatalf("vault.kv holds %s rows", n)
	}
	if v := db.QueryString(t, "SELECT max(version)::text FROM vault.kv_schema"); v != fmt.Sprint(schemaVersion()) {
		t.Fatalf("schema version %s", v)
	}
}

// TestMaxIdleConnections: after a burst, no more than the limit of
// connections stay open.
func TestMaxIdleConnections(t *testing.T) {
	db := pgtest.New(t)
	b := open(t, db.AdminURL(), Options{MaxParallel: 16, MaxIdleConnections: 2})
	ctx := t.Context()
	var wg sync.WaitGroup
	// Hold many connections at once, with a slow statement each.
	for range 10 {
		wg.Go(func() {
			if _, err := b.pool.Exec(ctx, "SELECT pg_sleep(0.2)"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if idle := b.pool.Stat().IdleConns(); idle > 2 {
		t.Fatalf("%d idle connections kept, want at most 2", idle)
	}
}

// TestNoPasswordInErrors: neither a bad URL nor a failed login puts the
// password in the error.
func TestNoPasswordInErrors(t *testing.T) {
	db := pgtest.New(t)
	const pw = "S3cretPassw0rdZ"
	for _, url := range []string{
		"postgres://u:" + pw + "@127.0.0.1:notaport/db",
		"postgres://u:" + pw + "@[::1/db",
		"host=127.0.0.1 port=x password=" + pw,
		"postgres://" + db.User + ":" + pw + "@" + fmt.Sprintf("%s:%d", db.Host, db.Port) + "/" + db.Name + "?sslmode=disable",
		"postgres://nobody:" + pw + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
	} {
		var logs bytes.Buffer
		_, err := Open(t.Context(), Options{ConnectionURL: url, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err == nil {
			t.Fatalf("Open(%q) succeeded", url)
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(logs.String(), pw) {
			t.Errorf("the password shows: error %q, logs %q", err, logs.String())
		}
	}
}

func TestKeyTooLong(t *testing.T) {
	b := open(t, pgtest.New(t).AdminURL(), Options{})
	long := strings.Repeat("k", maxKeyLen+1)
	if err := b.Put(t.Context(), long, []byte("v")); !errors.Is(err, storage.ErrInvalidKey) || !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("Put(long key) = %v", err)
	}
	ok := strings.Repeat("k", maxKeyLen)
	mustPut(t, b, ok, []byte("v"))
	if got := mustGet(t, b, ok); string(got) != "v" {
		t.Fatalf("Get = %q", got)
	}
}

// TestBinaryKeys: a key is any bytes (not valid UTF-8, NUL included),
// and List orders as Go compares strings.
func TestBinaryKeys(t *testing.T) {
	b := open(t, pgtest.New(t).AdminURL(), Options{})
	keys := []string{"d/\xff", "d/\x00x", "d/a\x00/b", "d/é", "d/\x7f"}
	for _, k := range keys {
		mustPut(t, b, k, []byte(k))
	}
	for _, k := range keys {
		if got := mustGet(t, b, k); string(got) != k {
			t.Fatalf("Get(%q) = %q", k, got)
		}
	}
	got, err := b.List(t.Context(), "d/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"\x00x", "a\x00/", "\x7f", "é", "\xff"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
}

func mustPut(t *testing.T, b *Backend, key string, value []byte) {
	t.Helper()
	if err := b.Put(t.Context(), key, value); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, b *Backend, key string) []byte {
	t.Helper()
	v, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

// contents reads every entry straight from the table.
func contents(t *testing.T, b *Backend) map[string]string {
	t.Helper()
	m := map[string]string{}
	conn, err := pgx.Connect(t.Context(), b.connCfg.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), "SELECT key, value FROM "+pgx.Identifier(strings.Split(b.lockName, ".")).Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	var k, v []byte
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		m[string(k)] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

// entries returns a Restore source over m, in no particular order.
func entries(m map[string]string) func() (storage.Entry, error) {
	var list []storage.Entry
	for k, v := range m {
		list = append(list, storage.Entry{Key: k, Value: []byte(v)})
	}
	return func() (storage.Entry, error) {
		if len(list) == 0 {
			return storage.Entry{}, io.EOF
		}
		e := list[0]
		list = list[1:]
		return e, nil
	}
}
