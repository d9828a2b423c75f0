package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/secrets/database/dbplugin"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens the driver on db as user/password with the URL template.
func open(t *testing.T, db *pgtest.DB, user, password string) *DB {
	t.Helper()
	d, err := Open(dbplugin.Config{
		ConnectionURL:      db.TemplateURL(),
		Username:           user,
		Password:           secret.NewString(password),
		MaxOpenConnections: 2,
		MaxIdleConnections: 2,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

// adminOf opens the driver as the test server's superuser.
func adminOf(t *testing.T, db *pgtest.DB) *DB { return open(t, db, db.User, db.Password) }

// userName is a fresh name for a user the test creates.
func userName() string { return "v-test-" + strings.ToLower(rand.Text()[:12]) }

// deleteDuringSession deletes user (default statements) while it has a
// session open, and checks that the session is ended, the user cannot log
// in and is gone.
func deleteDuringSession(t *testing.T, db *pgtest.DB, d *DB, user, pw string) {
	t.Helper()
	ctx := t.Context()
	session, err := db.ConnectAs(ctx, user, pw)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(context.Background())
	if err := d.DeleteUser(ctx, user, nil); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := session.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("a session of the deleted user still runs queries")
	}
	if err := db.RunAs(t, user, pw, "SELECT 1"); err == nil {
		t.Error("the deleted user can still log in")
	}
	if db.RoleExists(t, user) {
		t.Error("the deleted user still exists")
	}
}

// noSecret fails when err's text holds any of secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error holds a credential: %v", err)
		}
	}
}

