package logical

import "context"

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
