package acceptance

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// dbReaderRole creates a user that can read the public schema and whose
// password stops working when its lease ends.
var dbReaderRole = map[string]any{
	"db_name": "ml",
	"creation_statements": []string{
		`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}"`,
	},
	"default_ttl": "1h",
	"max_ttl":     "24h",
}

// setupDatabase mounts the database engine at database/ with a
// connection "ml" to a database of its own, reached as an admin user of
// the test's own (CREATEROLE, so that rotate-root changes nobody else's
// password), and the role "reader". It returns the database and the
// admin's name and password.
func setupDatabase(t *testing.T, root *vault.Client) (db *pgtest.DB, admin, adminPW string) {
	t.Helper()
	db = pgtest.New(t)
	admin, adminPW = setupDatabaseOn(t, root, db)
	return db, admin, adminPW
}

// setupDatabaseOn is setupDatabase on a database the test made (on a
// server of its own, say).
func setupDatabaseOn(t *testing.T, root *vault.Client, db *pgtest.DB) (admin, adminPW string) {
	t.Helper()
	db.Exec(t, "CREATE TABLE features (id int)", "INSERT INTO features VALUES (7)")
	admin, adminPW = db.CreateRole(t, "CREATEROLE")
	db.Exec(t, `GRANT SELECT ON features TO "`+admin+`" WITH GRANT OPTION`)
	if err := root.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("database/config/ml", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": db.TemplateURL(),
		"username":       admin,
		"password":       adminPW,
		"allowed_roles":  "reader,train-*",
	}); err != nil {
		t.Fatalf("write database/config/ml: %v", err)
	}
	if _, err := root.Logical().Write("database/roles/reader", dbReaderRole); err != nil {
		t.Fatalf("write database/roles/reader: %v", err)
	}
	return admin, adminPW
}

// issue reads database/creds/<role> with c and returns the user, its
// password and the lease.
func issue(t *testing.T, c *vault.Client, db *pgtest.DB, role string) (user, password string, s *vault.Secret) {
	t.Helper()
	s, err := c.Logical().Read("database/creds/" + role)
	if err != nil {
		t.Fatalf("read database/creds/%s: %v", role, err)
	}
	user, _ = s.Data["username"].(string)
	password, _ = s.Data["password"].(string)
	if user == "" || password == "" || s.LeaseID == "" || !s.Renewable || s.LeaseDuration <= 0 {
		t.Fatalf("read database/creds/%s: %+v", role, s)
	}
	db.DropRoleAtEnd(t, user)
	return user, password, s
}

// wantStatus checks that err is a response error with the status.
func wantStatus(t *testing.T, what string, err error, status int) *vault.ResponseError {
	t.Helper()
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status {
		t.Fatalf("%s: %v, want %d", what, err, status)
	}
	return re
}

