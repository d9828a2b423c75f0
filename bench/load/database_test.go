package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-secrets/vigil/internal/secrets/database/dbplugin"
)

const dbTestTTL = time.Hour

// fakeDB is the fake's database secrets engine at database/: it creates
// real users on pg with the role's statements and drops them as Vigil's
// driver does, so that the checks log in for real.
type fakeDB struct {
	pg      *PG
	mounted bool
	config  map[string]any // as written
	role    map[string]any
	leases  map[string]string // lease ID → user
	n       int
	conn    *pgx.Conn
	// Misbehaviours.
	keepUsers     bool  // revocations succeed and drop nothing
	wrongPassword bool  // creds answer with a password that is not the user's
	leaseTTL      int64 // when not 0, every lease's lease_duration
}

// serve answers the engine's and the lease calls; it reports whether p
// was one of them. The caller holds the fake's lock.
func (d *fakeDB) serve(w http.ResponseWriter, r *http.Request, p string, body []byte, reply func(int, any), errs func(int, string)) bool {
	ctx := r.Context()
	switch {
	case p == "/v1/sys/mounts/database" && r.Method == http.MethodPost:
		if string(body) != `{"type":"database"}` {
			errs(http.StatusBadRequest, "want type database")
			return true
		}
		d.mounted = true
		w.WriteHeader(http.StatusNoContent)
	case p == "/v1/database/config/benchdb" && r.Method == http.MethodPost && d.mounted:
		var c map[string]any
		json.Unmarshal(body, &c)
		if c["plugin_name"] != "postgresql-database-plugin" || c["connection_url"] != d.pg.ConnectionURL() ||
			c["username"] != d.pg.Username() || c["password"] != d.pg.Password() || fmt.Sprint(c["allowed_roles"]) != "[bench]" ||
			c["verify_connection"] != true || c["max_open_connections"] != 3.0 || c["username_template"] != d.pg.UsernameTemplate() {
			errs(http.StatusBadRequest, "error verifying the connection: bad configuration")
			return true
		}
		d.config = c
		w.WriteHeader(http.StatusNoContent)
	case p == "/v1/database/roles/bench" && r.Method == http.MethodPost && d.config != nil:
		var role map[string]any
		json.Unmarshal(body, &role)
		if role["db_name"] != "benchdb" || role["default_ttl"] != dbTestTTL.Seconds() || role["max_ttl"] == nil {
			errs(http.StatusBadRequest, "bad role")
			return true
		}
		d.role = role
		w.WriteHeader(http.StatusNoContent)
	case p == "/v1/database/creds/bench" && r.Method == http.MethodGet && d.role != nil:
		d.n++
		user := fmt.Sprintf("%s-v-bench-%d", d.pg.Prefix(), d.n)
		password := fmt.Sprintf("pw-%d-%s", d.n, pgPassword)
		var stmts []string
		for _, s := range d.role["creation_statements"].([]any) {
			stmts = append(stmts, s.(string))
		}
		err := d.admin(ctx, func(c *pgx.Conn) error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				for _, s := range stmts {
					if _, err := tx.Exec(ctx, dbplugin.Render(s, dbplugin.Vars{Name: user, Password: password, Expiration: time.Now().Add(dbTestTTL)})); err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			errs(http.StatusInternalServerError, "creation failed")
			return true
		}
		id := fmt.Sprintf("database/creds/bench/%d", d.n)
		d.leases[id] = user
		if d.wrongPassword {
			password = "not-" + password
		}
		ttl := int64(dbTestTTL.Seconds())
		if d.leaseTTL != 0 {
			ttl = d.leaseTTL
		}
		reply(http.StatusOK, map[string]any{"lease_id": id, "lease_duration": ttl, "renewable": true,
			"data": map[string]string{"username": user, "password": password}})
	case p == "/v1/sys/leases/revoke" && r.Method == http.MethodPut:
		var in struct {
			LeaseID string `json:"lease_id"`
		}
		json.Unmarshal(body, &in)
		d.revoke(ctx, w, errs, in.LeaseID)
	case p == "/v1/sys/leases/revoke-prefix/database/creds/bench" && r.Method == http.MethodPut:
		ids := make([]string, 0, len(d.leases))
		for id := range d.leases {
			ids = append(ids, id)
		}
		for _, id := range ids {
			if !d.revoke(ctx, nil, errs, id) {
				return true
			}
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		return false
	}
	return true
}

// revoke drops the lease's user (unless keepUsers) and forgets the lease;
// w, when not nil, gets the answer.
func (d *fakeDB) revoke(ctx context.Context, w http.ResponseWriter, errs func(int, string), id string) bool {
	user, ok := d.leases[id]
	if ok && !d.keepUsers {
		if err := d.admin(ctx, func(c *pgx.Conn) error { return dropUser(ctx, c, user) }); err != nil {
			errs(http.StatusBadRequest, "revocation failed")
			return false
		}
	}
	delete(d.leases, id)
	if w != nil {
		w.WriteHeader(http.StatusNoContent)
	}
	return true
}

// admin runs fn on the fake's connection as the admin user, opened on
// first use (the fake serves one request at a time) and closed at the
// end of the test.
func (d *fakeDB) admin(ctx context.Context, fn func(*pgx.Conn) error) error {
	if d.conn == nil || d.conn.IsClosed() {
		c, err := d.pg.connect(ctx)
		if err != nil {
			return err
		}
		d.conn = c
	}
	return fn(d.conn)
}

// newFakeDB returns a fake engine on pg, whose connection is closed when
// t ends.
func newFakeDB(t *testing.T, pg *PG) *fakeDB {
	d := &fakeDB{pg: pg, leases: map[string]string{}}
	t.Cleanup(func() {
		if d.conn != nil {
			d.conn.Close(context.Background())
		}
	})
	return d
}

// startFakeDBVigil starts a fake Vigil whose database engine works on pg,
// and initializes and unseals it.
func startFakeDBVigil(t *testing.T, pg *PG) (*fakeVigil, *Vigil) {
	t.Helper()
	fake := newFakeVigil()
	fake.db = newFakeDB(t, pg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	v := &Vigil{Base: srv.URL, Client: NewClient(4)}
	if err := v.InitUnseal(t.Context()); err != nil {
		t.Fatal(err)
	}
	return fake, v
}

// newFakeDBVigil is startFakeDBVigil with the engine set up as the
// benchmark sets it up, and the DBCreds scenario on it.
func newFakeDBVigil(t *testing.T, pg *PG) (*fakeVigil, *Vigil, *DBCredsScenario) {
	t.Helper()
	fake, v := startFakeDBVigil(t, pg)
	if err := v.SetupDatabase(t.Context(), dbSetup(pg)); err != nil {
		t.Fatal(err)
	}
	return fake, v, &DBCredsScenario{Vigil: v, Mount: "database", Role: "bench", PG: pg, TTL: dbTestTTL}
}

func dbSetup(pg *PG) DatabaseSetup {
	return DatabaseSetup{
		Mount: "database", Connection: "benchdb", Role: "bench",
		ConnectionURL: pg.ConnectionURL(), Username: pg.Username(), Password: pg.Password(),
		MaxOpenConnections: 3, UsernameTemplate: pg.UsernameTemplate(),
		Creation: pg.CreationStatements(), TTL: dbTestTTL,
	}
}

func TestDBCreds(t *testing.T) {
	pg, db := newPG(t)
	fake, v, d := newFakeDBVigil(t, pg)
	ctx := t.Context()
	fake.mu.Lock()
	stmts := fmt.Sprint(fake.db.role["creation_statements"])
	fake.mu.Unlock()
	if stmts != fmt.Sprint(pg.CreationStatements()) {
		t.Errorf("creation statements %s", stmts)
	}

	creds, err := v.ReadCreds(ctx, d.CredsPath())
	if err != nil {
		t.Fatal(err)
	}
	if creds.LeaseID != "database/creds/bench/1" || creds.LeaseDuration != 3600 || !creds.Renewable || creds.Password == "" {
		t.Errorf("creds %v", creds)
	}
	if s := creds.String(); strings.Contains(s, creds.Password) || !strings.Contains(s, creds.Username) {
		t.Errorf("String() = %q", s)
	}
	if err := v.RevokeLease(ctx, creds.LeaseID); err != nil {
		t.Fatal(err)
	}

	s := Suite{DBCreds: d}
	if err := s.CheckDatabase(ctx, Scenarios); err == nil || err.Error() != "pg create/drop: no PostgreSQL baseline set up" {
		t.Errorf("without the baseline: %v", err)
	}
	if err := s.CheckDatabase(ctx, []string{DBCreds}); err != nil {
		t.Fatal(err)
	}
	results, err := RunAll(ctx, Select(s.Targets(), []string{DBCreds}), Options{Concurrency: 3, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Requests == 0 || results[0].Errors != 0 {
		t.Fatalf("results %+v", results)
	}
	fake.mu.Lock()
	issued, held := fake.db.n, len(fake.db.leases)
	fake.mu.Unlock()
	if int64(issued) < results[0].Requests+2 || held != 0 {
		t.Errorf("%d credentials issued for %d operations, %d leases still held", issued, results[0].Requests, held)
	}
	if got := runUsers(t, db, pg.Prefix()+"-"); got != "0" {
		t.Errorf("%s users left", got)
	}
	if err := v.RevokePrefix(ctx, "database/creds/bench"); err != nil {
		t.Error(err)
	}
}

// CheckDatabase fails, naming the scenario and without a password, when
// a credential does not work, or still works after its revocation.
func TestCheckDatabase(t *testing.T) {
	pg, db := newPG(t)
	fake, _, d := newFakeDBVigil(t, pg)
	ctx := t.Context()
	s := Suite{DBCreds: d}
	for _, c := range []struct {
		name string
		set  func(*fakeDB)
		want string
	}{
		{"kept", func(f *fakeDB) { f.keepUsers = true }, "can still log in after its revoke"},
		{"wrong password", func(f *fakeDB) { f.wrongPassword = true }, "the issued user cannot work: log in as"},
		{"short lease", func(f *fakeDB) { f.leaseTTL = 60 }, "under a renewable lease of 3600s"},
	} {
		fake.mu.Lock()
		*fake.db = fakeDB{pg: pg, mounted: true, config: fake.db.config, role: fake.db.role, leases: map[string]string{}, n: fake.db.n, conn: fake.db.conn}
		c.set(fake.db)
		fake.mu.Unlock()
		err := s.CheckDatabase(ctx, []string{DBCreds})
		if err == nil || !strings.HasPrefix(err.Error(), "db creds: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), pgPassword) || strings.Contains(err.Error(), pg.Password())) {
			t.Errorf("%s: error leaks a password: %v", c.name, err)
		}
		fake.mu.Lock()
		held := len(fake.db.leases)
		fake.mu.Unlock()
		if held != 0 {
			t.Errorf("%s: the check left %d leases", c.name, held)
		}
	}
	// The kept user is left for Cleanup.
	if n, err := pg.Cleanup(ctx); n != 1 || err != nil {
		t.Errorf("Cleanup: %d, %v", n, err)
	}
	if got := runUsers(t, db, pg.Prefix()); got != "0" {
		t.Errorf("%s roles left", got)
	}

	if err := (Suite{}).CheckDatabase(ctx, []string{DBCreds}); err == nil || err.Error() != "db creds: no database engine set up" {
		t.Errorf("nothing set up: %v", err)
	}
	for _, tg := range Select((Suite{}).Targets(), DatabaseScenarios) {
		if err := tg.Op(ctx, nil, 0, 0); err == nil || !slices.Contains(DatabaseScenarios, tg.Name) {
			t.Errorf("%s not set up: %v", tg.Name, err)
		}
	}
}

// A configuration Vigil refuses fails the setup with the path and the
// answer, never the admin password.
func TestSetupDatabaseErrors(t *testing.T) {
	pg, _ := newPG(t)
	_, v := startFakeDBVigil(t, pg)
	setup := dbSetup(pg)
	setup.MaxOpenConnections = 7
	err := v.SetupDatabase(t.Context(), setup)
	if err == nil || !strings.Contains(err.Error(), "POST /v1/database/config/benchdb: status 400: ") || strings.Contains(err.Error(), pg.Password()) {
		t.Errorf("refused configuration: %v", err)
	}
	if _, err := v.ReadCreds(t.Context(), "/v1/database/creds/bench"); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("creds without a role: %v", err)
	}
}
