package core

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

// writeCounter counts the writes (puts, deletes, transactions) that reach
// the physical storage, and remembers the keys of each.
type writeCounter struct {
	*storagetest.Faulty
	mu     sync.Mutex
	writes [][]string
}

func (w *writeCounter) record(keys ...string) {
	w.mu.Lock()
	w.writes = append(w.writes, keys)
	w.mu.Unlock()
}

func (w *writeCounter) Put(ctx context.Context, key string, value []byte) error {
	w.record(key)
	return w.Faulty.Put(ctx, key, value)
}

func (w *writeCounter) Delete(ctx context.Context, key string) error {
	w.record(key)
	return w.Faulty.Delete(ctx, key)
}

func (w *writeCounter) Transaction(ctx context.Context, ops []storage.Op) error {
	keys := make([]string, len(ops))
	for i, op := range ops {
		keys[i] = op.Key
	}
	w.record(keys...)
	return w.Faulty.Transaction(ctx, ops)
}

// take returns the writes counted since the last call.
func (w *writeCounter) take() [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := w.writes
	w.writes = nil
	return got
}

// keysUnder lists every key under prefix in the physical storage.
func keysUnder(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		names, err := b.List(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.HasSuffix(n, "/") {
				walk(dir + n)
			} else {
				out = append(out, dir+n)
			}
		}
	}
	walk(prefix)
	return out
}

// TestTokenAndLeaseInOneWrite checks that a service token that expires is
// stored with its lease in one storage transaction (a token creation and
// an AppRole login each cost one commit), and that when that write fails,
// whichever of the token's or the lease's records made it fail, neither is
// left behind: no token without a lease, no lease without a token, nothing
// scheduled.
func TestTokenAndLeaseInOneWrite(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	phys := &writeCounter{Faulty: storagetest.NewFaulty(inmem.New())}
	f := leaseFixture(t, phys, clk, &credsEngine{})
	f.unsealWith(t, f.keys)
	ctx := context.Background()
	<-f.c.leases.Restored()

	tokens := func() []string { return keysUnder(t, phys, tokenView+"id/") }
	leases := func() []string { return keysUnder(t, phys, leaseView+"id/") }
	baseTokens, baseLeases := len(tokens()), len(leases())
	scheduled := len(f.c.leases.IDs())

	// One token, one transaction holding the token's and the lease's
	// records.
	phys.take()
	resp, err := f.do(t, logical.UpdateOperation, "auth/token/create", map[string]any{"ttl": "1h", "policies": []any{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	writes := phys.take()
	if len(writes) != 1 {
		t.Fatalf("token creation made %d writes (%q), want 1", len(writes), writes)
	}
	var sawToken, sawLease bool
	for _, k := range writes[0] {
		// The lease record indexes the token by path and is found
		// through the token: no index entries for either.
		if strings.HasPrefix(k, tokenView+"path/") || strings.HasPrefix(k, leaseView+"token/") {
			t.Errorf("token creation wrote the index entry %q", k)
		}
		sawToken = sawToken || strings.HasPrefix(k, tokenView+"id/")
		sawLease = sawLease || strings.HasPrefix(k, leaseView+"id/auth/token/create/")
	}
	if !sawToken || !sawLease {
		t.Fatalf("the write %q lacks the token or its lease", writes[0])
	}
	if n := len(f.c.leases.IDs()); n != scheduled+1 {
		t.Fatalf("%d leases scheduled, want %d", n, scheduled+1)
	}
	tok := resp.Auth.ClientToken
	l, err := f.c.leases.Lookup(ctx, "auth/token/create/"+hashedID(t, f, tok))
	if err != nil || l.ExpireTime.IsZero() || l.TokenKey == "" {
		t.Fatalf("the token's lease: %+v, %v", l, err)
	}

	// Either half failing fails the creation and leaves nothing.
	for _, failing := range []string{tokenView + "id/", tokenView + "accessor/", leaseView + "id/"} {
		phys.FailWrites(func(k string) bool { return strings.HasPrefix(k, failing) })
		_, err := f.do(t, logical.UpdateOperation, "auth/token/create", map[string]any{"ttl": "1h"})
		phys.FailWrites(nil)
		if !errors.Is(err, storagetest.ErrInjected) {
			t.Fatalf("creation with %s failing: %v", failing, err)
		}
		if got := len(tokens()); got != baseTokens+1 {
			t.Fatalf("with %s failing: %d tokens stored, want %d", failing, got, baseTokens+1)
		}
		if got := len(leases()); got != baseLeases+1 {
			t.Fatalf("with %s failing: %d leases stored, want %d", failing, got, baseLeases+1)
		}
		if n := len(f.c.leases.IDs()); n != scheduled+1 {
			t.Fatalf("with %s failing: %d leases scheduled, want %d", failing, n, scheduled+1)
		}
	}

	// The token still expires with its lease, and takes its records with
	// it.
	clk.Advance(2 * time.Hour)
	waitFor(t, "the expired token and its lease are gone", func() bool { return len(leases()) == baseLeases && len(tokens()) == baseTokens })
}

// hashedID returns the hashed id of a token, through a lookup.
func hashedID(t *testing.T, f *fixture, tok string) string {
	t.Helper()
	e, err := f.c.tokens.Lookup(context.Background(), secret.NewString(tok))
	if err != nil {
		t.Fatal(err)
	}
	return e.HashedID
}

func TestPrefixOps(t *testing.T) {
	a := []logical.StorageOp{{Key: "id/x", Value: []byte("1")}, {Key: "token/t/x", Delete: true}}
	b := []logical.StorageOp{{Key: "id/h", Value: []byte("2")}}
	got := prefixOps(a, "sys/expire/", b, "sys/token/")
	want := []logical.StorageOp{{Key: "sys/expire/id/x", Value: []byte("1")}, {Key: "sys/expire/token/t/x", Delete: true}, {Key: "sys/token/id/h", Value: []byte("2")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("prefixOps = %+v, want %+v", got, want)
	}
	if got := prefixOps(nil, "a/", b, "b/"); len(got) != 1 || got[0].Key != "b/id/h" {
		t.Fatalf("prefixOps without a = %+v", got)
	}
}
