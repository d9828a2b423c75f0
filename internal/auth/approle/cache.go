package approle

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// readCached returns the record at key decoded into a *T, or nil when
// there is none. Logins read the same roles, role_id index entries and
// secret IDs again and again: c (the backend's records, a
// framework.DecodeCache) keeps them decoded while their stored bytes are
// unchanged, so a role rewritten or deleted, or a secret ID used,
// destroyed or expired, is read afresh, and writes need no invalidation.
// The result is shared and read-only.
func readCached[T any](ctx context.Context, c *framework.DecodeCache, s logical.Storage, key string) (*T, error) {
	raw, err := s.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("approle: read %s: %w", describeKey(key), err)
	}
	v, err := framework.Decode[T](c, key, raw)
	if err != nil {
		return nil, fmt.Errorf("approle: decode %s: %w", describeKey(key), err)
	}
	return v, nil
}
