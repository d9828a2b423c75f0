package bolt

import (
	"sync"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// readCache keeps recently read or written values (barrier ciphertext: the
// backend never sees anything else), and recently missed keys, so that hot
// reads skip a bbolt read transaction and its global locks. Misses matter
// as much as hits: every write of a new secret first looks for the key.
//
// It is never stale: the writer updates it after each commit and before it
// acknowledges the writes, and advances epoch. A reader notes the epoch
// before it looks at the pending writes (bbolt lags them) and caches what
// it then read from bbolt (or found missing) only if no commit happened in
// between, so an answer read before a commit is never cached after it.
type readCache struct {
	mu       sync.RWMutex
	epoch    uint64
	entries  map[string]cacheEntry
	size     int // bytes of keys and values held
	maxBytes int
}

// cacheEntry is a value, or the knowledge that the key is absent.
type cacheEntry struct {
	value   []byte
	missing bool
}

func newReadCache(maxBytes int) *readCache {
	return &readCache{entries: make(map[string]cacheEntry), maxBytes: maxBytes}
}

// get looks key up. ok reports that the cache knows the answer: then
// either found is false (the key is absent) or value is a copy of the
// stored value. epoch is the current epoch, for fill.
func (c *readCache) get(key string) (value []byte, found, ok bool, epoch uint64) {
	c.mu.RLock()
	e, ok := c.entries[key]
	if ok && !e.missing {
		value = append(make([]byte, 0, len(e.value)), e.value...)
	}
	epoch = c.epoch
	c.mu.RUnlock()
	return value, ok && !e.missing, ok, epoch
}

// fill caches a value read from bbolt at epoch, unless a commit happened
// since. value is copied.
func (c *readCache) fill(key string, value []byte, epoch uint64) {
	if len(key)+len(value) > c.maxBytes/64 {
		return // large values would churn the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	c.putLocked(key, cacheEntry{value: append(make([]byte, 0, len(value)), value...)})
}

// fillMissing records that bbolt had no key at epoch, unless a commit
// happened since.
func (c *readCache) fillMissing(key string, epoch uint64) {
	if len(key) > c.maxBytes/64 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	c.putLocked(key, cacheEntry{missing: true})
}

// committed applies the writes of a commit. The values are the writer's
// own copies and are not modified afterwards.
func (c *readCache) committed(batch []*writeReq) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, r := range batch {
		for _, op := range r.ops {
			c.apply(op)
		}
	}
}

// reset forgets everything and advances the epoch: a restore replaced
// the whole content.
func (c *readCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.entries)
	c.size = 0
}

func (c *readCache) apply(op storage.Op) {
	c.removeLocked(op.Key)
	switch {
	case op.Delete:
		if len(op.Key) <= c.maxBytes/64 {
			c.putLocked(op.Key, cacheEntry{missing: true})
		}
	case len(op.Key)+len(op.Value) <= c.maxBytes/64:
		c.putLocked(op.Key, cacheEntry{value: op.Value})
	}
}

func (c *readCache) putLocked(key string, e cacheEntry) {
	c.removeLocked(key)
	for c.size+len(key)+len(e.value) > c.maxBytes && len(c.entries) > 0 {
		// Evict an arbitrary entry: map iteration order is random.
		for k := range c.entries {
			c.removeLocked(k)
			break
		}
	}
	c.entries[key] = e
	c.size += len(key) + len(e.value)
}

func (c *readCache) removeLocked(key string) {
	if e, ok := c.entries[key]; ok {
		c.size -= len(key) + len(e.value)
		delete(c.entries, key)
	}
}
