//go:build !e2e

package acceptance

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// leaseIDs lists the leases under prefix (sys/leases/lookup/<prefix>/).
func leaseIDs(t *testing.T, root *vault.Client, prefix string) []string {
	t.Helper()
	s, err := root.Logical().List("sys/leases/lookup/" + prefix + "/")
	if err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return nil
	}
	var ids []string
	for _, k := range s.Data["keys"].([]any) {
		ids = append(ids, prefix+"/"+k.(string))
	}
	return ids
}

// lastLine returns the fields of the last line of the file at path.
func lastLine(t *testing.T, path string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(readFile(t, path)), "\n")
	return strings.Fields(lines[len(lines)-1])
}

// TestRunDynamicCreds: two -env of one dynamic secret get one user under
// one lease; vigil run renews the lease while the child runs; with
// -watch, a revoked lease gets new credentials and a graceful restart;
// when vigil run exits it revokes the lease and the user is dropped.
func TestRunDynamicCreds(t *testing.T) {
	t.Parallel()
	_, root, env := runServer(t)
	db, _, _ := setupDatabase(t, root)
	role := map[string]any{}
	for k, v := range dbReaderRole {
		role[k] = v
	}
	role["default_ttl"] = "6s" // renewed at about 4s
	if _, err := root.Logical().Write("database/roles/train-short", role); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log, stop := filepath.Join(dir, "log"), filepath.Join(dir, "stop")
	script := `echo "$PGUSER $PGPASSWORD" >> "$1"; trap 'echo term >> "$1"; exit 0' TERM; while [ ! -e "$2" ]; do sleep 0.05; done`
	r := startVigilRun(t.Context(), env, "-watch", "-poll=1h", "-grace=20s",
		"-env", "PGUSER=database/creds/train-short#username", "-env", "PGPASSWORD=database/creds/train-short#password",
		"--", "sh", "-c", script, "sh", log, stop)
	waitFile(t, log, " ")
	creds := lastLine(t, log)
	user, pw := creds[0], creds[1]
	db.DropRoleAtEnd(t, user)
	if err := db.RunAs(t, user, pw, "SELECT * FROM features"); err != nil {
		t.Fatalf("the child's user cannot read: %v", err)
	}
	leases := leaseIDs(t, root, "database/creds/train-short")
	if len(leases) != 1 {
		t.Fatalf("leases %v: want one for both variables", leases)
	}

	// The lease is renewed while the child runs.
	waitFor(t, 60*time.Second, func() error {
		s, err := root.Sys().Lookup(leases[0])
		if err != nil {
			return err
		}
		if s.Data["last_renewal"] == nil {
			return fmt.Errorf("lease %s not renewed yet", leases[0])
		}
		return nil
	})

	// Revoked from outside: new credentials, a graceful restart, and the
	// old user is gone.
	if err := root.Sys().Revoke(leases[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() error {
		if n := strings.Count(readFile(t, log), "\n"); n < 3 {
			return fmt.Errorf("the child log has %d lines, want a start, a term and a start", n)
		}
		return nil
	})
	lines := strings.Split(readFile(t, log), "\n")
	if lines[1] != "term" {
		t.Fatalf("the child log: %q", lines)
	}
	creds = lastLine(t, log)
	user2, pw2 := creds[0], creds[1]
	db.DropRoleAtEnd(t, user2)
	if user2 == user || db.RunAs(t, user2, pw2, "SELECT * FROM features") != nil {
		t.Fatalf("after the revocation the child has user %q (was %q)", user2, user)
	}
	if db.RoleExists(t, user) {
		t.Error("the revoked user still exists")
	}

	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, r.stderr)
	}
	if db.RoleExists(t, user2) {
		t.Error("the child's user outlived vigil run")
	}
	if l := leaseIDs(t, root, "database/creds/train-short"); len(l) != 0 {
		t.Errorf("leases left after vigil run: %v", l)
	}
	r.noValues(t, pw, pw2)
}

