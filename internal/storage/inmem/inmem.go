// Package inmem is an in-memory storage.Backend for tests and for dev-mode
// servers. Nothing it stores survives the process, so it must never be used
// where the storage contract's durability promise matters.
//
// Keys live in a map for lookups and in a B-tree so that a new key costs
// O(log n) and List O(k log n) for k children: it seeks past each child
// directory instead of scanning its descendants. The B-tree holds the
// values too: a snapshot is a copy-on-write clone of it, taken in O(1).
package inmem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/google/btree"

	"github.com/vigil-secrets/vigil/internal/storage"
)

var (
	_ storage.Backend       = (*Backend)(nil)
	_ storage.Transactional = (*Backend)(nil)
	_ storage.Closer        = (*Backend)(nil)
	_ storage.Snapshotter   = (*Backend)(nil)
)

// Backend is an in-memory [storage.Backend]. It is safe for concurrent use.
// Values are copied on the way in and on the way out, so callers can never
// alias stored data.
type Backend struct {
	mu     sync.RWMutex
	data   map[string][]byte
	keys   *btree.BTreeG[item] // exactly the entries of data
	closed bool
	lock   leaderLock // the HA leader lock of the Nodes, guarded by mu
}

// item is one entry of the B-tree. Stored values are never modified (a
// write replaces the slice), so a clone of the tree can share them.
type item struct {
	key   string
	value []byte
}

// New returns an empty backend.
func New() *Backend {
	return &Backend{data: make(map[string][]byte), keys: newKeys()}
}

// btreeDegree suits short string keys; it is not critical.
const btreeDegree = 32

func newKeys() *btree.BTreeG[item] {
	return btree.NewG(btreeDegree, func(a, b item) bool { return a.key < b.key })
}

// Get returns a copy of the value stored at key.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := check(ctx, key); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, storage.ErrClosed
	}
	v, ok := b.data[key]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return clone(v), nil
}

// Put stores a copy of value at key.
func (b *Backend) Put(ctx context.Context, key string, value []byte) error {
	if err := check(ctx, key); err != nil {
		return err
	}
	v := clone(value)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return storage.ErrClosed
	}
	b.put(key, v)
	return nil
}

// Delete removes key. Deleting a missing key is not an error.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := check(ctx, key); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return storage.ErrClosed
	}
	b.delete(key)
	return nil
}

// List returns the immediate children of prefix, sorted, directories once
// with a trailing '/'.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, storage.ErrClosed
	}
	var out []string
	for from := prefix; ; {
		next := ""
		b.keys.AscendGreaterOrEqual(item{key: from}, func(it item) bool {
			k := it.key
			if !strings.HasPrefix(k, prefix) {
				return false
			}
			child, ok := storage.ChildOf(prefix, k)
			if !ok { // the key equals prefix: it is not a child of itself
				return true
			}
			out = append(out, child)
			if strings.HasSuffix(child, "/") {
				// Every key of the subtree starts with prefix+child; '0'
				// is the byte after '/', so the walk goes on from the
				// first key past the subtree.
				next = prefix + child[:len(child)-1] + "0"
				return false
			}
			return true
		})
		if next == "" {
			break
		}
		from = next
	}
	return out, nil
}

// Transaction applies ops in order, atomically: every key is validated
// first, and no reader sees a state in which only some ops are applied.
func (b *Backend) Transaction(ctx context.Context, ops []storage.Op) error {
	return b.apply(ctx, ops, nil)
}

// apply validates ops, copies their values and applies them under the
// write lock, after guard (when set) accepts: the fencing check of a
// [Node].
func (b *Backend) apply(ctx context.Context, ops []storage.Op, guard func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	vals := make([][]byte, len(ops))
	for i, op := range ops {
		if err := storage.ValidateKey(op.Key); err != nil {
			return err
		}
		if !op.Delete {
			vals[i] = clone(op.Value)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return storage.ErrClosed
	}
	if guard != nil {
		if err := guard(); err != nil {
			return err
		}
	}
	for i, op := range ops {
		if op.Delete {
			b.delete(op.Key)
		} else {
			b.put(op.Key, vals[i])
		}
	}
	return nil
}

// Close discards the data. Every later call returns [storage.ErrClosed].
// Closing twice is safe.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.data = nil
	b.keys = nil
	return nil
}

// Snapshot calls fn with every entry, in key order, as they were when it
// was called: it works on a copy-on-write clone of the tree, so writes go
// on meanwhile and fn may call the backend. value is fn's own copy.
func (b *Backend) Snapshot(ctx context.Context, fn func(key string, value []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock() // Clone marks the shared nodes: it writes to the tree
	if b.closed {
		b.mu.Unlock()
		return storage.ErrClosed
	}
	view := b.keys.Clone()
	b.mu.Unlock()
	var err error
	view.Ascend(func(it item) bool {
		if err = ctx.Err(); err != nil {
			return false
		}
		err = fn(it.key, clone(it.value))
		return err == nil
	})
	return err
}

// Restore replaces the whole content with the entries next yields (a key
// given twice keeps its last value). The new content is built aside and
// swapped in at once: readers see the old content or the new one, and an
// error from next, an invalid key or a cancelled ctx leaves the old one.
func (b *Backend) Restore(ctx context.Context, next func() (storage.Entry, error)) error {
	return b.restore(ctx, next, nil)
}

// restore is Restore; guard, when set, is checked under b.mu before the
// swap (a Node's fencing).
func (b *Backend) restore(ctx context.Context, next func() (storage.Entry, error), guard func() error) error {
	data := make(map[string][]byte)
	keys := newKeys()
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("inmem: restore: %w", err)
		}
		if err := storage.ValidateKey(e.Key); err != nil {
			return fmt.Errorf("inmem: restore %q: %w", e.Key, err)
		}
		v := clone(e.Value)
		data[e.Key] = v
		keys.ReplaceOrInsert(item{key: e.Key, value: v})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return storage.ErrClosed
	}
	if guard != nil {
		if err := guard(); err != nil {
			return err
		}
	}
	b.data, b.keys = data, keys
	return nil
}

// put stores v, which the caller has already copied. b.mu must be held.
func (b *Backend) put(key string, v []byte) {
	b.data[key] = v
	b.keys.ReplaceOrInsert(item{key: key, value: v})
}

// delete removes key if present. b.mu must be held.
func (b *Backend) delete(key string) {
	if _, ok := b.data[key]; !ok {
		return
	}
	delete(b.data, key)
	b.keys.Delete(item{key: key})
}

func check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return storage.ValidateKey(key)
}

// clone copies v; a nil or empty v becomes a non-nil empty slice so that an
// empty value reads back as present.
func clone(v []byte) []byte {
	out := make([]byte, len(v))
	copy(out, v)
	return out
}
