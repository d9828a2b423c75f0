package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// GetJSON decodes the JSON entry at key into v. found is false, with no
// error, when there is no entry. Errors name the key, never the value.
func GetJSON(ctx context.Context, s logical.Storage, key string, v any) (found bool, err error) {
	raw, err := s.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %q: %w", key, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

// PutJSON stores v as JSON at key.
func PutJSON(ctx context.Context, s logical.Storage, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return s.Put(ctx, key, raw)
}