// TestRunStaticCreds: with -watch, a rotation of static credentials
// restarts the child with the new password.
func TestRunStaticCreds(t *testing.T) {
	t.Parallel()
	_, root, env := runServer(t)
	db, user, _, _ := setupStatic(t, root)
	if _, err := root.Logical().Write("database/static-roles/svc-serving", map[string]any{"db_name": "ml", "username": user, "rotation_period": "24h"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := `echo "$PGUSER $PASSWORD $LAST_VAULT_ROTATION" >> "$1"; trap 'exit 0' TERM; while :; do sleep 0.05; done`
	r := startVigilRun(t.Context(), env, "-watch", "-poll=50ms",
		"-env", "PGUSER=database/static-creds/svc-serving#username", "-path", "database/static-creds/svc-serving",
		"--", "sh", "-c", script, "sh", log)
	waitFile(t, log, user+" ")
	pw1 := lastLine(t, log)[1]
	logsIn(t, db, user, pw1)
	rotateRole(t, root, "svc-serving")
	waitFor(t, 60*time.Second, func() error {
		if n := strings.Count(readFile(t, log), "\n"); n < 2 {
			return fmt.Errorf("the child has not restarted")
		}
		return nil
	})
	pw2 := lastLine(t, log)[1]
	if pw2 == pw1 {
		t.Fatal("the child restarted with the old password")
	}
	logsIn(t, db, user, pw2)
	r.noValues(t, pw1, pw2)
	select {
	case code := <-r.done:
		t.Fatalf("vigil run exited: %d\n%s", code, r.stderr)
	default:
	}
	if strings.Count(readFile(t, log), "\n") != 2 {
		t.Errorf("the ttl of static credentials changes at every read; it must not restart the child:\n%s", readFile(t, log))
	}
}

// TestRunDynamicCredsFollowTheToken: dynamic credentials end with the
// token that asked for them, so when vigil run logs in again (its token's
// max TTL is near) it reads new ones under the new token and, with
// -watch, restarts the child with them.
func TestRunDynamicCredsFollowTheToken(t *testing.T) {
	t.Parallel()
	s, root, _ := runServer(t)
	db, _, _ := setupDatabase(t, root)
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("reader", `path "database/creds/reader" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	// A token good for 3s at most: vigil run logs in again within them.
	roleID, secretID := appRoleIDs(t, root, "short", map[string]any{"token_policies": "reader", "token_ttl": "2s", "token_max_ttl": "3s"})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "role-id"), roleID)
	writeFile(t, filepath.Join(dir, "secret-id"), secretID)
	log, stop := filepath.Join(dir, "log"), filepath.Join(dir, "stop")
	script := `echo "$PGUSER" >> "$1"; trap 'exit 0' TERM; while [ ! -e "$2" ]; do sleep 0.05; done`
	env := map[string]string{"VIGIL_ADDR": s.URL, "HOME": t.TempDir()}
	r := startVigilRun(t.Context(), env, "-watch", "-poll=1h", "-method=approle",
		"role_id=@"+filepath.Join(dir, "role-id"), "secret_id=@"+filepath.Join(dir, "secret-id"),
		"-env", "PGUSER=database/creds/reader#username", "--", "sh", "-c", script, "sh", log, stop)
	waitFile(t, log, "\n")
	first := lastLine(t, log)[0]
	db.DropRoleAtEnd(t, first)
	waitFor(t, 60*time.Second, func() error {
		if n := strings.Count(readFile(t, log), "\n"); n < 2 {
			return fmt.Errorf("the child has not been restarted with new credentials\n%s", r.stderr)
		}
		return nil
	})
	second := lastLine(t, log)[0]
	db.DropRoleAtEnd(t, second)
	if second == first {
		t.Fatalf("the child restarted with the same user %q", first)
	}
	if !strings.Contains(r.stderr.String(), "restarting the command") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, r.stderr)
	}
	// The first user went with the first token; the last with the last.
	for _, u := range []string{first, second} {
		waitFor(t, 30*time.Second, func() error {
			if db.RoleExists(t, u) {
				return fmt.Errorf("user %s outlived its token", u)
			}
			return nil
		})
	}
}
