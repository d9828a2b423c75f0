package bolt

import (
	"os"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

// A new data file gets pageSize pages; a file made with another page size
// keeps it, and its content, when opened.
func TestPageSize(t *testing.T) {
	dir := t.TempDir()
	b := mustOpen(t, filepath.Join(dir, "new.db"), Options{NoSync: true})
	if got, want := b.db.Info().PageSize, max(pageSize, os.Getpagesize()); got != want {
		t.Errorf("new file: page size %d, want %d", got, want)
	}
	b.Close()

	path := filepath.Join(dir, "old.db")
	old := mustOpen(t, path, Options{NoSync: true})
	old.Close()
	// Rebuild the file with 4 KiB pages, as an older version made it.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		bkt, err := tx.CreateBucket([]byte(bucketName))
		if err != nil {
			return err
		}
		return bkt.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b = mustOpen(t, path, Options{NoSync: true})
	defer b.Close()
	if got := b.db.Info().PageSize; got != 4096 {
		t.Errorf("old file: page size %d, want 4096", got)
	}
	mustPut(t, b, "k2", "v2")
	b.checkpointNow(t)
	for k, want := range map[string]string{"k": "v", "k2": "v2"} {
		v, err := b.Get(t.Context(), k)
		if err != nil || string(v) != want {
			t.Fatalf("%s: %q, %v; want %q", k, v, err, want)
		}
	}
}
