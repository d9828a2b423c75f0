package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/server"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// migrateVia are the stores a migration round trip goes through, each as
// the label and body of its storage block for a new, empty store of the
// test's own: bolt -> X -> bolt must give identical data for each.
var migrateVia = []struct {
	name  string
	block func(t *testing.T) string
}{
	{"bolt", func(t *testing.T) string {
		return fmt.Sprintf("%q { path = %q }", "bolt", filepath.Join(t.TempDir(), "middle.db"))
	}},
	{"postgresql", func(t *testing.T) string {
		return fmt.Sprintf("%q { connection_url = %q }", "postgresql", pgtest.New(t).AdminURL())
	}},
	{"postgresql with ha_enabled", func(t *testing.T) string {
		return fmt.Sprintf("%q {\n  connection_url = %q\n  ha_enabled = true\n}", "postgresql", pgtest.New(t).AdminURL())
	}},
}

// migrateBetween runs `vigil operator migrate` from one storage block to
// another and fails the test unless it succeeds.
func migrateBetween(t *testing.T, from, to string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "migrate.hcl")
	if err := os.WriteFile(cfg, []byte("storage_source "+from+"\nstorage_destination "+to+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := server.Migrate(context.Background(), []string{"-config", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("migrate %s -> %s: exit %d\n%s%s", from, to, code, out.String(), errOut.String())
	}
}

// boltContent returns every key and value of a closed bolt store.
func boltContent(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out := map[string]string{}
	var s storage.Snapshotter = b
	if err := s.Snapshot(context.Background(), func(k string, v []byte) error {
		out[k] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateRoundTrip: a real server's bolt store, migrated to another
// store (bolt, PostgreSQL) and back to a new bolt file, holds exactly the
// same keys and values (ciphertext copied as is), and a server on the copy
// unseals with the original keys and serves the original secrets.
func TestMigrateRoundTrip(t *testing.T) {
	for _, via := range migrateVia {
		t.Run(via.name, func(t *testing.T) {
			srcDir, dstDir := t.TempDir(), t.TempDir()
			s := testcluster.New(t, testcluster.Options{Dir: srcDir, MountKVv2: true, Shares: 3, Threshold: 2})
			c, err := api.NewClient(api.Config{Address: s.URL, Token: s.RootToken})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				body := map[string]any{"data": map[string]any{"api_key": fmt.Sprintf("sk-%03d", i)}}
				if _, err := c.Do(t.Context(), "PUT", fmt.Sprintf("secret/data/ml/app%02d", i), nil, body); err != nil {
					t.Fatal(err)
				}
			}
			keys, root := s.Keys, s.RootToken
			s.Close() // offline from here

			src := filepath.Join(srcDir, "vigil.db")
			dst := filepath.Join(dstDir, "vigil.db")
			middle := via.block(t)
			migrateBetween(t, fmt.Sprintf("%q { path = %q }", "bolt", src), middle)
			migrateBetween(t, middle, fmt.Sprintf("%q { path = %q }", "bolt", dst))

			before, after := boltContent(t, src), boltContent(t, dst)
			if len(before) < 50 || len(after) != len(before) {
				t.Fatalf("%d keys after the round trip, %d before", len(after), len(before))
			}
			for k, v := range before {
				if after[k] != v {
					t.Fatalf("key %q differs after the round trip", k)
				}
			}

			copySrv := testcluster.New(t, testcluster.Options{Dir: dstDir, Reopen: true})
			copySrv.Keys = keys[:2]
			copySrv.Unseal(t)
			c, err = api.NewClient(api.Config{Address: copySrv.URL, Token: root})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(t.Context(), "GET", "secret/data/ml/app42", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			sec, err := resp.Secret()
			if err != nil || sec.Data["data"].(map[string]any)["api_key"] != "sk-042" {
				t.Fatalf("read from the migrated store: %v %v", sec, err)
			}
		})
	}
}
