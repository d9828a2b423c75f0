package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-secrets/vigil/internal/pgtest"
)

func TestMigrationsFreshThenNoop(t *testing.T) {
	db := pgtest.New(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	b := open(t, db.AdminURL(), Options{Logger: logger})
	for _, table := range []string{"vigil_kv_store", "vigil_ha_locks", "vigil_kv_store_schema"} {
		if got := db.QueryString(t, "SELECT coalesce(to_regclass($1)::text, '')", table); got != table {
			t.Errorf("table %s was not created", table)
		}
	}
	want := fmt.Sprint(schemaVersion())
	if v := db.QueryString(t, "SELECT max(version)::text FROM vigil_kv_store_schema"); v != want {
		t.Fatalf("schema version %s, want %s", v, want)
	}
	if !strings.Contains(logs.String(), "applied schema migration") {
		t.Errorf("the first Open logged no migration: %s", logs.String())
	}
	mustPut(t, b, "k", []byte("v"))
	b.Close()

	stamp := db.QueryString(t, "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) FROM vigil_kv_store_schema")
	logs.Reset()
	b = open(t, db.AdminURL(), Options{Logger: logger})
	if logs.Len() != 0 {
		t.Errorf("the second Open logged: %s", logs.String())
	}
	if again := db.QueryString(t, "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) FROM vigil_kv_store_schema"); again != stamp {
		t.Errorf("the second Open changed the schema record: %s, then %s", stamp, again)
	}
	if got := mustGet(t, b, "k"); string(got) != "v" {
		t.Fatalf("Get = %q", got)
	}
}

// TestMigrationsConcurrent opens many backends on a fresh database at
// once, as replicas starting together would: all succeed, and each
// migration is recorded once.
func TestMigrationsConcurrent(t *testing.T) {
	db := pgtest.New(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			b, err := Open(t.Context(), Options{ConnectionURL: db.AdminURL(), MaxParallel: 2})
			errs[i] = err
			if err == nil {
				b.Close()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := db.QueryString(t, "SELECT count(*)::text FROM vigil_kv_store_schema"); got != fmt.Sprint(len(migrations)) {
		t.Fatalf("%s migrations recorded, want %d", got, len(migrations))
	}
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	db := pgtest.New(t)
	open(t, db.AdminURL(), Options{}).Close()
	db.Exec(t, fmt.Sprintf("INSERT INTO vigil_kv_store_schema (version) VALUES (%d)", schemaVersion()+7))
	_, err := Open(t.Context(), Options{ConnectionURL: db.AdminURL()})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(schemaVersion()+7)) || !strings.Contains(err.Error(), "upgrade vigil") {
		t.Errorf("the error does not say what to do: %v", err)
	}
}

// TestMigrationsRefuseForeignTable: a table of the data table's name that
// no migration created is not written into.
func TestMigrationsRefuseForeignTable(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, "CREATE TABLE vigil_kv_store (path text PRIMARY KEY, value bytea)")
	_, err := Open(t.Context(), Options{ConnectionURL: db.AdminURL()})
	if err == nil || !strings.Contains(err.Error(), "no vigil migration recorded") {
		t.Fatalf("Open = %v, want a refusal of the foreign table", err)
	}
	// Nothing was recorded: the migration rolled back whole.
	if got := db.QueryString(t, "SELECT coalesce(to_regclass('vigil_kv_store_schema')::text, 'none')"); got != "none" {
		t.Errorf("the version table was left behind: %s", got)
	}
}

// TestMigrationsAsNonSuperuser: an ordinary role that may create tables
// in its schema is enough.
func TestMigrationsAsNonSuperuser(t *testing.T) {
	db := pgtest.New(t)
	b := open(t, roleURL(t, db), Options{HAEnabled: true})
	mustPut(t, b, "k", []byte("v"))
}

// TestMigrationsLeastPrivilege: once an administrator has created the
// schema, a role that may only read and write its tables runs on it,
// leader lock included.
func TestMigrationsLeastPrivilege(t *testing.T) {
	db := pgtest.New(t)
	open(t, db.AdminURL(), Options{}).Close()
	name, password := db.CreateRole(t, "")
	db.Exec(t, "GRANT SELECT, INSERT, UPDATE, DELETE ON vigil_kv_store, vigil_ha_locks TO "+name,
		"GRANT SELECT ON vigil_kv_store_schema TO "+name)
	b := open(t, db.URL(db.Name, name, password), Options{HAEnabled: true})
	mustPut(t, b, "before", []byte("v"))
	campaign(t, b, "n")
	mustPut(t, b, "k", []byte("v"))
	if err := b.Restore(t.Context(), entries(map[string]string{"r": "1"})); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got, err := b.List(t.Context(), ""); err != nil || fmt.Sprint(got) != "[r]" {
		t.Fatalf("List = %q, %v", got, err)
	}
}

// roleURL creates a login role without special attributes that may
// create tables in the public schema, and returns its URL.
func roleURL(t *testing.T, db *pgtest.DB) string {
	t.Helper()
	name, password := db.CreateRole(t, "")
	db.Exec(t, "GRANT CREATE ON SCHEMA public TO "+name)
	return db.URL(db.Name, name, password)
}
