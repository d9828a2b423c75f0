package approle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// maxCachedRecords bounds a backend's record cache (a few hundred bytes
// each, stored bytes and decoded record).
const maxCachedRecords = 4096

// recordCache keeps the records logins read (roles, role_id index
// entries, secret IDs) decoded, keyed by storage key, so that a login does
// not decode the same JSON again. Every use reads the record from storage
// and checks the entry against the bytes just read, as kv's metadata cache
// does: storage stays the only source of truth, an entry is never stale
// (a role rewritten or deleted, a secret ID used, destroyed or expired, a
// seal, a restore, an HA step-down: the bytes differ or are gone) and
// writes need no invalidation. Entries are shared: callers must not modify
// what it returns.
type recordCache struct {
	entries sync.Map // storage key -> *cachedRecord
	size    atomic.Int64
}

type cachedRecord struct {
	raw []byte
	v   any
}

// readCached returns the record at key decoded into a *T, from c when it
// was decoded from the same bytes, or nil when there is none. The result
// is shared and read-only.
func readCached[T any](ctx context.Context, c *recordCache, s logical.Storage, key string) (*T, error) {
	raw, err := s.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("approle: read %s: %w", describeKey(key), err)
	}
	if e, ok := c.entries.Load(key); ok {
		ce := e.(*cachedRecord)
		if v, ok := ce.v.(*T); ok && bytes.Equal(ce.raw, raw) {
			return v, nil
		}
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("approle: decode %s: %w", describeKey(key), err)
	}
	// Keep a copy: the storage's slice is not ours to hold.
	ce := &cachedRecord{raw: bytes.Clone(raw), v: v}
	if _, loaded := c.entries.Swap(key, ce); !loaded && c.size.Add(1) > maxCachedRecords {
		c.evict(key)
	}
	return v, nil
}

// evict drops about a quarter of the entries but keep; which ones does not
// matter.
func (c *recordCache) evict(keep string) {
	n := 0
	c.entries.Range(func(k, _ any) bool {
		if k == keep {
			return true
		}
		if _, loaded := c.entries.LoadAndDelete(k); loaded {
			c.size.Add(-1)
		}
		n++
		return n < maxCachedRecords/4
	})
}
