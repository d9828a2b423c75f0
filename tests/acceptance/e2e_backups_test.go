//go:build e2e

package acceptance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// TestREADMEBackupsBinary runs the README's "Backups and migration"
// section with the built binary: a server on bolt from a config file, the
// snapshot commands as written, then the server stopped, `vigil operator
// migrate` with the README's configuration (run by cmd/vigil, not the
// CLI), and the server started again on the new store, unsealed with the
// same keys, serving the secret.
func TestREADMEBackupsBinary(t *testing.T) {
	sec := readmeSection(t, "#### Backups and migration")
	dir := t.TempDir()
	addr := freeAddr(t)
	url := "http://" + addr
	cfg := writeConfig(t, dir, addr)
	p := startServer(t, "-config", cfg)
	waitHealthy(t, url, p)
	c := vaultClientAt(t, url, "")
	init, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sys().Unseal(init.Keys[0]); err != nil {
		t.Fatal(err)
	}
	c.SetToken(init.RootToken)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(context.Background(), "ml/openai", map[string]any{"api_key": "sk-abc123"}); err != nil {
		t.Fatal(err)
	}
	readKey := func(c *vault.Client) string {
		t.Helper()
		s, err := c.KVv2("secret").Get(context.Background(), "ml/openai")
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(s.Data["api_key"])
	}

	backup := filepath.Join(t.TempDir(), "vigil.snap")
	env := []string{"VIGIL_ADDR=" + url, "VIGIL_TOKEN=" + init.RootToken, "HOME=" + t.TempDir()}
	for _, line := range strings.Split(block(t, sec, "sh", 0, "the snapshot commands"), "\n") {
		args := strings.Fields(strings.ReplaceAll(stripComment(line), "/backup/vigil.snap", backup))
		if len(args) == 0 {
			continue
		}
		if args[0] != "./vigil" {
			t.Fatalf("the test does not know how to run %q", line)
		}
		if out, stderr, code := runCLI(t, env, "", args[1:]...); code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", line, code, out, stderr)
		}
	}
	if got := readKey(c); got != "sk-abc123" {
		t.Fatalf("after the README's restore: %q", got)
	}

	// `vigil operator -h` lists migrate, which the binary runs itself.
	if out, _, code := runCLI(t, env, "", "operator", "-h"); code != 0 || !strings.Contains(out, "migrate") {
		t.Fatalf("operator -h: %d\n%s", code, out)
	}
	if out, _, code := runCLI(t, env, "", "operator", "migrate", "-h"); code != 0 || !strings.Contains(out, "storage_destination") {
		t.Fatalf("operator migrate -h: %d\n%s", code, out)
	}

	p.stop(t, syscall.SIGTERM)
	newDir := t.TempDir()
	newDB := filepath.Join(newDir, "vigil.db")
	hcl := strings.NewReplacer("/var/lib/vigil/vigil.db", filepath.Join(dir, "vigil.db"), "/mnt/new-disk/vigil/vigil.db", newDB).
		Replace(block(t, sec, "hcl", 0, "migrate.hcl"))
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "migrate.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(block(t, sec, "sh", 1, "the migrate command"))
	args := strings.Fields(line)
	if len(args) < 2 || args[0] != "./vigil" {
		t.Fatalf("the test does not know how to run %q", line)
	}
	t.Chdir(work)
	out, stderr, code := runCLI(t, nil, "", args[1:]...)
	if code != 0 || !strings.Contains(out, "Success! Copied") {
		t.Fatalf("%s: exit %d\n%s%s", line, code, out, stderr)
	}
	// A second run refuses: the destination holds data now.
	if _, stderr, code := runCLI(t, nil, "", args[1:]...); code != 1 || !strings.Contains(stderr, "already holds data") {
		t.Fatalf("second migrate: exit %d\n%s", code, stderr)
	}

	// The server's storage block pointed at the new store.
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(newDir, "config.hcl")
	if err := os.WriteFile(moved, []byte(strings.Replace(string(raw), filepath.Join(dir, "vigil.db"), newDB, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	p = startServer(t, "-config", moved)
	waitHealthy(t, url, p)
	c2 := vaultClientAt(t, url, init.RootToken)
	if _, err := c2.Sys().Unseal(init.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if got := readKey(c2); got != "sk-abc123" {
		t.Fatalf("on the migrated store: %q", got)
	}
}
