package core

import (
	"context"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/token"
)

// errBatchCubbyhole refuses a batch token at cubbyhole/: it has no
// storage of its own to hold one.
var errBatchCubbyhole = logical.BadRequest("cubbyhole operations are only supported by service tokens")

// cubbyholeView returns the storage of te's own cubbyhole: the cubbyhole
// mount's view below the token's hashed id. No other token's requests
// ever see it.
func (c *Core) cubbyholeView(te *token.Entry) (logical.Storage, error) {
	prefix := c.cubbyholePrefix.Load()
	if prefix == nil {
		return nil, ErrSealed
	}
	if te.IsBatch() || te.HashedID == "" {
		return nil, errBatchCubbyhole
	}
	return c.barrier.View(*prefix + te.HashedID + "/"), nil
}

// destroyCubbyhole deletes everything in the cubbyhole of the token
// hashedID, once the token is revoked.
func (c *Core) destroyCubbyhole(ctx context.Context, hashedID string) error {
	prefix := c.cubbyholePrefix.Load()
	if prefix == nil || hashedID == "" {
		return nil
	}
	return clearView(ctx, c.barrier.View(*prefix+hashedID+"/"), "")
}
