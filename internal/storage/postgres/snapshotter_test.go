package postgres

import (
	"testing"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

// The storage.Snapshotter conformance suite, on a plain backend and on one
// that holds the leader lock (fenced restores).
func TestSnapshotterConformance(t *testing.T) {
	storagetest.RunSnapshotter(t, func(t *testing.T) storage.Backend {
		return open(t, pgtest.New(t).AdminURL(), Options{})
	})
}

func TestSnapshotterConformanceFenced(t *testing.T) {
	storagetest.RunSnapshotter(t, func(t *testing.T) storage.Backend {
		b := open(t, pgtest.New(t).AdminURL(), Options{HAEnabled: true})
		campaign(t, b, "node-a")
		return b
	})
}
