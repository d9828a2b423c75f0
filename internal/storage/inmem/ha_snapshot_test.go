package inmem

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

func TestNodeSnapshotter(t *testing.T) {
	storagetest.RunSnapshotter(t, func(t *testing.T) storage.Backend {
		return New().Node()
	})
}

// A node's restore is fenced: once it lost the lock, it restores nothing.
func TestNodeRestoreFenced(t *testing.T) {
	ctx := context.Background()
	b := New()
	a := b.Node()
	if _, err := a.Campaign(ctx, "a", "https://a"); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "k", []byte("old")); err != nil {
		t.Fatal(err)
	}
	one := func(v string) func() (storage.Entry, error) {
		done := false
		return func() (storage.Entry, error) {
			if done {
				return storage.Entry{}, io.EOF
			}
			done = true
			return storage.Entry{Key: "k", Value: []byte(v)}, nil
		}
	}
	if err := a.Restore(ctx, one("new")); err != nil {
		t.Fatalf("restore while holding the lock: %v", err)
	}
	b.BreakLock()
	if err := a.Put(ctx, "k", []byte("old")); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("put after losing the lock: %v", err)
	}
	if err := a.Restore(ctx, one("fenced")); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("restore after losing the lock: %v", err)
	}
	if v, _ := b.Get(ctx, "k"); string(v) != "new" {
		t.Fatalf("k = %q", v)
	}
}