var readOnly = []string{
	`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
	 GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
}

// TestUserLifecycle creates a user, logs in as it, renews it and deletes
// it while it has a session open.
func TestUserLifecycle(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, "CREATE TABLE features (id int)", "INSERT INTO features VALUES (1)")
	d := adminOf(t, db)
	ctx := t.Context()
	user, pw := userName(), "Pw-"+strings.Repeat("x", 17)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := d.NewUser(ctx, dbplugin.NewUserRequest{Username: user, Password: secret.NewString(pw), Expiration: exp, Creation: readOnly}); err != nil {
		t.Fatalf("NewUser: %v", err)
	}
	if err := db.RunAs(t, user, pw, "SELECT * FROM features"); err != nil {
		t.Fatalf("the new user cannot read what it was granted: %v", err)
	}
	if err := db.RunAs(t, user, pw, "INSERT INTO features VALUES (2)"); err == nil {
		t.Fatal("the new user can write, which it was not granted")
	}
	if got := db.ValidUntil(t, user); !got.Equal(exp) {
		t.Errorf("VALID UNTIL = %v, want %v", got, exp)
	}

	later := exp.Add(2 * time.Hour)
	if err := d.RenewUser(ctx, user, later, nil); err != nil {
		t.Fatalf("RenewUser: %v", err)
	}
	if got := db.ValidUntil(t, user); !got.Equal(later) {
		t.Errorf("after renewal VALID UNTIL = %v, want %v", got, later)
	}

	deleteDuringSession(t, db, d, user, pw)
	if err := d.DeleteUser(ctx, user, nil); err != nil {
		t.Errorf("deleting a user that is gone: %v, want nil", err)
	}
}

// TestFailedCreationLeavesNoUser runs creation statements that fail after
// the user was made, one of them committing on its own.
func TestFailedCreationLeavesNoUser(t *testing.T) {
	db := pgtest.New(t)
	d := adminOf(t, db)
	pw := "Secret-" + strings.Repeat("q", 13)
	for _, tc := range []struct {
		name     string
		creation []string
		rollback []string
		index    int
	}{
		{"bad SQL", []string{`CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`, `GRANT SELEKT ON nothing TO "{{name}}"`}, nil, 2},
		{"password in the message", []string{`CREATE ROLE "{{name}}" LOGIN`, `SELECT '{{password}}'::int`}, nil, 2},
		{"committed early", []string{`CREATE ROLE "{{name}}" LOGIN; COMMIT`, `SELECT * FROM no_such_table`}, nil, 2},
		{"rollback statements", []string{`CREATE ROLE "{{name}}" LOGIN; COMMIT`, `SELECT 1/0`}, []string{`ALTER ROLE "{{name}}" NOLOGIN`}, 2},
		// The undoing fails (the user is still deleted): the engine is
		// told, and keeps its intent record for its rollback job.
		{"rollback fails", []string{`CREATE ROLE "{{name}}" LOGIN; COMMIT`, `SELECT 1/0`}, []string{`ALTER ROLE no_such_role_at_all NOLOGIN`}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := userName()
			err := d.NewUser(t.Context(), dbplugin.NewUserRequest{Username: user, Password: secret.NewString(pw),
				Expiration: time.Now().Add(time.Hour), Creation: tc.creation, Rollback: tc.rollback})
			var se *dbplugin.StatementError
			if !errors.As(err, &se) {
				t.Fatalf("NewUser: %v, want a StatementError", err)
			}
			if se.Kind != "creation" || se.Index != tc.index || se.Statement != tc.creation[tc.index-1] {
				t.Errorf("error names %s statement %d %q, want creation statement %d", se.Kind, se.Index, se.Statement, tc.index)
			}
			var undo *dbplugin.UndoError
			if errors.As(err, &undo) != (tc.name == "rollback fails") {
				t.Errorf("NewUser: %v: an UndoError only when undoing failed", err)
			}
			noSecret(t, err, pw)
			if db.RoleExists(t, user) {
				t.Errorf("user %q was left behind", user)
			}
		})
	}
}

// TestConnectErrors checks that a failed connection says why, without the
// password.
func TestConnectErrors(t *testing.T) {
	db := pgtest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pw := "Hunter2 '" + strings.Repeat("z", 12)
	for _, tc := range []struct {
		name, url, want string
	}{
		{"unreachable", "postgres://{{username}}:{{password}}@127.0.0.1:" + strconv.Itoa(closedPort) + "/x?sslmode=disable", "connect"},
		{"bad credentials", db.TemplateURL(), "password authentication failed"},
		{"DSN form, bad credentials", "host=127.0.0.1 port=" + strconv.Itoa(db.Port) + " dbname=" + db.Name + " user={{username}} password={{password}} sslmode=disable", "password authentication failed"},
		{"malformed", "postgres://{{username}}:{{password}}@127.0.0.1:notaport/x", "invalid connection_url"},
		{"malformed DSN", "host=127.0.0.1 port=x user={{username}} password={{password}} sslmode", "invalid connection_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(dbplugin.Config{ConnectionURL: tc.url, Username: db.User, Password: secret.NewString(pw), MaxOpenConnections: 1})
			if err == nil {
				defer d.Close()
				err = d.Verify(t.Context())
			}
			var ce *dbplugin.ConnectError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a ConnectError containing %q", err, tc.want)
			}
			noSecret(t, err, pw, dbplugin.EscapeURL(pw), escapeDSN(pw), strings.Repeat("z", 12))
		})
	}
}

// TestSetPassword changes a password, and leaves it when the step before
// the commit fails.
func TestSetPassword(t *testing.T) {
	db := pgtest.New(t)
	user, pw := db.CreateRole(t, "")
	d := adminOf(t, db)
	ctx := t.Context()

	refused := errors.New("storage refused")
	if err := d.SetPassword(ctx, user, secret.NewString("Never-used-1"), nil, func(context.Context) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("SetPassword with a failing beforeCommit: %v", err)
	}
	if err := db.RunAs(t, user, pw, "SELECT 1"); err != nil {
		t.Fatalf("the old password stopped working though the change was rolled back: %v", err)
	}

	stored := false
	if err := d.SetPassword(ctx, user, secret.NewString("New-password-1"), nil, func(context.Context) error { stored = true; return nil }); err != nil || !stored {
		t.Fatalf("SetPassword: %v (beforeCommit ran: %v)", err, stored)
	}
	if err := db.RunAs(t, user, "New-password-1", "SELECT 1"); err != nil {
		t.Errorf("the new password does not work: %v", err)
	}
	if err := db.RunAs(t, user, pw, "SELECT 1"); err == nil {
		t.Error("the old password still works")
	}
}

// TestNonSuperuserAdmin manages users through an admin with CREATEROLE
// only: revocation takes the user's membership to end its sessions and
// reassign what it owns.
func TestNonSuperuserAdmin(t *testing.T) {
	db := pgtest.New(t)
	admin, adminPW := db.CreateRole(t, "CREATEROLE")
	db.Exec(t, `GRANT CREATE ON SCHEMA public TO `+quoteIdent(admin)+` WITH GRANT OPTION`)
	d := open(t, db, admin, adminPW)
	ctx := t.Context()
	user, pw := userName(), "Pw-"+strings.Repeat("n", 17)
	creation := []string{`CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`, `GRANT CREATE ON SCHEMA public TO "{{name}}"`}
	if err := d.NewUser(ctx, dbplugin.NewUserRequest{Username: user, Password: secret.NewString(pw), Expiration: time.Now().Add(time.Hour), Creation: creation}); err != nil {
		t.Fatalf("NewUser: %v", err)
	}
	if err := db.RunAs(t, user, pw, "CREATE TABLE made_by_user (x int)"); err != nil {
		t.Fatalf("the user cannot create a table: %v", err)
	}
	deleteDuringSession(t, db, d, user, pw)
	if owner := db.QueryString(t, `SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_user'`); owner != admin {
		t.Errorf("the user's table is owned by %q, want the admin %q", owner, admin)
	}
}

