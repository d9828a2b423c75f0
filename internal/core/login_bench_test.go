package core

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/auth/approle"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

// benchCore returns an initialized, unsealed core on a bolt file (fsynced,
// as the server runs it), or in memory with inmem set, and its root token.
// In memory, allocations per op are those of the request alone (bolt's
// checkpoints add theirs to whichever op runs meanwhile).
func benchCore(b *testing.B, inMem bool) (*Core, secret.String) {
	b.Helper()
	ctx := context.Background()
	var phys interface {
		storage.Backend
		Close() error
	}
	if inMem {
		phys = closer{inmem.New()}
	} else {
		bp, err := bolt.Open(filepath.Join(b.TempDir(), "vigil.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		phys = bp
	}
	c, err := New(Config{Storage: phys, StorageType: "bolt", LoginRate: 1e6, LoginBurst: 1e6,
		AuthFactories: map[string]logical.Factory{"approle": approle.Factory}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.SealInternal(context.Background())
		_ = phys.Close()
	})
	res, err := c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Unseal(ctx, hex.EncodeToString(res.Keys[0])); err != nil {
		b.Fatal(err)
	}
	return c, res.RootToken
}

type closer struct{ *inmem.Backend }

func (closer) Close() error { return nil }

// runParallel32 runs op b.N times from 32 goroutines (the load of
// ./bench), and reports the process's CPU time per op.
func runParallel32(b *testing.B, op func() error) {
	b.Helper()
	const inFlight = 32
	var next sync.Mutex
	n := 0
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range inFlight {
		wg.Go(func() {
			for {
				next.Lock()
				if n >= b.N {
					next.Unlock()
					return
				}
				n++
				next.Unlock()
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoginAppRole runs AppRole logins through the whole pipeline on
// fsynced bolt storage, 32 in flight, as the bench's "approle login": the
// role and secret ID read, the service token and its lease stored.
func BenchmarkLoginAppRole(b *testing.B) { onBothStorages(b, benchLoginAppRole) }

// onBothStorages runs bench on fsynced bolt ("bolt") and in memory
// ("inmem").
func onBothStorages(b *testing.B, bench func(b *testing.B, inMem bool)) {
	for _, inMem := range []bool{false, true} {
		name := "bolt"
		if inMem {
			name = "inmem"
		}
		b.Run(name, func(b *testing.B) { bench(b, inMem) })
	}
}

func benchLoginAppRole(b *testing.B, inMem bool) {
	c, root := benchCore(b, inMem)
	ctx := context.Background()
	do := func(tok secret.String, op logical.Operation, path string, data map[string]any) *logical.Response {
		res, err := c.HandleRequest(ctx, &Request{ID: secret.UUID(), Operation: op, Path: path, Data: data, Token: tok})
		if err != nil {
			b.Fatalf("%s: %v", path, err)
		}
		return res.Response
	}
	do(root, logical.UpdateOperation, "sys/auth/approle", map[string]any{"type": "approle"})
	do(root, logical.UpdateOperation, "auth/approle/role/app", map[string]any{"token_policies": "dev", "token_ttl": "1h"})
	roleID := do(root, logical.ReadOperation, "auth/approle/role/app/role-id", nil).Data["role_id"].(string)
	secretID := do(root, logical.UpdateOperation, "auth/approle/role/app/secret-id", nil).Data["secret_id"].(string)
	conn := &logical.Connection{RemoteAddr: "127.0.0.1"}
	runParallel32(b, func() error {
		_, err := c.HandleRequest(ctx, &Request{
			ID: secret.UUID(), Operation: logical.UpdateOperation, Path: "auth/approle/login", Connection: conn,
			Data: map[string]any{"role_id": roleID, "secret_id": secretID},
		})
		return err
	})
}

// BenchmarkTokenCreate creates child service tokens of the root token
// through the pipeline (auth/token/create) on fsynced bolt, 32 in flight.
func BenchmarkTokenCreate(b *testing.B) { onBothStorages(b, benchTokenCreate) }

func benchTokenCreate(b *testing.B, inMem bool) {
	c, root := benchCore(b, inMem)
	ctx := context.Background()
	conn := &logical.Connection{RemoteAddr: "127.0.0.1"}
	runParallel32(b, func() error {
		_, err := c.HandleRequest(ctx, &Request{
			ID: secret.UUID(), Operation: logical.UpdateOperation, Path: "auth/token/create", Connection: conn, Token: root,
			Data: map[string]any{"policies": []any{"dev"}, "ttl": "1h"},
		})
		return err
	})
}
