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

	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// TestREADMEBackupsBinary runs the README's "Backups and migration"
// section with the built binary: a server on bolt from a config file, the
// snapshot commands as written, then the server stopped, `vigil operator
// migrate` with the README's configuration to a real PostgreSQL (run by
// cmd/vigil, not the CLI), and a server started on PostgreSQL, unsealed
// with the same key, serving the secret.
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
	hcl := strings.ReplaceAll(block(t, sec, "hcl", 0, "migrate.hcl"), "/var/lib/vigil/vigil.db", filepath.Join(dir, "vigil.db"))
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "migrate.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	pgEnv := []string{"VIGIL_PG_CONNECTION_URL=" + pgtest.New(t).AdminURL()}
	var migrateArgs []string
	for _, line := range strings.Split(strings.TrimSpace(block(t, sec, "sh", 1, "the migrate commands")), "\n") {
		if strings.HasPrefix(line, "export VIGIL_PG_CONNECTION_URL=") {
			continue // pgEnv
		}
		args := strings.Fields(line)
		if len(args) < 2 || args[0] != "./vigil" {
			t.Fatalf("the test does not know how to run %q", line)
		}
		migrateArgs = args[1:]
		out, stderr, code := runCLI(t, pgEnv, "", migrateArgs...)
		if code != 0 || !strings.Contains(out, "Success! Copied") {
			t.Fatalf("%s: exit %d\n%s%s", line, code, out, stderr)
		}
	}
	// A second run refuses: the destination holds data now.
	if _, stderr, code := runCLI(t, pgEnv, "", migrateArgs...); code != 1 || !strings.Contains(stderr, "already holds data") {
		t.Fatalf("second migrate: exit %d\n%s", code, stderr)
	}

	// The server's storage block pointed at the destination, as the
	// README says.
	moved := filepath.Join(work, "vigil.hcl")
	cfgPG := fmt.Sprintf("storage \"postgresql\" {}\nlistener \"tcp\" {\n  address = %q\n}\nlog_level = \"warn\"\n", addr)
	if err := os.WriteFile(moved, []byte(cfgPG), 0o600); err != nil {
		t.Fatal(err)
	}
	p = startServerEnv(t, pgEnv, "-config", moved)
	waitHealthy(t, url, p)
	c2 := vaultClientAt(t, url, init.RootToken)
	if _, err := c2.Sys().Unseal(init.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if got := readKey(c2); got != "sk-abc123" {
		t.Fatalf("on PostgreSQL: %q", got)
	}
}
