package logical

import (
	"context"
	"fmt"
)

// Storage is a mount's view of the encrypted store: keys are relative to
// the mount, and a mount can see nothing outside its view.
type Storage interface {
	// Get returns the value at key or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value at key.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the immediate children of prefix: leaf names, and
	// directory names with a trailing '/', sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// StorageOp is one write of a [TransactionalStorage] transaction: a Put
// unless Delete is set.
type StorageOp struct {
	Key    string
	Value  []byte
	Delete bool
}

// TransactionalStorage is implemented by storage views that can apply
// several writes atomically.
type TransactionalStorage interface {
	Storage
	Transaction(ctx context.Context, ops []StorageOp) error
}

// ApplyOps writes ops to s: in one transaction when s is a
// [TransactionalStorage], otherwise one by one in order, stopping at the
// first failure. Callers order their ops so that every prefix of them
// leaves a consistent state (data before the record that refers to it,
// removals after the record that drops them).
func ApplyOps(ctx context.Context, s Storage, ops []StorageOp) error {
	if len(ops) == 0 {
		return nil
	}
	if ts, ok := s.(TransactionalStorage); ok {
		return ts.Transaction(ctx, ops)
	}
	for i, op := range ops {
		var err error
		if op.Delete {
			err = s.Delete(ctx, op.Key)
		} else {
			err = s.Put(ctx, op.Key, op.Value)
		}
		if err != nil {
			return fmt.Errorf("write %d of %d: %w", i+1, len(ops), err)
		}
	}
	return nil
}
