package metrics_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/vigil-secrets/vigil/internal/metrics"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

// The timed backend is a backend like any other: it passes the
// conformance suite over both real backends, transactions included.
func TestStorageConformance(t *testing.T) {
	t.Run("inmem", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Backend {
			return metrics.New(metrics.Options{}).Storage("inmem", inmem.New())
		})
	})
	t.Run("bolt", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Backend {
			b, err := bolt.Open(filepath.Join(t.TempDir(), "v.db"), bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return metrics.New(metrics.Options{}).Storage("bolt", b)
		})
	})
}

// Snapshots reach the backend behind the timing (storage.SnapshotterOf).
func TestStorageSnapshotter(t *testing.T) {
	storagetest.RunSnapshotter(t, func(t *testing.T) storage.Backend {
		return metrics.New(metrics.Options{}).Storage("inmem", inmem.New())
	})
}

func TestStorageCountsOperationsAndErrors(t *testing.T) {
	m := metrics.New(metrics.Options{})
	b, err := bolt.Open(filepath.Join(t.TempDir(), "v.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := m.Storage("bolt", b)
	if _, ok := st.(storage.Transactional); !ok {
		t.Fatal("a transactional backend lost its transactions")
	}
	if _, ok := m.Storage("x", plainBackend{}).(storage.Transactional); ok {
		t.Fatal("a plain backend gained transactions")
	}
	ctx := context.Background()
	if err := st.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	b.Close()
	if err := st.Put(ctx, "b", []byte("2")); err == nil {
		t.Fatal("put on a closed backend worked")
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	errs := 0.0
	for _, f := range fams {
		if f.GetName() == "vault_storage_operation_duration_seconds" && len(f.GetMetric()) != 2*5 {
			t.Errorf("%d storage series, want one per operation of each of the two backends", len(f.GetMetric()))
		}
		if f.GetName() != "vault_storage_operation_errors_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() != "put" {
					t.Errorf("error counted for %s", l.GetValue())
				}
			}
			errs += s.GetCounter().GetValue()
		}
	}
	if errs != 1 {
		t.Errorf("%v storage errors counted, want 1 (the put on a closed backend; a missing key is no error)", errs)
	}
}

// plainBackend has no transactions.
type plainBackend struct{ storage.Backend }
