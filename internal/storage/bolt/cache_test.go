package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
)

func TestReadCacheMisses(t *testing.T) {
	c := newReadCache(1 << 20)
	if _, _, ok, _ := c.get("k"); ok {
		t.Fatal("empty cache knows k")
	}
	_, _, _, epoch := c.get("k")
	c.fillMissing("k", epoch)
	if _, found, ok, _ := c.get("k"); !ok || found {
		t.Fatalf("after fillMissing: found %v, ok %v; want a known miss", found, ok)
	}
	// A commit that writes k replaces the miss.
	c.committed([]*writeReq{{ops: []storage.Op{{Key: "k", Value: []byte("v")}}}})
	if v, found, ok, _ := c.get("k"); !ok || !found || string(v) != "v" {
		t.Fatalf("after a put: %q, found %v, ok %v", v, found, ok)
	}
	// A delete is remembered as a miss.
	c.committed([]*writeReq{{ops: []storage.Op{{Key: "k", Delete: true}}}})
	if _, found, ok, _ := c.get("k"); !ok || found {
		t.Fatalf("after a delete: found %v, ok %v; want a known miss", found, ok)
	}
}

// A miss read from bbolt before a commit is not cached after it: the
// commit may have created the key.
func TestReadCacheStaleMissDropped(t *testing.T) {
	c := newReadCache(1 << 20)
	_, _, _, epoch := c.get("k")
	c.committed([]*writeReq{{ops: []storage.Op{{Key: "other", Value: []byte("x")}}}})
	c.fillMissing("k", epoch)
	if _, _, ok, _ := c.get("k"); ok {
		t.Fatal("a miss read before a commit was cached")
	}
	c.fill("k", []byte("old"), epoch)
	if _, _, ok, _ := c.get("k"); ok {
		t.Fatal("a value read before a commit was cached")
	}
}

func TestReadCacheBounded(t *testing.T) {
	c := newReadCache(64 * 100)
	for i := range 1000 {
		_, _, _, epoch := c.get("x")
		c.fill(string(rune('a'+i%26))+string(rune(i)), make([]byte, 90), epoch)
		if c.size > c.maxBytes {
			t.Fatalf("cache holds %d bytes, bound %d", c.size, c.maxBytes)
		}
	}
	disabled := newReadCache(0)
	_, _, _, epoch := disabled.get("k")
	disabled.fillMissing("k", epoch)
	disabled.fill("j", []byte("v"), epoch)
	if len(disabled.entries) != 0 {
		t.Fatal("a disabled cache holds entries")
	}
}

// A reader that looks a key up while its first write commits must not
// leave a stale answer in the read cache: once the write is checkpointed
// out of the pending set, the cache is all that stands before bbolt. The
// values are too large for the cache, so only a miss could be cached.
func TestReadDuringCommitLeavesNoStaleMiss(t *testing.T) {
	b := mustOpen(t, filepath.Join(t.TempDir(), "v.db"), Options{CacheBytes: 64 * 64, CheckpointBytes: 1, NoSync: true})
	defer b.Close()
	ctx := context.Background()
	value := []byte(strings.Repeat("v", 100))
	for i := range 1000 {
		key := fmt.Sprintf("k/%d", i)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := b.Get(ctx, key); err == nil {
						return
					}
				}
			})
		}
		if err := b.Put(ctx, key, value); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		b.checkpointNow(t)
		if _, err := b.Get(ctx, key); errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s: acknowledged and checkpointed, but read as missing", key)
		}
	}
}
