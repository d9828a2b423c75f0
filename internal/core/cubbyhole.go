package core

import (
	"context"
	"errors"
	"strings"

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
	return destroyTree(ctx, c.barrier.View(*prefix+hashedID+"/"), "")
}

// destroyTree deletes every key below dir of s, depth first.
func destroyTree(ctx context.Context, s logical.Storage, dir string) error {
	keys, err := s.List(ctx, dir)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			if err := destroyTree(ctx, s, dir+k); err != nil {
				return err
			}
			continue
		}
		if err := s.Delete(ctx, dir+k); err != nil && !errors.Is(err, logical.ErrNotFound) {
			return err
		}
	}
	return nil
}
