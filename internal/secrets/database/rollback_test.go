package database

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// intents returns the engine's intent records.
func (e *engine) intents() []framework.Intent {
	e.t.Helper()
	ins, err := framework.ListIntents(context.Background(), e.s, time.Time{})
	if err != nil {
		e.t.Fatal(err)
	}
	return ins
}

// confirm tells the engine, as the pipeline does, that s's lease is
// stored.
func (e *engine) confirm(s *logical.Secret) {
	e.t.Helper()
	s.LeaseID = "database/creds/x/1"
	req := &logical.Request{Operation: logical.ReadOperation, Path: "creds/x", Storage: e.storage(), MountPoint: "database/"}
	if err := e.b.SecretRegistered(e.t.Context(), req, s); err != nil {
		e.t.Fatalf("SecretRegistered: %v", err)
	}
}

// usersOf counts the users of a role of the engine's (their names begin
// with the default template's v-token-<role>-) on the server, left by
// requests whose user names the test never learnt.
func (e *engine) usersOf(role string) string {
	e.t.Helper()
	return e.db.QueryString(e.t, "SELECT count(*)::text FROM pg_roles WHERE rolname LIKE $1", "v-token-"+role+"-%")
}

// TestCredsIntentConfirmed: a creds request records its intent (user,
// role, connection; no password) before it creates the user and names it
// in the lease; once the pipeline confirms the lease, the intent goes,
// and the rollback job leaves the live user alone however old it gets.
func TestCredsIntentConfirmed(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	e.must(logical.UpdateOperation, "roles/reader", readerRole)
	user, pw, s := e.creds("reader")

	ins := e.intents()
	if len(ins) != 1 || ins[0].Kind != intentCredsUser || s.InternalData[internalIntent] != ins[0].ID || !ins[0].Created.Equal(e.start.UTC()) {
		t.Fatalf("intents %+v for lease data %v", ins, s.InternalData)
	}
	var u issuedUser
	if err := ins[0].Decode(&u); err != nil || u.Username != user || u.Role != "reader" || u.DBName != "ml" {
		t.Fatalf("intent %+v (%v)", u, err)
	}
	raw, err := e.s.Get(t.Context(), framework.IntentPrefix+ins[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	noPassword(t, string(raw), pw)

	e.confirm(s)
	if ins := e.intents(); len(ins) != 0 {
		t.Fatalf("intents left after the lease was stored: %+v", ins)
	}
	e.clk.Advance(10 * rollbackMinAge)
	if next := e.periodic(); !next.IsZero() {
		t.Errorf("periodic work with nothing to do asks to run at %v", next)
	}
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err != nil {
		t.Fatalf("the rollback job touched a user whose lease is stored: %v", err)
	}
	// The lease revokes it.
	if _, err := e.lease(logical.RevokeOperation, s, 0); err != nil {
		t.Fatal(err)
	}
	if e.db.RoleExists(t, user) {
		t.Fatal("the revoked user exists")
	}
}

// TestRollbackUnconfirmed is a crash between the creation of a user and
// the storing of its lease: the engine issues the user and is never told
// its lease is stored. The rollback job leaves the user alone until its
// intent is rollbackMinAge old (a request may still be in flight), and
// then, run by the new backend of a restarted (or unsealed) server, drops
// it and ends its session.
func TestRollbackUnconfirmed(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	e.must(logical.UpdateOperation, "roles/reader", readerRole)
	user, pw, _ := e.creds("reader")
	session, err := e.db.ConnectAs(t.Context(), user, pw)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(context.Background())

	e.clk.Advance(rollbackMinAge - time.Second)
	if next, want := e.periodic(), e.start.Add(rollbackMinAge); !next.Equal(want) {
		t.Errorf("next run at %v, want %v, when the intent comes of age", next, want)
	}
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err != nil {
		t.Fatalf("the user was dropped before its intent came of age: %v", err)
	}
	if len(e.intents()) != 1 {
		t.Fatal("the intent went before it came of age")
	}

	e.clk.Advance(time.Second)
	e.b = e.newBackend()
	if next := e.periodic(); !next.IsZero() {
		t.Errorf("next run at %v after the rollback, want none", next)
	}
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err == nil || e.db.RoleExists(t, user) {
		t.Fatalf("the user of a lease never stored can still log in (%v) or exists", err)
	}
	if _, err := session.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Error("a session of the rolled-back user still runs queries")
	}
	if ins := e.intents(); len(ins) != 0 {
		t.Fatalf("intents left: %+v", ins)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "rolled back a user whose lease was never stored") || !strings.Contains(logs, user) {
		t.Errorf("the rollback is not logged with the user: %s", logs)
	}
	noPassword(t, logs, pw)
}

// TestRollbackRetries: while PostgreSQL is down the rollback fails, keeps
// the intent and backs off (10 s, then 20 s: runs in between do not try);
// once PostgreSQL is back the user is dropped.
func TestRollbackRetries(t *testing.T) {
	srv := pgtest.Start(t)
	e := newEngineOn(t, srv.NewDB(t))
	e.configure("ml", "")
	e.must(logical.UpdateOperation, "roles/reader", readerRole)
	user, pw, _ := e.creds("reader")

	srv.Stop(t)
	failures := func() int {
		return strings.Count(e.logs.String(), "rollback of a user whose lease was never stored failed")
	}
	e.clk.Advance(rollbackMinAge)
	if next, want := e.periodic(), e.clk.Now().Add(retryMin); !next.Equal(want) || failures() != 1 {
		t.Fatalf("with PostgreSQL down: next run at %v, want %v; %d failures logged", next, want, failures())
	}
	e.clk.Advance(retryMin / 2)
	if next := e.periodic(); !next.Equal(e.clk.Now().Add(retryMin/2)) || failures() != 1 {
		t.Fatalf("a run during the backoff: next %v, %d failures logged", next, failures())
	}
	e.clk.Advance(retryMin / 2)
	if next, want := e.periodic(), e.clk.Now().Add(2*retryMin); !next.Equal(want) || failures() != 2 {
		t.Fatalf("second failure: next run at %v, want %v; %d failures logged", next, want, failures())
	}
	if len(e.intents()) != 1 {
		t.Fatal("the intent of a user not dropped went")
	}

	srv.Restart(t)
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err != nil {
		t.Fatalf("the user is not there while its rollback waits: %v", err)
	}
	e.clk.Advance(2 * retryMin)
	if next := e.periodic(); !next.IsZero() {
		t.Errorf("next run at %v after the rollback, want none", next)
	}
	if e.db.RoleExists(t, user) || len(e.intents()) != 0 {
		t.Fatal("the user or its intent is left once PostgreSQL is back")
	}
	noPassword(t, e.logs.String(), pw, e.db.Password)
}

// TestCredsFailures: a creds request that fails leaves no user, and an
// intent only when a user may be left: the intent cannot be stored (no
// user is created); the creation fails and the driver undoes it (the
// intent goes); the undoing fails too (the intent stays, the rollback job
// is woken, and deletes it once it comes of age).
func TestCredsFailures(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	role := func(name, creation, rollback string) {
		t.Helper()
		e.must(logical.UpdateOperation, "roles/"+name, `{"db_name":"ml","creation_statements":`+creation+`,"rollback_statements":`+rollback+`}`)
	}
	role("nostore", `["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'"]`, `[]`)
	role("badsql", `["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'", "GRANT SELEKT ON nothing TO \"{{name}}\""]`, `[]`)
	role("noundo", `["CREATE ROLE \"{{name}}\" LOGIN; COMMIT", "SELECT 1/0"]`, `["ALTER ROLE no_such_role_at_all NOLOGIN"]`)

	e.failPuts.Store(true)
	if _, err := e.call(logical.ReadOperation, "creds/nostore", ""); err == nil || !strings.Contains(err.Error(), "not created") {
		t.Fatalf("creds with the intent store failing: %v", err)
	}
	e.failPuts.Store(false)
	if n := e.usersOf("nostore"); n != "0" {
		t.Fatalf("%s users created without an intent", n)
	}

	e.refused(logical.ReadOperation, "creds/badsql", "", 400, "creation statement 2")
	if ins := e.intents(); len(ins) != 0 || e.wakes.Load() != 0 {
		t.Fatalf("after a creation the driver undid: intents %+v, %d wakes", ins, e.wakes.Load())
	}

	e.refused(logical.ReadOperation, "creds/noundo", "", 400, "creation statement 2")
	if ins := e.intents(); len(ins) != 1 || e.wakes.Load() != 1 {
		t.Fatalf("after a creation that could not be undone: intents %+v, %d wakes", ins, e.wakes.Load())
	}
	if next := e.periodic(); !next.Equal(e.start.Add(rollbackMinAge)) {
		t.Errorf("woken, the job asks to run at %v, want when the intent comes of age", next)
	}
	e.clk.Advance(rollbackMinAge)
	e.periodic()
	if ins := e.intents(); len(ins) != 0 {
		t.Fatalf("intents left: %+v", ins)
	}
	for _, name := range []string{"nostore", "badsql", "noundo"} {
		if n := e.usersOf(name); n != "0" {
			t.Errorf("role %s: %s users left", name, n)
		}
	}
}

// TestRevokeBeforeConfirmation is the pipeline's answer to a lease it
// could not store: it revokes the secret at once, which drops the user and
// deletes the intent, so the rollback job has nothing left to do. When
// that revocation fails, the intent stays and the rollback job is woken.
func TestRevokeBeforeConfirmation(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	e.must(logical.UpdateOperation, "roles/reader", readerRole)
	user, pw, s := e.creds("reader")
	if _, err := e.lease(logical.RevokeOperation, s, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err == nil || e.db.RoleExists(t, user) {
		t.Fatalf("the revoked user can still log in (%v) or exists", err)
	}
	if ins := e.intents(); len(ins) != 0 || e.wakes.Load() != 0 {
		t.Fatalf("intents left after the revocation: %+v (%d wakes)", ins, e.wakes.Load())
	}

	e.must(logical.UpdateOperation, "roles/reader", `{"revocation_statements":["SELECT 1/0"]}`)
	user, pw, s = e.creds("reader")
	if _, err := e.lease(logical.RevokeOperation, s, 0); err == nil {
		t.Fatal("a revocation whose statement fails succeeded")
	}
	if ins := e.intents(); len(ins) != 1 || e.wakes.Load() != 1 {
		t.Fatalf("after a failed revocation: intents %+v, %d wakes", ins, e.wakes.Load())
	}
	if !e.db.RoleExists(t, user) {
		t.Fatal("the user is gone although its revocation failed")
	}
	noPassword(t, e.logs.String(), pw)
}