// TestCustomRevocationStatements runs the operator's statements instead of
// the default, after the user's sessions are ended.
func TestCustomRevocationStatements(t *testing.T) {
	db := pgtest.New(t)
	d := adminOf(t, db)
	ctx := t.Context()
	user, pw := userName(), "Pw-"+strings.Repeat("c", 17)
	if err := d.NewUser(ctx, dbplugin.NewUserRequest{Username: user, Password: secret.NewString(pw), Expiration: time.Now().Add(time.Hour), Creation: readOnly}); err != nil {
		t.Fatal(err)
	}
	revoke := []string{`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{{name}}"`, `DROP ROLE "{{name}}"`}
	if err := d.DeleteUser(ctx, user, revoke); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if db.RoleExists(t, user) {
		t.Fatal("the user still exists")
	}
	// The statements would fail on a missing role; a second revocation
	// does not run them.
	if err := d.DeleteUser(ctx, user, revoke); err != nil {
		t.Errorf("second DeleteUser: %v", err)
	}

	// A statement the database refuses is named; the user, already
	// unable to log in, is removed by the next (default) revocation.
	user2 := userName()
	if err := d.NewUser(ctx, dbplugin.NewUserRequest{Username: user2, Password: secret.NewString(pw), Expiration: time.Now().Add(time.Hour), Creation: readOnly}); err != nil {
		t.Fatal(err)
	}
	err := d.DeleteUser(ctx, user2, []string{`DROP ROLEE "{{name}}"`})
	var se *dbplugin.StatementError
	if !errors.As(err, &se) || se.Kind != "revocation" || se.Index != 1 {
		t.Fatalf("bad revocation SQL: %v, want revocation statement 1", err)
	}
	if err := db.RunAs(t, user2, pw, "SELECT 1"); err == nil {
		t.Error("a user whose revocation failed can still log in")
	}
	if err := d.DeleteUser(ctx, user2, nil); err != nil || db.RoleExists(t, user2) {
		t.Errorf("default revocation after a failed one: %v", err)
	}
}

// TestPoolClosed checks that a closed pool refuses work.
func TestPoolClosed(t *testing.T) {
	db := pgtest.New(t)
	d := adminOf(t, db)
	if err := d.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
	d.Close()
	var ce *dbplugin.ConnectError
	if err := d.Verify(t.Context()); !errors.As(err, &ce) {
		t.Fatalf("Verify after Close: %v, want a ConnectError", err)
	}
}

