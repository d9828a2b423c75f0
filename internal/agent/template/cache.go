package template

import (
	"context"
	"errors"
	"sync"
)

// Cache is a Source that keeps each answer of the Source it wraps until
// told to forget it, so that all the templates rendered against it see
// one answer per request: two templates that write the same
// database/creds path, or a username and a password rendered into two
// environment variables, get the same credentials from one lease.
// Concurrent identical requests are made once. Failed requests are not
// kept. A Cache is safe for concurrent use.
type Cache struct {
	src Source

	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	done   chan struct{}
	secret *Secret
	keys   []string
	err    error
}

// NewCache returns a Cache over src.
func NewCache(src Source) *Cache {
	return &Cache{src: src, entries: map[string]*cacheEntry{}}
}

// Read reads path from the cache, or from the Source the first time.
func (c *Cache) Read(ctx context.Context, path string) (*Secret, error) {
	e, err := c.get(ctx, depKey(KindRead, path, nil), func(e *cacheEntry) {
		e.secret, e.err = c.src.Read(ctx, path)
		if e.err == nil && e.secret == nil {
			e.err = ErrNotFound
		}
	})
	if err != nil {
		return nil, err
	}
	return e.secret, nil
}

// Write returns the answer of the first identical write (same path and
// data) still cached, or writes.
func (c *Cache) Write(ctx context.Context, path string, data map[string]string) (*Secret, error) {
	e, err := c.get(ctx, depKey(KindWrite, path, data), func(e *cacheEntry) {
		e.secret, e.err = c.src.Write(ctx, path, data)
		if e.err == nil && e.secret == nil {
			e.err = ErrNotFound
		}
	})
	if err != nil {
		return nil, err
	}
	return e.secret, nil
}

// List lists path from the cache, or from the Source the first time.
func (c *Cache) List(ctx context.Context, path string) ([]string, error) {
	e, err := c.get(ctx, depKey(KindList, path, nil), func(e *cacheEntry) {
		e.keys, e.err = c.src.List(ctx, path)
		if e.err == nil && e.keys == nil {
			e.keys = []string{}
		}
	})
	if err != nil {
		return nil, err
	}
	return e.keys, nil
}

// Forget drops the answer for the dependency's request (its Key), so
// that the next render asks the Source again.
func (c *Cache) Forget(d Dependency) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, d.key)
}

// ForgetAll drops every answer, for instance after a new login.
func (c *Cache) ForgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]*cacheEntry{}
}

// get returns the entry for key, fetching it with fetch when there is
// none; callers that find a fetch in flight wait for it (or for ctx).
func (c *Cache) get(ctx context.Context, key string, fetch func(*cacheEntry)) (*cacheEntry, error) {
	for {
		c.mu.Lock()
		e, ok := c.entries[key]
		if !ok {
			e = &cacheEntry{done: make(chan struct{})}
			c.entries[key] = e
		}
		c.mu.Unlock()
		if !ok {
			return c.fetch(key, e, fetch)
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil {
			return e, nil
		}
		// The fetch we waited for ended with its caller's context: ask
		// again with ours.
		if ctx.Err() == nil && (errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded)) {
			continue
		}
		return nil, e.err
	}
}

func (c *Cache) fetch(key string, e *cacheEntry, fetch func(*cacheEntry)) (*cacheEntry, error) {
	fetch(e)
	close(e.done)
	if e.err != nil {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		return nil, e.err
	}
	return e, nil
}

var _ Source = (*Cache)(nil)
