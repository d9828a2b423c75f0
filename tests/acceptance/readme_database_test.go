//go:build !e2e

package acceptance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestREADMEDatabase runs section 10 of the README as written, on a real
// PostgreSQL: the server side, a job's read of its own user (which can
// log in and read the feature table), the revocation of every user of the
// role (which cannot log in any more), and a password policy for the
// connection (the job's next user has a password from it, and logs in).
func TestREADMEDatabase(t *testing.T) {
	section := readmeSection(t, "### 10. A training job with its own database user")
	db, s, subst, operator := readmeDatabaseSetup(t, section)

	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	tok, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"train-db"}})
	if err != nil {
		t.Fatal(err)
	}
	job := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": tok.Auth.ClientToken, "HOME": t.TempDir()}, subst)
	cmds := shellCommands(block(t, section, "sh", 1, "the job's read"))
	if len(cmds) != 1 {
		t.Fatalf("the job's block has %d commands, want 1", len(cmds))
	}
	out, err := job.run(cmds[0])
	if err != nil {
		t.Fatal(err)
	}
	var creds struct {
		LeaseID string `json:"lease_id"`
		Data    struct{ Username, Password string }
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil {
		t.Fatalf("the job's read: %v\n%s", err, out)
	}
	user := creds.Data.Username
	db.DropRoleAtEnd(t, user)
	if !strings.HasPrefix(user, "v-token-train-re-") || len(user) > 63 || !strings.HasPrefix(creds.LeaseID, "database/creds/train-reader/") {
		t.Errorf("user %q, lease %q", user, creds.LeaseID)
	}
	if err := db.RunAs(t, user, creds.Data.Password, "SELECT * FROM features"); err != nil {
		t.Fatalf("the job's user cannot read the features: %v", err)
	}
	// The job may not hand itself another role's users.
	if _, err := job.run(shellCmd{line: "vigil read database/roles/train-reader"}); err == nil {
		t.Error("the job's token reads the role's definition")
	}

	revoke := block(t, section, "sh", 2, "the revocation of every user of the role")
	operator.mustRun(revoke)
	if db.RoleExists(t, user) {
		t.Error("the user outlived the revocation of its role's leases")
	}
	if err := db.RunAs(t, user, creds.Data.Password, "SELECT 1"); err == nil {
		t.Error("the revoked user still logs in")
	}

	// The password policy: written, tried, and named on the connection;
	// the job's next user has a password from it, and logs in.
	policyCmds := shellCommands(block(t, section, "sh", 3, "the password policy"))
	if len(policyCmds) != 3 || policyCmds[0].stdin == "" {
		t.Fatalf("the password policy's block has %d commands, want 3, the first with the policy", len(policyCmds))
	}
	policy := policyCmds[0].stdin
	for _, c := range policyCmds {
		out, err := operator.run(c)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(c.line, "/generate") {
			f := strings.Fields(out)
			if i := slices.Index(f, "password"); i < 0 || i+1 >= len(f) || policyProblem(policy, f[i+1]) != "" {
				t.Errorf("%s answered %q", c.line, out)
			}
		}
	}
	out, err = job.run(cmds[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil {
		t.Fatalf("the job's read: %v\n%s", err, out)
	}
	db.DropRoleAtEnd(t, creds.Data.Username)
	if problem := policyProblem(policy, creds.Data.Password); problem != "" {
		t.Errorf("the job's password %q: %s", creds.Data.Password, problem)
	}
	if err := db.RunAs(t, creds.Data.Username, creds.Data.Password, "SELECT * FROM features"); err != nil {
		t.Fatalf("the job's user cannot read the features: %v", err)
	}
	operator.mustRun(revoke)
}

// TestREADMEStaticRole runs section 11 of the README as written, after
// section 10's server side: the serving user's static role with the
// alternating strategy, its credentials (which log in), and two
// rotations: credentials read before the first still log in after it and
// fail after the second.
func TestREADMEStaticRole(t *testing.T) {
	section := readmeSection(t, "### 11. Rotating a serving user without downtime")
	db, s, subst, operator := readmeDatabaseSetup(t, readmeSection(t, "### 10. A training job with its own database user"),
		// The serving user exists before Vigil manages it, as in
		// production; the admin may manage it.
		`CREATE ROLE llm_serving LOGIN PASSWORD 'set-by-hand'`, `GRANT SELECT ON features TO llm_serving`)
	db.DropRoleAtEnd(t, "llm_serving_b")
	db.DropRoleAtEnd(t, "llm_serving")
	operator.mustRun(block(t, section, "sh", 0, "the static role"))
	if err := db.RunAs(t, "llm_serving", "set-by-hand", "SELECT 1"); err == nil {
		t.Error("the password set by hand still works after the role's creation")
	}

	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	tok, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"llm-serving-db"}})
	if err != nil {
		t.Fatal(err)
	}
	app := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": tok.Auth.ClientToken, "HOME": t.TempDir()}, subst)
	readCmds := shellCommands(block(t, section, "sh", 1, "the service's read"))
	if len(readCmds) != 1 {
		t.Fatalf("the service's block has %d commands, want 1", len(readCmds))
	}
	read := func() (user, password string) {
		t.Helper()
		c := readCmds[0]
		c.line = strings.Replace(c.line, "vigil read ", "vigil read -format=json ", 1)
		out, err := app.run(c)
		if err != nil {
			t.Fatal(err)
		}
		var creds struct {
			Data struct{ Username, Password string }
		}
		if err := json.Unmarshal([]byte(out), &creds); err != nil {
			t.Fatalf("static-creds: %v", err)
		}
		return creds.Data.Username, creds.Data.Password
	}
	canRead := func(user, pw string) bool {
		t.Helper()
		return db.RunAs(t, user, pw, "SELECT * FROM features") == nil
	}

	u1, p1 := read()
	if u1 != "llm_serving" || !canRead(u1, p1) {
		t.Fatalf("first credentials: user %q, can read %v", u1, canRead(u1, p1))
	}
	rotate := block(t, section, "sh", 2, "the rotation")
	operator.mustRun(rotate)
	u2, p2 := read()
	if u2 != "llm_serving_b" || !canRead(u2, p2) {
		t.Fatalf("after a rotation: user %q, can read %v", u2, canRead(u2, p2))
	}
	if !canRead(u1, p1) {
		t.Error("credentials read before the rotation stopped working at once")
	}
	operator.mustRun(rotate)
	u3, p3 := read()
	if u3 != "llm_serving" || p3 == p1 || !canRead(u3, p3) {
		t.Fatalf("after a second rotation: user %q, can read %v", u3, canRead(u3, p3))
	}
	if canRead(u1, p1) {
		t.Error("credentials two rotations old still work")
	}
	if !canRead(u2, p2) {
		t.Error("the previous credentials stopped working")
	}
}