// testDatabase is the database engine through the official client:
// issued users work and can only do what their role grants, renewal moves
// their VALID UNTIL, revocation (of the lease, or of the token that
// issued it) ends their sessions and removes them, rotate-root changes
// the admin password, and bad input is refused with a 400 that holds no
// password.
func testDatabase(t *testing.T, tg *target) {
	root := vaultClient(t, tg)
	db, admin, adminPW := setupDatabase(t, root)

	user, pw, s := issue(t, root, db, "reader")
	if !strings.HasPrefix(user, "v-root-reader-") || !strings.HasPrefix(s.LeaseID, "database/creds/reader/") || s.LeaseDuration != 3600 {
		t.Errorf("user %q, lease %q for %ds", user, s.LeaseID, s.LeaseDuration)
	}
	if err := db.RunAs(t, user, pw, "SELECT * FROM features"); err != nil {
		t.Fatalf("the issued user cannot read: %v", err)
	}
	if err := db.RunAs(t, user, pw, "DELETE FROM features"); err == nil {
		t.Fatal("the issued user can delete, which its role does not grant")
	}

	// sys/leases/renew moves VALID UNTIL with the lease.
	renewed, err := root.Sys().Renew(s.LeaseID, 7200)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if renewed.LeaseID != s.LeaseID || renewed.LeaseDuration != 7200 || !renewed.Renewable {
		t.Errorf("renew answered %+v", renewed)
	}
	if until := db.ValidUntil(t, user); until.Before(time.Now().Add(7190*time.Second)) || until.After(time.Now().Add(7210*time.Second)) {
		t.Errorf("after a 2h renewal VALID UNTIL is %v (now %v)", until, time.Now())
	}

	// sys/leases/revoke ends the session the user has open and removes it.
	session, err := db.ConnectAs(t.Context(), user, pw)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(t.Context())
	if err := root.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := session.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Error("a session of the revoked user still runs queries")
	}
	if err := db.RunAs(t, user, pw, "SELECT 1"); err == nil || db.RoleExists(t, user) {
		t.Errorf("the revoked user can still log in (%v) or exists", err)
	}
	_, err = root.Sys().Renew(s.LeaseID, 0)
	wantStatus(t, "renewing a revoked lease", err, 400)

	// Revoking the token that read the credentials revokes them too.
	if err := root.Sys().PutPolicy("db-reader", `path "database/creds/reader" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"db-reader"}, DisplayName: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	job, _ := root.Clone()
	job.SetToken(tok.Auth.ClientToken)
	jobUser, jobPW, _ := issue(t, job, db, "reader")
	if !strings.HasPrefix(jobUser, "v-token-ci-reader-") {
		t.Errorf("a user issued to token %q is named %q", "ci", jobUser)
	}
	if _, err := job.Logical().Read("database/roles/reader"); err == nil {
		t.Error("the job's token can read the role, which its policy does not allow")
	}
	if err := root.Auth().Token().RevokeTree(tok.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	// The token's leases are revoked in the background.
	waitFor(t, 10*time.Second, func() error {
		if db.RoleExists(t, jobUser) {
			return errors.New("the user of a revoked token still exists")
		}
		return nil
	})
	if err := db.RunAs(t, jobUser, jobPW, "SELECT 1"); err == nil {
		t.Error("the user of a revoked token can still log in")
	}

	// rotate-root: the old admin password stops working; the engine goes on.
	if _, err := root.Logical().Write("database/rotate-root/ml", nil); err != nil {
		t.Fatalf("rotate-root: %v", err)
	}
	if err := db.RunAs(t, admin, adminPW, "SELECT 1"); err == nil {
		t.Error("the old admin password works after rotate-root")
	}
	cfg, err := root.Logical().Read("database/config/ml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprint(cfg.Data), adminPW) || cfg.Data["connection_details"].(map[string]any)["password"] != nil {
		t.Error("the configuration read shows a password")
	}
	user2, pw2, s2 := issue(t, root, db, "reader")
	if err := db.RunAs(t, user2, pw2, "SELECT * FROM features"); err != nil {
		t.Errorf("a user issued after rotate-root cannot read: %v", err)
	}
	if err := root.Sys().Revoke(s2.LeaseID); err != nil {
		t.Fatalf("revoke after rotate-root: %v", err)
	}

	// Bad input: 400s, without the password.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "postgres://{{username}}:{{password}}@" + ln.Addr().String() + "/x?sslmode=disable"
	ln.Close()
	secretPW := "Do-not-show-" + adminPW
	for name, body := range map[string]map[string]any{
		"unreachable":     {"plugin_name": "postgresql-database-plugin", "connection_url": closed, "username": "x", "password": secretPW},
		"bad credentials": {"plugin_name": "postgresql-database-plugin", "connection_url": db.TemplateURL(), "username": admin, "password": secretPW},
		"unknown plugin":  {"plugin_name": "oracle-database-plugin", "connection_url": db.TemplateURL()},
	} {
		_, err := root.Logical().Write("database/config/bad", body)
		re := wantStatus(t, name, err, 400)
		if strings.Contains(strings.Join(re.Errors, " "), secretPW) {
			t.Errorf("%s: the error shows the password: %v", name, re.Errors)
		}
	}
	if _, err := root.Logical().Write("database/roles/other", map[string]any{"db_name": "ml", "creation_statements": `CREATE ROLE "{{name}}"`}); err != nil {
		t.Fatal(err)
	}
	_, err = root.Logical().Read("database/creds/other")
	if re := wantStatus(t, "a role not in allowed_roles", err, 400); !strings.Contains(re.Error(), `"other" is not an allowed role`) {
		t.Errorf("not allowed: %v", re)
	}
	if _, err := root.Logical().Write("database/roles/train-bad", map[string]any{"db_name": "ml",
		"creation_statements": []string{`CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`, `GRANT NOTHING TO "{{name}}"`}}); err != nil {
		t.Fatal(err)
	}
	_, err = root.Logical().Read("database/creds/train-bad")
	if re := wantStatus(t, "bad SQL", err, 400); !strings.Contains(re.Error(), "creation statement 2") {
		t.Errorf("bad SQL: %v", re)
	}
}
