//go:build !e2e

package acceptance

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/server"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestREADMEBackups runs the README's "Backups and migration" section in
// process: the snapshot commands with the CLI against a server on bolt
// (the mistake they make is undone), then, with the server stopped, the
// migration configuration and command (`vigil operator migrate` is run by
// cmd/vigil; here by the function it calls), and a server on the new
// store unseals with the old keys and serves the secret. The e2e build
// runs the same section with the binary (e2e_backups_test.go).
func TestREADMEBackups(t *testing.T) {
	sec := readmeSection(t, "#### Backups and migration")
	s := testcluster.New(t, testcluster.Options{MountKVv2: true})
	c := vaultClientAt(t, s.URL, s.RootToken)
	if _, err := c.KVv2("secret").Put(context.Background(), "ml/openai", map[string]any{"api_key": "sk-abc123"}); err != nil {
		t.Fatal(err)
	}

	backup := filepath.Join(t.TempDir(), "vigil.snap")
	sh := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()},
		map[string]string{"/backup/vigil.snap": backup})
	sh.mustRun(block(t, sec, "sh", 0, "the snapshot commands"))
	if sh.ran != 3 {
		t.Fatalf("ran %d README commands, want 3", sh.ran)
	}
	restored, err := c.KVv2("secret").Get(context.Background(), "ml/openai")
	if err != nil || restored.Data["api_key"] != "sk-abc123" {
		t.Fatalf("after the README's restore: %v %v", restored, err)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the snapshot file: %v %v", fi, err)
	}

	keys, root := s.Keys, s.RootToken
	s.Close()
	newDir := t.TempDir()
	hcl := block(t, sec, "hcl", 0, "migrate.hcl")
	hcl = strings.NewReplacer("/var/lib/vigil/vigil.db", s.DBPath, "/mnt/new-disk/vigil/vigil.db", filepath.Join(newDir, "vigil.db")).Replace(hcl)
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "migrate.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(block(t, sec, "sh", 1, "the migrate command"))
	args := strings.Fields(line)
	if !slices.Equal(args, []string{"./vigil", "operator", "migrate", "-config", "migrate.hcl"}) {
		t.Fatalf("the test does not know how to run %q", line)
	}
	t.Chdir(cfgDir)
	var out, errOut bytes.Buffer
	if code := server.Migrate(context.Background(), args[3:], &out, &errOut); code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", line, code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Success! Copied") {
		t.Fatalf("migrate output:\n%s", out.String())
	}

	moved := testcluster.New(t, testcluster.Options{Dir: newDir, Reopen: true})
	moved.Keys = keys
	moved.Unseal(t)
	got, err := vaultClientAt(t, moved.URL, root).KVv2("secret").Get(context.Background(), "ml/openai")
	if err != nil || got.Data["api_key"] != "sk-abc123" {
		t.Fatalf("on the migrated store: %v %v", got, err)
	}
}
