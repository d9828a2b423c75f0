//go:build !e2e

package acceptance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// TestREADMERun runs section 12 of the README as written, with the
// server side of section 10 (a PostgreSQL database and its train-reader
// role): the commands' `python train.py` and `python serve.py` are
// scripts that record the variables they get, the AppRole files are the
// test's, and the service's poll is shortened.
func TestREADMERun(t *testing.T) {
	section := readmeSection(t, "### 12. Secrets in a process's environment")
	db, s, subst, _ := readmeDatabaseSetup(t, readmeSection(t, "### 10. A training job with its own database user"))
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	if err := root.Sys().MountWithContext(t.Context(), "secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}

	// The world around the README: the job's AppRole files, its env file,
	// and the programs.
	dir := t.TempDir()
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("trainer", `path "secret/data/ml/*" { capabilities = ["read"] }
path "database/creds/train-reader" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	roleID, secretID := appRoleIDs(t, root, "trainer", map[string]any{"token_policies": "trainer", "token_ttl": "10m"})
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	seen, served := filepath.Join(dir, "seen"), filepath.Join(dir, "served")
	subst["/etc/vigil/role-id"] = file("role-id", roleID)
	subst["/etc/vigil/secret-id"] = file("secret-id", secretID)
	subst["ml.env"] = file("ml.env", block(t, section, "dotenv", 0, "the env file"))
	subst["python"] = "sh"
	subst["train.py"] = file("train.sh", `printf '%s\n' "OPENAI_API_KEY=$OPENAI_API_KEY" "HF_TOKEN=$HF_TOKEN" "WANDB_ENTITY=$WANDB_ENTITY" "PGUSER=$PGUSER" "PGPASSWORD=$PGPASSWORD" > `+seen+"\n")
	subst["serve.py"] = file("serve.sh", `echo "start $OPENAI_API_KEY" >> `+served+`; [ "$OPENAI_API_KEY" = sk-rotated ] && exit 0; trap 'exit 0' TERM; while :; do sleep 0.05; done`+"\n")
	subst["-poll=10s"] = "-poll=50ms"

	you := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}, subst)
	got := func(want string) {
		t.Helper()
		if s := readFile(t, seen); s != want {
			t.Errorf("train.py saw:\n%s\nwant:\n%s", s, want)
		}
	}
	you.mustRun(block(t, section, "sh", 0, "the first vigil run"))
	got("OPENAI_API_KEY=sk-...\nHF_TOKEN=\nWANDB_ENTITY=\nPGUSER=\nPGPASSWORD=\n")
	you.mustRun(block(t, section, "sh", 1, "-env-file and -path"))
	got("OPENAI_API_KEY=sk-...\nHF_TOKEN=hf_...\nWANDB_ENTITY=acme\nPGUSER=\nPGPASSWORD=\n")

	// The job logs in with AppRole: no token of its own.
	job := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "HOME": t.TempDir()}, subst)
	job.mustRun(block(t, section, "sh", 2, "the job with AppRole and a database user"))
	var user string
	for _, l := range strings.Split(readFile(t, seen), "\n") {
		if u, ok := strings.CutPrefix(l, "PGUSER="); ok {
			user = u
		}
	}
	if !strings.HasPrefix(user, "v-approle-") || !strings.Contains(user, "-train-re-") || !strings.Contains(readFile(t, seen), "HF_TOKEN=hf_...\n") {
		t.Fatalf("train.py saw:\n%s", readFile(t, seen))
	}
	db.DropRoleAtEnd(t, user)
	// vigil run revoked its token, and the token's leases with it.
	waitFor(t, 30*time.Second, func() error {
		if db.RoleExists(t, user) {
			return errors.New("the job's database user outlived vigil run")
		}
		return nil
	})

	// The service restarts when its key changes.
	cmds := shellCommands(block(t, section, "sh", 3, "the service with -watch"))
	if len(cmds) != 1 {
		t.Fatalf("the service's block has %d commands, want 1", len(cmds))
	}
	done := make(chan error, 1)
	go func() {
		_, err := job.run(cmds[0])
		done <- err
	}()
	waitFile(t, served, "start sk-...\n")
	if _, err := root.KVv2("secret").Put(t.Context(), "ml/openai", map[string]any{"api_key": "sk-rotated"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the service was not restarted")
	}
	if got := readFile(t, served); got != "start sk-...\nstart sk-rotated\n" {
		t.Errorf("serve.py log: %q", got)
	}
	if _, err := os.Stat(subst["/etc/vigil/secret-id"]); err != nil {
		t.Errorf("the secret id file: %v", err)
	}
}
