package bolt

import (
	"sync"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// readCache keeps recently read or written values (barrier ciphertext: the
// backend never sees anything else), and recently missed keys, so that hot
// reads skip a bbolt read transaction and its global locks. Most misses
// never get here: the key filter answers for keys never written, and the
// cache for the rest (deleted keys, and the filter's false positives).
//
// It is never stale: the writer updates it after each commit and before it
// acknowledges the writes, and advances epoch. A reader notes the epoch
// before it looks at the pending writes (bbolt lags them) and caches what
// it then read from bbolt (or found missing) only if no commit since wrote
// that key, so an answer read before a write is never cached after it.
// Commits come thousands of times a second under load, so the check is per
// key: every key a commit writes gets an entry that carries the commit's
// epoch, and an entry that goes (evicted, or not kept because it is too
// large) raises lost to its epoch; a fill from epoch e is refused if the
// key's entry is newer than e or lost is, or if the cache was reset since.
type readCache struct {
	mu      sync.RWMutex
	epoch   uint64
	entries map[string]cacheEntry
	// lost is the newest epoch of an entry that left the cache, or of a
	// write that was not cached; resetAt the epoch of the last reset.
	lost     uint64
	resetAt  uint64
	size     int // bytes of keys and values held
	maxBytes int
}

// cacheEntry is a value, or the knowledge that the key is absent, and the
// epoch at which it was known: that of the commit that wrote it, or that
// of the read that filled it.
type cacheEntry struct {
	value   []byte
	missing bool
	epoch   uint64
}

func newReadCache(maxBytes int) *readCache {
	return &readCache{entries: make(map[string]cacheEntry), maxBytes: maxBytes}
}

// get looks key up. ok reports that the cache knows the answer: then
// either found is false (the key is absent) or value is the stored value,
// shared with the cache and the writer: the caller copies it and never
// writes to it (cached values are never modified, only replaced). epoch is
// the current epoch, for fill.
func (c *readCache) get(key string) (value []byte, found, ok bool, epoch uint64) {
	c.mu.RLock()
	e, ok := c.entries[key]
	epoch = c.epoch
	c.mu.RUnlock()
	return e.value, ok && !e.missing, ok, epoch
}

// fill caches a value read from bbolt at epoch, unless a commit wrote key
// since. value is copied.
func (c *readCache) fill(key string, value []byte, epoch uint64) {
	if len(key)+len(value) > c.maxBytes/64 {
		return // large values would churn the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.currentLocked(key, epoch) {
		return
	}
	c.putLocked(key, cacheEntry{value: append(make([]byte, 0, len(value)), value...), epoch: c.epoch})
}

// fillMissing records that bbolt had no key at epoch, unless a commit
// wrote key since.
func (c *readCache) fillMissing(key string, epoch uint64) {
	if len(key) > c.maxBytes/64 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.currentLocked(key, epoch) {
		return
	}
	c.putLocked(key, cacheEntry{missing: true, epoch: c.epoch})
}

// currentLocked reports whether what was read of key at epoch is still
// its state: no commit since wrote key. A commit that wrote key left an
// entry newer than epoch, or, if that entry is gone, made lost newer.
// A fill stamps its entry with the epoch of the fill, not of the read: a
// later fill from an older read is then refused, which is safe.
func (c *readCache) currentLocked(key string, epoch uint64) bool {
	if epoch == c.epoch {
		return true
	}
	if epoch < c.resetAt || c.lost > epoch {
		return false
	}
	e, ok := c.entries[key]
	return !ok || e.epoch <= epoch
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
	c.resetAt = c.epoch
	clear(c.entries)
	c.size = 0
}

// apply records op, written by the commit of the current epoch.
func (c *readCache) apply(op storage.Op) {
	switch {
	case op.Delete && len(op.Key) <= c.maxBytes/64:
		c.putLocked(op.Key, cacheEntry{missing: true, epoch: c.epoch})
	case !op.Delete && len(op.Key)+len(op.Value) <= c.maxBytes/64:
		c.putLocked(op.Key, cacheEntry{value: op.Value, epoch: c.epoch})
	default:
		c.removeLocked(op.Key)
		c.lost = c.epoch // the write leaves no entry to check fills by
	}
}

// putLocked stores e at key, replacing what key had, and evicts entries
// while the cache is over its bound.
func (c *readCache) putLocked(key string, e cacheEntry) {
	c.removeLocked(key)
	for c.size+len(key)+len(e.value) > c.maxBytes && len(c.entries) > 0 {
		// Evict an arbitrary entry: map iteration order is random.
		for k, old := range c.entries {
			c.removeLocked(k)
			c.lost = max(c.lost, old.epoch)
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
