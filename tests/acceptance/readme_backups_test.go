//go:build !e2e

package acceptance

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/server"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestREADMEBackups runs the README's "Backups and migration" section in
// process: the snapshot commands with the CLI against a server on bolt
// (the mistake they make is undone), then, with the server stopped, the
// migration configuration and commands to a real PostgreSQL (`vigil
// operator migrate` is run by cmd/vigil; here by the function it calls),
// and back with the blocks swapped, as the text says: the new bolt file
// holds exactly the old one's entries, and a server on it unseals with
// the old keys and serves the secret. The e2e build runs the section with
// the binary and a server on PostgreSQL (e2e_backups_test.go).
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
	before := boltEntries(t, s.DBPath)

	// bolt -> PostgreSQL, as written, with the URL in the environment.
	pg := pgtest.New(t).AdminURL()
	hcl := block(t, sec, "hcl", 0, "migrate.hcl")
	hcl = strings.ReplaceAll(hcl, "/var/lib/vigil/vigil.db", s.DBPath)
	cfgDir := t.TempDir()
	t.Chdir(cfgDir)
	writeFile(t, "migrate.hcl", hcl)
	for _, line := range strings.Split(strings.TrimSpace(block(t, sec, "sh", 1, "the migrate commands")), "\n") {
		if name, ok := strings.CutPrefix(line, "export VIGIL_PG_CONNECTION_URL="); ok && name != "" {
			t.Setenv("VIGIL_PG_CONNECTION_URL", pg)
			continue
		}
		runMigrateLine(t, line)
	}

	// And back, the blocks swapped, to a new bolt file.
	newDir := t.TempDir()
	back := strings.NewReplacer("storage_source", "storage_destination", "storage_destination", "storage_source",
		s.DBPath, filepath.Join(newDir, "vigil.db")).Replace(hcl)
	writeFile(t, "migrate.hcl", back)
	runMigrateLine(t, "./vigil operator migrate -config migrate.hcl")
	if after := boltEntries(t, filepath.Join(newDir, "vigil.db")); !maps.Equal(before, after) {
		t.Fatalf("bolt -> PostgreSQL -> bolt: %d entries before, %d after, or different values", len(before), len(after))
	}

	moved := testcluster.New(t, testcluster.Options{Dir: newDir, Reopen: true})
	moved.Keys = keys
	moved.Unseal(t)
	got, err := vaultClientAt(t, moved.URL, root).KVv2("secret").Get(context.Background(), "ml/openai")
	if err != nil || got.Data["api_key"] != "sk-abc123" {
		t.Fatalf("after the round trip: %v %v", got, err)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runMigrateLine runs `./vigil operator migrate ...` in process, as
// cmd/vigil does.
func runMigrateLine(t *testing.T, line string) {
	t.Helper()
	args := strings.Fields(line)
	if len(args) < 3 || args[0] != "./vigil" || args[1] != "operator" || args[2] != "migrate" {
		t.Fatalf("the test does not know how to run %q", line)
	}
	var out, errOut bytes.Buffer
	if code := server.Migrate(context.Background(), args[3:], &out, &errOut); code != 0 || !strings.Contains(out.String(), "Success! Copied") {
		t.Fatalf("%s: exit %d\n%s%s", line, code, out.String(), errOut.String())
	}
}

// boltEntries returns every key and value of a closed bolt store.
func boltEntries(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out := map[string]string{}
	if err := b.Snapshot(context.Background(), func(k string, v []byte) error {
		out[k] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
