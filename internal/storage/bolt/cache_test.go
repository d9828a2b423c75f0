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

// A miss read from bbolt before a commit that wrote the key is not cached
// after it: the commit may have created the key. A commit of other keys
// does not stop it.
func TestReadCacheStaleMissDropped(t *testing.T) {
	c := newReadCache(1 << 20)
	_, _, _, epoch := c.get("k")
	c.committed([]*writeReq{{ops: []storage.Op{{Key: "k", Value: []byte("new")}}}})
	c.fillMissing("k", epoch)
	c.fill("k", []byte("old"), epoch)
	if v, found, ok, _ := c.get("k"); !ok || !found || string(v) != "new" {
		t.Fatalf("after stale fills: %q, found %v, ok %v; want the committed value", v, found, ok)
	}

	_, _, _, epoch = c.get("j")
	c.committed([]*writeReq{{ops: []storage.Op{{Key: "other", Value: []byte("x")}}}})
	c.fillMissing("j", epoch)
	if _, found, ok, _ := c.get("j"); !ok || found {
		t.Fatalf("a miss read before a commit of another key: found %v, ok %v; want a known miss", found, ok)
	}
}

// A fill is refused when the commit that wrote its key left no entry to
// tell: its value was too large to cache, or its entry was evicted since.
// A reset refuses every fill read before it.
func TestReadCacheStaleFillWithoutEntry(t *testing.T) {
	c := newReadCache(64 * 100) // entries up to 100 bytes
	_, _, _, epoch := c.get("k")
	c.committed([]*writeReq{{ops: []storage.Op{{Key: "k", Value: make([]byte, 200)}}}})
	c.fillMissing("k", epoch)
	if _, _, ok, _ := c.get("k"); ok {
		t.Fatal("a miss read before an uncached write of the key was cached")
	}

	_, _, _, epoch = c.get("j")
	c.committed([]*writeReq{{ops: []storage.Op{{Key: "j", Value: []byte("v")}}}})
	// Fill the cache with other keys until j's entry is evicted.
	for i := 0; ; i++ {
		if _, _, ok, _ := c.get("j"); !ok {
			break
		}
		_, _, _, now := c.get("x")
		c.fill(fmt.Sprintf("x%d", i), make([]byte, 90), now)
	}
	c.fillMissing("j", epoch)
	if _, _, ok, _ := c.get("j"); ok {
		t.Fatal("a miss read before a write whose entry was evicted was cached")
	}

	_, _, _, epoch = c.get("r")
	c.reset()
	c.fill("r", []byte("old"), epoch)
	if _, _, ok, _ := c.get("r"); ok {
		t.Fatal("a value read before a reset was cached")
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
// out of the pending set, the cache is all that stands before bbolt. With
// the small cache the values are too large for it, so only a miss could be
// cached; with the large one, they are cached. Another writer commits
// other keys all along, so that fills are checked per key, not refused
// because some commit happened.
func TestReadDuringCommitLeavesNoStaleMiss(t *testing.T) {
	for _, cacheBytes := range []int{64 * 64, 1 << 20} {
		t.Run(fmt.Sprint(cacheBytes), func(t *testing.T) {
			b := mustOpen(t, filepath.Join(t.TempDir(), "v.db"), Options{CacheBytes: cacheBytes, CheckpointBytes: 1, NoSync: true})
			defer b.Close()
			ctx := context.Background()
			value := []byte(strings.Repeat("v", 100))
			others := make(chan struct{})
			var owg sync.WaitGroup
			owg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-others:
						return
					default:
					}
					if err := b.Put(ctx, fmt.Sprintf("other/%d", i%100), value); err != nil {
						t.Error(err)
						return
					}
				}
			})
			defer func() { close(others); owg.Wait() }()
			for i := range 500 {
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
		})
	}
}
