package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// ErrInjected is the failure a [Faulty] backend injects.
var ErrInjected = errors.New("storagetest: injected write failure")

// Faulty is a backend that passes everything to a transactional backend
// (inmem and bolt are) and fails the writes (puts and deletes, alone or in
// a transaction) of the keys a test chooses: a store that fails at one
// moment, for one kind of record (the leases, say), while the rest of the
// server works. A transaction with a chosen key fails as a whole and
// writes nothing.
type Faulty struct {
	storage.Transactional
	mu   sync.Mutex
	fail func(key string) bool
}

var _ storage.Transactional = (*Faulty)(nil)

// NewFaulty wraps b, failing nothing yet.
func NewFaulty(b storage.Transactional) *Faulty { return &Faulty{Transactional: b} }

// FailWrites makes the writes of the keys match reports fail with
// [ErrInjected], from now on; nil makes every write pass again.
func (f *Faulty) FailWrites(match func(key string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = match
}

func (f *Faulty) check(keys ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		if f.fail != nil && f.fail(k) {
			return fmt.Errorf("write %q: %w", k, ErrInjected)
		}
	}
	return nil
}

// Put implements [storage.Backend].
func (f *Faulty) Put(ctx context.Context, key string, value []byte) error {
	if err := f.check(key); err != nil {
		return err
	}
	return f.Transactional.Put(ctx, key, value)
}

// Delete implements [storage.Backend].
func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err := f.check(key); err != nil {
		return err
	}
	return f.Transactional.Delete(ctx, key)
}

// Transaction implements [storage.Transactional].
func (f *Faulty) Transaction(ctx context.Context, ops []storage.Op) error {
	keys := make([]string, len(ops))
	for i, op := range ops {
		keys[i] = op.Key
	}
	if err := f.check(keys...); err != nil {
		return err
	}
	return f.Transactional.Transaction(ctx, ops)
}