// readmeDatabaseSetup gives a README database test a PostgreSQL database
// with a features table and an admin user of its own (CREATEROLE, who may
// grant reading the table), runs the extra statements as the superuser
// (granting the admin every role they create), starts a server, and runs
// section's first shell block (section 10's server side) as the operator.
// It returns the database, the server, the README's stand-ins and the
// operator's shell.
func readmeDatabaseSetup(t *testing.T, section string, stmts ...string) (*pgtest.DB, *testcluster.Server, map[string]string, *docShell) {
	t.Helper()
	db := pgtest.New(t)
	db.Exec(t, "CREATE TABLE features (id int)", "INSERT INTO features VALUES (7)")
	admin, adminPW := db.CreateRole(t, "CREATEROLE")
	db.Exec(t, `GRANT SELECT ON features TO "`+admin+`" WITH GRANT OPTION`)
	for _, stmt := range stmts {
		db.Exec(t, stmt)
		if name, ok := strings.CutPrefix(stmt, "CREATE ROLE "); ok {
			db.Exec(t, `GRANT `+strings.Fields(name)[0]+` TO "`+admin+`" WITH ADMIN OPTION`)
		}
	}
	pwFile := filepath.Join(t.TempDir(), "admin.password")
	if err := os.WriteFile(pwFile, []byte(adminPW), 0o600); err != nil {
		t.Fatal(err)
	}
	s := testcluster.New(t, testcluster.Options{InMemory: true})
	subst := map[string]string{
		"postgresql://{{username}}:{{password}}@pg.internal:5432/features?sslmode=verify-full": db.TemplateURL(),
		"username=vigil-admin": "username=" + admin,
		"vigil-admin.password": pwFile,
	}
	operator := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}, subst)
	operator.mustRun(block(t, section, "sh", 0, "the server side of section 10"))
	return db, s, subst, operator
}
