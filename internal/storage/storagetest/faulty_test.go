package storagetest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

// TestFaulty: failing nothing, a Faulty backend is a conforming backend;
// failing some keys, it fails their writes (a transaction with one of
// them writes nothing) and passes the others.
func TestFaulty(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return storagetest.NewFaulty(inmem.New()) })

	ctx := context.Background()
	f := storagetest.NewFaulty(inmem.New())
	f.FailWrites(func(k string) bool { return strings.HasPrefix(k, "bad/") })
	if err := f.Put(ctx, "bad/x", []byte("v")); !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("put of a failing key: %v", err)
	}
	if err := f.Delete(ctx, "bad/x"); !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("delete of a failing key: %v", err)
	}
	if err := f.Put(ctx, "good/x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	err := f.Transaction(ctx, []storage.Op{{Key: "good/y", Value: []byte("v")}, {Key: "bad/y", Value: []byte("v")}})
	if !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("transaction with a failing key: %v", err)
	}
	if _, err := f.Get(ctx, "good/y"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a failed transaction wrote part of itself: %v", err)
	}
	f.FailWrites(nil)
	if err := f.Put(ctx, "bad/x", []byte("v")); err != nil {
		t.Fatalf("after FailWrites(nil): %v", err)
	}
}
