// Package testcluster starts real in-process Vigil servers for tests: real
// storage (bbolt in a temporary directory by default), the real barrier,
// core and HTTP API on a loopback port. It is imported only from _test.go
// files (the dependency test checks this).
package testcluster

import (
	"context"
	"encoding/hex"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/httpapi"
	"github.com/vigil-secrets/vigil/internal/metrics"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/server"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

// Options configures a test server.
type Options struct {
	// InMemory uses the inmem backend instead of bolt.
	InMemory bool
	// Shares and Threshold of the unseal key (1 and 1 when zero).
	Shares, Threshold int
	// Sealed leaves the server initialized but sealed.
	Sealed bool
	// Uninitialized leaves the server uninitialized (implies sealed).
	Uninitialized bool
	// MountKVv2 mounts KV v2 at secret/ (as dev mode does).
	MountKVv2 bool
	// Dir holds the bolt file; a new t.TempDir() when empty.
	Dir string
	// Reopen opens the existing storage in Dir as it is (a restart): no
	// init, no unseal.
	Reopen bool
	// UnauthenticatedMetrics serves sys/metrics without a token.
	UnauthenticatedMetrics bool
	// DisablePrometheus refuses the Prometheus format of sys/metrics.
	DisablePrometheus bool
	// Clock is the server's clock (a *clock.Fake drives lease expiry in
	// tests); nil means the wall clock.
	Clock clock.Clock
	// Seal is an auto seal (nil: Shamir). Shares and Threshold are then
	// the recovery key's, init leaves the server unsealed, and Reopen
	// unseals it as a server's start does.
	Seal seal.Wrapper
	// WrapStorage, when set, wraps the physical storage the core uses
	// (a storagetest.Faulty that fails the writes of some records, say).
	// Server.Storage stays the backend it wraps.
	WrapStorage func(storage.Backend) storage.Backend
}

// Server is a running test server.
type Server struct {
	Core      *core.Core
	Metrics   *metrics.Metrics
	HTTP      *httptest.Server
	URL       string
	Storage   storage.Backend
	DBPath    string
	RootToken string
	// Keys are the hex unseal key shares.
	Keys []string
	// RecoveryKeys are the hex recovery key shares (auto seals).
	RecoveryKeys []string
}

// New starts a server and registers its shutdown with t.Cleanup.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx := context.Background()
	s := &Server{}
	if opts.InMemory {
		s.Storage = inmem.New()
	} else {
		dir := opts.Dir
		if dir == "" {
			dir = t.TempDir()
		}
		s.DBPath = filepath.Join(dir, "vigil.db")
		b, err := bolt.Open(s.DBPath, bolt.Options{})
		if err != nil {
			t.Fatalf("testcluster: open bolt: %v", err)
		}
		s.Storage = b
	}
	// Wired as internal/server wires a real server.
	s.Metrics = metrics.New(metrics.Options{DisablePrometheus: opts.DisablePrometheus})
	phys := s.Storage
	if opts.WrapStorage != nil {
		phys = opts.WrapStorage(phys)
	}
	c, err := core.New(core.Config{
		Storage:        s.Metrics.Storage(storageType(opts), phys),
		StorageType:    storageType(opts),
		Seal:           opts.Seal,
		Factories:      server.Factories(),
		AuthFactories:  server.AuthFactories(),
		AuditFactories: server.AuditFactories(),
		Metrics:        s.Metrics,
		Clock:          opts.Clock,
	})
	if err != nil {
		t.Fatalf("testcluster: core: %v", err)
	}
	s.Metrics.Watch(c)
	s.Core = c
	s.HTTP = httptest.NewServer(httpapi.New(httpapi.Options{Core: c, Version: core.Version, Metrics: s.Metrics, UnauthenticatedMetrics: opts.UnauthenticatedMetrics}))
	s.URL = s.HTTP.URL
	t.Cleanup(s.Close)
	if opts.Reopen && opts.Seal != nil {
		if err := c.AutoUnseal(ctx); err != nil {
			t.Fatalf("testcluster: auto-unseal: %v", err)
		}
	}
	if opts.Uninitialized || opts.Reopen {
		return s
	}
	shares, threshold := opts.Shares, opts.Threshold
	if shares == 0 {
		shares, threshold = 1, 1
	}
	req := core.InitRequest{SecretShares: shares, SecretThreshold: threshold}
	if opts.Seal != nil {
		req = core.InitRequest{RecoveryShares: shares, RecoveryThreshold: threshold}
	}
	res, err := c.Init(ctx, req)
	if err != nil {
		t.Fatalf("testcluster: init: %v", err)
	}
	s.RootToken = res.RootToken.Reveal()
	for _, k := range res.Keys {
		s.Keys = append(s.Keys, hex.EncodeToString(k))
	}
	for _, k := range res.RecoveryKeys {
		s.RecoveryKeys = append(s.RecoveryKeys, hex.EncodeToString(k))
	}
	switch {
	case opts.Sealed && opts.Seal != nil:
		// Init unsealed it; seal it as sys/seal does.
		if err := c.SealInternal(ctx); err != nil {
			t.Fatalf("testcluster: seal: %v", err)
		}
		return s
	case opts.Sealed:
		return s
	case opts.Seal == nil:
		s.Unseal(t)
	}
	if opts.MountKVv2 {
		if err := c.EnableMount(ctx, "secret/", core.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
			t.Fatalf("testcluster: mount secret/: %v", err)
		}
	}
	return s
}

func storageType(opts Options) string {
	if opts.InMemory {
		return "inmem"
	}
	return "bolt"
}

// Unseal submits threshold key shares.
func (s *Server) Unseal(t testing.TB) {
	t.Helper()
	for _, k := range s.Keys {
		st, err := s.Core.Unseal(context.Background(), k)
		if err != nil {
			t.Fatalf("testcluster: unseal: %v", err)
		}
		if !st.Sealed {
			return
		}
	}
	t.Fatal("testcluster: still sealed after every key share")
}

// Close stops the HTTP server, seals the core and closes the storage.
func (s *Server) Close() {
	s.HTTP.Close()
	_ = s.Core.SealInternal(context.Background())
	if c, ok := s.Storage.(storage.Closer); ok {
		_ = c.Close()
	}
}
