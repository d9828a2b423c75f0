//go:build !e2e

package acceptance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestREADMEDatabase runs section 10 of the README as written, on a real
// PostgreSQL: the server side, a job's read of its own user (which can
// log in and read the feature table), and the revocation of every user
// of the role (which cannot log in any more).
func TestREADMEDatabase(t *testing.T) {
	section := readmeSection(t, "### 10. A training job with its own database user")
	db := pgtest.New(t)
	db.Exec(t, "CREATE TABLE features (id int)", "INSERT INTO features VALUES (7)")
	admin, adminPW := db.CreateRole(t, "CREATEROLE")
	db.Exec(t, `GRANT SELECT ON features TO "`+admin+`" WITH GRANT OPTION`)
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
	operator.mustRun(block(t, section, "sh", 0, "the server side"))

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

	operator.mustRun(block(t, section, "sh", 2, "the revocation of every user of the role"))
	if db.RoleExists(t, user) {
		t.Error("the user outlived the revocation of its role's leases")
	}
	if err := db.RunAs(t, user, creds.Data.Password, "SELECT 1"); err == nil {
		t.Error("the revoked user still logs in")
	}
}
