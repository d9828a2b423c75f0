package inmem

import (
	"context"

	"github.com/vigil-secrets/vigil/internal/storage"
)

var _ storage.Snapshotter = (*Node)(nil)

// Snapshot calls fn with every entry of the shared backend, as
// [Backend.Snapshot] does.
func (n *Node) Snapshot(ctx context.Context, fn func(key string, value []byte) error) error {
	return n.b.Snapshot(ctx, fn)
}

// Restore replaces the shared backend's content, as [Backend.Restore]
// does, fenced like every write of the node: a node that lost the lock
// restores nothing.
func (n *Node) Restore(ctx context.Context, next func() (storage.Entry, error)) error {
	return n.b.restore(ctx, next, n.guard)
}
