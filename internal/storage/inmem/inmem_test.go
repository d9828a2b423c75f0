package inmem_test

import (
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return inmem.New()
	})
}

func TestSnapshotter(t *testing.T) {
	storagetest.RunSnapshotter(t, func(t *testing.T) storage.Backend {
		return inmem.New()
	})
}
