package bolt

import (
	"sync"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// readCache keeps recently read or written values (barrier ciphertext: the
// backend never sees anything else) so that hot reads skip a bbolt read
// transaction and its global locks.
//
// It is never stale: the writer updates it after each commit and before it
// acknowledges the writes, and advances epoch. A reader notes the epoch
// before it reads bbolt and caches what it read only if no commit happened
// in between, so a value read before a commit is never cached after it.
type readCache struct {
	mu       sync.RWMutex
	epoch    uint64
	entries  map[string][]byte
	size     int // bytes of keys and values held
	maxBytes int
}

func newReadCache(maxBytes int) *readCache {
	return &readCache{entries: make(map[string][]byte), maxBytes: maxBytes}
}

// get returns a copy of the cached value and the current epoch.
func (c *readCache) get(key string) (value []byte, ok bool, epoch uint64) {
	c.mu.RLock()
	v, ok := c.entries[key]
	if ok {
		value = append(make([]byte, 0, len(v)), v...)
	}
	epoch = c.epoch
	c.mu.RUnlock()
	return value, ok, epoch
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
	c.putLocked(key, append(make([]byte, 0, len(value)), value...))
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

// invalidate advances the epoch without changing entries (a failed commit
// changed nothing, but readers in flight must not cache across it).
func (c *readCache) invalidate() {
	c.mu.Lock()
	c.epoch++
	c.mu.Unlock()
}

func (c *readCache) apply(op storage.Op) {
	c.removeLocked(op.Key)
	if !op.Delete && len(op.Key)+len(op.Value) <= c.maxBytes/64 {
		c.putLocked(op.Key, op.Value)
	}
}

func (c *readCache) putLocked(key string, value []byte) {
	c.removeLocked(key)
	for c.size+len(key)+len(value) > c.maxBytes && len(c.entries) > 0 {
		// Evict an arbitrary entry: map iteration order is random.
		for k := range c.entries {
			c.removeLocked(k)
			break
		}
	}
	c.entries[key] = value
	c.size += len(key) + len(value)
}

func (c *readCache) removeLocked(key string) {
	if v, ok := c.entries[key]; ok {
		c.size -= len(key) + len(v)
		delete(c.entries, key)
	}
}
