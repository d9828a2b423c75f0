package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

// runMigrate runs `vigil operator migrate` with a configuration of src.
func runMigrate(t *testing.T, config string, extra ...string) (int, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "migrate.hcl")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := Migrate(t.Context(), append([]string{"-config", path}, extra...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func boltConfig(src, dst string) string {
	return fmt.Sprintf("storage_source \"bolt\" {\n  path = %q\n}\nstorage_destination \"bolt\" {\n  path = %q\n}\n", src, dst)
}

// fillBolt writes n entries into a new bolt store at path.
func fillBolt(t *testing.T, path string, n int) {
	t.Helper()
	b, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		k := fmt.Sprintf("logical/%02d/data/k%05d", i%7, i)
		if err := b.Put(t.Context(), k, []byte("ciphertext of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateRefuses(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	fillBolt(t, src, 10)
	full := filepath.Join(dir, "full.db")
	fillBolt(t, full, 1)
	empty := filepath.Join(dir, "empty.db")
	if b, err := bolt.Open(empty, bolt.Options{}); err != nil {
		t.Fatal(err)
	} else {
		b.Close()
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		name, config, msg string
	}{
		{"same file", boltConfig(src, "./src.db"), "the source and the destination are the same store"},
		{"destination holds data", boltConfig(src, full), `storage_destination already holds data ("logical/", ...)`},
		{"no source file", boltConfig(filepath.Join(dir, "typo.db"), filepath.Join(dir, "new.db")), "no such file"},
		{"empty source", boltConfig(empty, filepath.Join(dir, "new.db")), "storage_source holds no data"},
		{"bad config", "storage_source \"bolt\" { path = \"a\" }\nstorage_destination \"bolt\" { path = \"b\" }\nlog_level = \"x\"\n", "migrate.hcl:3: unknown key \"log_level\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runMigrate(t, tc.config)
			if code != 1 || !strings.Contains(errOut, tc.msg) || strings.Contains(out, "Success") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "typo.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a missing source was created")
	}
	if _, err := os.Stat(filepath.Join(dir, "new.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a migration refused for its source created the destination")
	}
	// The refused destination kept its one key.
	b, err := bolt.Open(full, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, _ := countKeys(t.Context(), b); n != 1 {
		t.Fatalf("the refused destination holds %d keys", n)
	}
}

func TestMigrateUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Migrate(t.Context(), []string{"-h"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "storage_destination") || !strings.Contains(out.String(), "-config") {
		t.Fatalf("-h: %d\n%s%s", code, out.String(), errOut.String())
	}
	if code := Migrate(t.Context(), nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "a -config file is required") {
		t.Fatalf("no -config: %d %s", code, errOut.String())
	}
	if code := Migrate(t.Context(), []string{"-config", "x", "extra"}, &out, &errOut); code != 2 {
		t.Fatalf("extra argument: %d", code)
	}
}

// Progress is printed every migrateProgress entries, and the count at
// the end.
func TestMigrateProgress(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	fillBolt(t, src, migrateProgress+5)
	code, out, errOut := runMigrate(t, boltConfig(src, dst))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := fmt.Sprintf("Copying bolt (%s) to bolt (%s)...\n  %d entries copied\nSuccess! Copied %d entries from bolt (%s) to bolt (%s).\n", src, dst, migrateProgress, migrateProgress+5, src, dst)
	if out != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// failingSource fails its snapshot after n entries.
type failingSource struct {
	*inmem.Backend
	n int
}

var errSourceRead = errors.New("source read failed")

func (f failingSource) Snapshot(ctx context.Context, fn func(string, []byte) error) error {
	i := 0
	return f.Backend.Snapshot(ctx, func(k string, v []byte) error {
		if i++; i > f.n {
			return errSourceRead
		}
		return fn(k, v)
	})
}

// putOnly hides every optional interface of its backend.
type putOnly struct{ storage.Backend }

func source(t *testing.T, n int) *inmem.Backend {
	t.Helper()
	b := inmem.New()
	for i := range n {
		if err := b.Put(t.Context(), fmt.Sprintf("k/%05d", i), []byte{byte(i), byte(i >> 8)}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// copyStore takes a restore where the destination has one, transactions
// where it has them, single puts otherwise; a source that fails midway
// leaves a destination that takes restores empty.
func TestCopyStore(t *testing.T) {
	const n = 2*migrateBatch + 7
	src := source(t, n)
	want, _ := countKeys(t.Context(), src)
	for name, dst := range map[string]storage.Backend{
		"restore":      inmem.New(),
		"transactions": storagetest.NewFaulty(inmem.New()),
		"puts":         putOnly{inmem.New()},
	} {
		t.Run(name, func(t *testing.T) {
			var calls int
			if err := copyStore(t.Context(), src, dst, func() { calls++ }); err != nil {
				t.Fatal(err)
			}
			got, err := countKeys(t.Context(), dst)
			if err != nil || got != want || calls != n {
				t.Fatalf("%d keys copied (%d progress calls), want %d: %v", got, calls, want, err)
			}
			v, err := dst.Get(t.Context(), "k/01031")
			if err != nil || !bytes.Equal(v, []byte{1031 & 0xff, 1031 >> 8}) {
				t.Fatalf("value %x, %v", v, err)
			}
		})
	}
	t.Run("failing source", func(t *testing.T) {
		dst := inmem.New()
		err := copyStore(t.Context(), failingSource{src, 1500}, dst, func() {})
		if !errors.Is(err, errSourceRead) {
			t.Fatalf("copy from a failing source: %v", err)
		}
		if got, _ := countKeys(t.Context(), dst); got != 0 {
			t.Fatalf("a failed copy left %d keys", got)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		dst := inmem.New()
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := copyStore(ctx, src, dst, func() {
			if calls++; calls == 100 {
				cancel()
			}
		})
		if err == nil {
			t.Fatal("a cancelled copy succeeded")
		}
		if got, _ := countKeys(t.Context(), dst); got != 0 {
			t.Fatalf("a cancelled copy left %d keys", got)
		}
	})
}
