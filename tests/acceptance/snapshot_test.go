//go:build !e2e

package acceptance

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// kvPut and kvGet use Vault's Go client on KV v2 at secret/.
func kvPut(t *testing.T, c *vault.Client, path, v string) {
	t.Helper()
	if _, err := c.KVv2("secret").Put(context.Background(), path, map[string]any{"v": v}); err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
}

func kvGet(t *testing.T, c *vault.Client, path string) string {
	t.Helper()
	sec, err := c.KVv2("secret").Get(context.Background(), path)
	if err != nil {
		if strings.Contains(err.Error(), "secret not found") {
			return ""
		}
		t.Fatalf("get %s: %v", path, err)
	}
	return sec.Data["v"].(string)
}

// runVigil runs the vigil CLI in-process and returns its exit code and
// output.
func runVigil(env map[string]string, stdin string, args ...string) (int, string, string) {
	var out, errOut strings.Builder
	code := cli.Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

// TestSnapshotWithTheCLI: `vigil operator snapshot save` and `restore`
// against a real server on bolt. The restore brings back the data of the
// snapshot and only it; the server serves on. Another cluster's snapshot
// is refused, then restored with -force: the server is sealed until the
// other cluster's unseal key opens it, on the other cluster's data.
func TestSnapshotWithTheCLI(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{MountKVv2: true})
	c := vaultClientAt(t, s.URL, s.RootToken)
	kvPut(t, c, "ml/openai", "sk-original")
	kvPut(t, c, "ml/gone-later", "x")
	dir := t.TempDir()
	file := filepath.Join(dir, "vigil.snap")
	env := map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}

	code, out, errOut := runVigil(env, "", "operator", "snapshot", "save", file)
	if code != 0 || !strings.Contains(out, "Success! Saved a snapshot") {
		t.Fatalf("save: %d %s %s", code, out, errOut)
	}
	raw, err := os.ReadFile(file)
	if err != nil || bytes.Contains(raw, []byte("sk-original")) || bytes.Contains(raw, []byte(s.RootToken)) {
		t.Fatalf("the snapshot file is unreadable or holds a secret in clear: %v", err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file mode %v", fi.Mode().Perm())
	}

	kvPut(t, c, "ml/openai", "sk-rotated")
	kvPut(t, c, "ml/new", "n")
	if err := c.KVv2("secret").DeleteMetadata(context.Background(), "ml/gone-later"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runVigil(env, "", "operator", "snapshot", "restore", file)
	if code != 0 || out != "Success! Restored the snapshot.\n" {
		t.Fatalf("restore: %d %s %s", code, out, errOut)
	}
	if got := kvGet(t, c, "ml/openai"); got != "sk-original" {
		t.Fatalf("after restore: %q", got)
	}
	if kvGet(t, c, "ml/new") != "" || kvGet(t, c, "ml/gone-later") != "x" {
		t.Fatal("the restore did not bring back the snapshot's content exactly")
	}

	// A damaged file is refused, and nothing changes.
	kvPut(t, c, "ml/openai", "sk-current")
	if err := os.WriteFile(file+".bad", raw[:len(raw)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runVigil(env, "", "operator", "snapshot", "restore", file+".bad")
	if code != 1 || !strings.Contains(errOut, "invalid snapshot: truncated") {
		t.Fatalf("damaged: %d %s", code, errOut)
	}
	if got := kvGet(t, c, "ml/openai"); got != "sk-current" {
		t.Fatalf("after a refused restore: %q", got)
	}

	// Another cluster's snapshot.
	other := testcluster.New(t, testcluster.Options{MountKVv2: true})
	kvPut(t, vaultClientAt(t, other.URL, other.RootToken), "ml/openai", "sk-other")
	otherFile := filepath.Join(dir, "other.snap")
	if code, _, errOut := runVigil(map[string]string{"VIGIL_ADDR": other.URL, "VIGIL_TOKEN": other.RootToken}, "", "operator", "snapshot", "save", otherFile); code != 0 {
		t.Fatalf("save other: %s", errOut)
	}
	code, _, errOut = runVigil(env, "", "operator", "snapshot", "restore", otherFile)
	if code != 1 || !strings.Contains(errOut, "Restore it with -force") {
		t.Fatalf("other cluster without -force: %d %s", code, errOut)
	}
	code, out, errOut = runVigil(env, "", "operator", "snapshot", "restore", "-force", otherFile)
	if code != 0 || !strings.Contains(errOut, "WARNING!") || !strings.Contains(out, "vigil operator unseal") {
		t.Fatalf("forced: %d %s %s", code, out, errOut)
	}
	if code, _, _ := runVigil(env, "", "status"); code != 2 {
		t.Fatalf("status after a forced restore: exit %d, want 2 (sealed)", code)
	}
	if code, _, errOut := runVigil(env, "", "operator", "unseal", other.Keys[0]); code != 0 {
		t.Fatalf("unseal with the other cluster's key: %s", errOut)
	}
	if got := kvGet(t, vaultClientAt(t, s.URL, other.RootToken), "ml/openai"); got != "sk-other" {
		t.Fatalf("after unsealing: %q", got)
	}
}

// TestSnapshotWithTheVaultClient: Vault's Go client, as `vault operator
// raft snapshot save|restore` uses it, on the raft paths: the archive it
// checks, and a restore of it.
func TestSnapshotWithTheVaultClient(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{MountKVv2: true})
	c := vaultClientAt(t, s.URL, s.RootToken)
	kvPut(t, c, "app", "before")
	var snap bytes.Buffer
	if err := c.Sys().RaftSnapshot(&snap); err != nil {
		t.Fatalf("RaftSnapshot: %v", err)
	}
	kvPut(t, c, "app", "after")
	if err := c.Sys().RaftSnapshotRestore(bytes.NewReader(snap.Bytes()), false); err != nil {
		t.Fatalf("RaftSnapshotRestore: %v", err)
	}
	if got := kvGet(t, c, "app"); got != "before" {
		t.Fatalf("after restore: %q", got)
	}
	// Vigil's CLI restores what Vault's saved.
	file := filepath.Join(t.TempDir(), "raft.snap")
	if err := os.WriteFile(file, snap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	kvPut(t, c, "app", "again")
	env := map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken}
	if code, _, errOut := runVigil(env, "", "operator", "snapshot", "restore", file); code != 0 {
		t.Fatalf("vigil restore of a raft-path snapshot: %s", errOut)
	}
	if got := kvGet(t, c, "app"); got != "before" {
		t.Fatalf("after the CLI's restore: %q", got)
	}
	// A token without sudo gets Vault's 403.
	if err := c.Sys().PutPolicy("reader", `path "sys/storage/raft/snapshot" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"reader"}})
	if err != nil {
		t.Fatal(err)
	}
	err = vaultClientAt(t, s.URL, sec.Auth.ClientToken).Sys().RaftSnapshot(&bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("snapshot without sudo: %v", err)
	}
}