// TestEnsureTwin creates a user's twin, through a superuser and through an
// admin with CREATEROLE only, and checks that an application logged in as
// the twin is the user: same privileges (granted before or after), and
// what it creates the user owns.
func TestEnsureTwin(t *testing.T) {
	for _, tc := range []struct{ name, adminAttrs string }{{"superuser admin", ""}, {"createrole admin", "CREATEROLE"}} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.New(t)
			d := adminOf(t, db)
			if tc.adminAttrs != "" {
				admin, adminPW := db.CreateRole(t, tc.adminAttrs)
				d = open(t, db, admin, adminPW)
			}
			ctx := t.Context()
			user, userPW := db.CreateRole(t, "")
			twin := user + "_b"
			db.DropRoleAtEnd(t, twin)
			db.Exec(t, "CREATE TABLE features (id int)", "GRANT SELECT, INSERT ON features TO "+quoteIdent(user),
				"GRANT CREATE ON SCHEMA public TO "+quoteIdent(user))

			created, err := d.EnsureTwin(ctx, user, twin)
			if err != nil || !created {
				t.Fatalf("EnsureTwin: created %v, %v", created, err)
			}
			if err := db.RunAs(t, twin, "", "SELECT 1"); err == nil {
				t.Fatal("the new twin logs in without a password")
			}
			if created, err := d.EnsureTwin(ctx, user, twin); err != nil || created {
				t.Fatalf("EnsureTwin of an existing twin: created %v, %v", created, err)
			}
			const twinPW = "Twin-password-1"
			if err := d.SetPassword(ctx, twin, secret.NewString(twinPW), nil, nil); err != nil {
				t.Fatal(err)
			}
			conn, err := db.ConnectAs(ctx, twin, twinPW)
			if err != nil {
				t.Fatalf("the twin cannot log in: %v", err)
			}
			defer conn.Close(context.Background())
			var current, session string
			if err := conn.QueryRow(ctx, "SELECT current_user, session_user").Scan(&current, &session); err != nil {
				t.Fatal(err)
			}
			if current != user || session != twin {
				t.Errorf("the twin's session runs as %q (session user %q), want %q (%q)", current, session, user, twin)
			}
			for _, q := range []string{"INSERT INTO features VALUES (1)", "SELECT * FROM features", "CREATE TABLE made_by_twin (x int)"} {
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Errorf("the twin cannot %s: %v", q, err)
				}
			}
			if _, err := conn.Exec(ctx, "DELETE FROM features"); err == nil {
				t.Error("the twin can delete, which the user cannot")
			}
			db.Exec(t, "GRANT DELETE ON features TO "+quoteIdent(user))
			if _, err := conn.Exec(ctx, "DELETE FROM features"); err != nil {
				t.Errorf("a privilege granted to the user later does not reach the twin: %v", err)
			}
			if owner := db.QueryString(t, `SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_twin'`); owner != user {
				t.Errorf("the twin's table is owned by %q, want the user %q", owner, user)
			}
			if err := db.RunAs(t, user, userPW, "DROP TABLE made_by_twin"); err != nil {
				t.Errorf("the user cannot drop the table its twin made: %v", err)
			}

			// The twin of a user that does not exist: a refused statement.
			_, err = d.EnsureTwin(ctx, "no-such-user", "no-such-user_b")
			var se *dbplugin.StatementError
			if !errors.As(err, &se) || !strings.Contains(se.Msg, "does not exist") {
				t.Errorf("EnsureTwin of a missing user: %v", err)
			}
			if db.RoleExists(t, "no-such-user_b") {
				t.Error("a twin was left behind by a failed creation")
			}
		})
	}
}

// TestConcurrentGrantsOnOneSchema issues and revokes users in parallel
// whose creation grants on one schema: PostgreSQL fails some of those
// transactions with "tuple concurrently updated" (the schema's ACL row
// changed under them), and the driver runs them again instead of failing
// the request or leaving a user behind.
func TestConcurrentGrantsOnOneSchema(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, "CREATE TABLE features (id int)")
	d, err := Open(dbplugin.Config{ConnectionURL: db.TemplateURL(), Username: db.User, Password: secret.NewString(db.Password), MaxOpenConnections: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	creation := []string{
		`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
		`GRANT USAGE ON SCHEMA public TO "{{name}}"`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}"`,
	}
	var wg sync.WaitGroup
	users := make([]string, 32)
	for i := range users {
		users[i] = userName()
		db.DropRoleAtEnd(t, users[i])
		wg.Go(func() {
			ctx := t.Context()
			if err := d.NewUser(ctx, dbplugin.NewUserRequest{Username: users[i], Password: secret.NewString(rand.Text()),
				Expiration: time.Now().Add(time.Hour), Creation: creation}); err != nil {
				t.Errorf("NewUser: %v", err)
				return
			}
			if err := d.DeleteUser(ctx, users[i], nil); err != nil {
				t.Errorf("DeleteUser: %v", err)
			}
		})
	}
	wg.Wait()
	for _, u := range users {
		if db.RoleExists(t, u) {
			t.Errorf("user %s left behind", u)
		}
	}
}
