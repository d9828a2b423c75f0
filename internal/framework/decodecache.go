package framework

import (
	"bytes"
	"encoding/json"
	"sync"
	"sync/atomic"
)

// MaxDecoded bounds a DecodeCache: entries are a stored record's bytes
// and its decoded form, a few hundred bytes each.
const MaxDecoded = 4096

// DecodeCache keeps JSON records an engine reads on its hot paths decoded,
// keyed by storage key, so that the same bytes are not decoded again.
// Every use passes the bytes just read from storage, and an entry serves
// only the bytes it was decoded from: storage stays the only source of
// truth, an entry is never stale (a record rewritten or deleted, a seal, a
// restore, another server writing the same storage: the bytes differ or
// are gone), and writes need no invalidation. What it returns is shared:
// callers must not modify it. The zero value is ready to use.
type DecodeCache struct {
	entries sync.Map // storage key -> *decodedRecord
	size    atomic.Int64
}

type decodedRecord struct {
	raw []byte
	v   any
}

// Decode returns raw, the record stored at key, decoded into a *T: the
// cached one if it was decoded from the same bytes, otherwise a new one,
// which it caches. Errors are json.Unmarshal's.
func Decode[T any](c *DecodeCache, key string, raw []byte) (*T, error) {
	if e, ok := c.entries.Load(key); ok {
		d := e.(*decodedRecord)
		if v, ok := d.v.(*T); ok && bytes.Equal(d.raw, raw) {
			return v, nil
		}
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, err
	}
	// Keep a copy: the storage's slice is not ours to hold.
	if _, loaded := c.entries.Swap(key, &decodedRecord{raw: bytes.Clone(raw), v: v}); !loaded && c.size.Add(1) > MaxDecoded {
		c.evict(key)
	}
	return v, nil
}

// Len is the number of entries held.
func (c *DecodeCache) Len() int { return int(c.size.Load()) }

// evict drops about a quarter of the entries but keep; which ones does not
// matter.
func (c *DecodeCache) evict(keep string) {
	n := 0
	c.entries.Range(func(k, _ any) bool {
		if k == keep {
			return true
		}
		if _, loaded := c.entries.LoadAndDelete(k); loaded {
			c.size.Add(-1)
		}
		n++
		return n < MaxDecoded/4
	})
}
