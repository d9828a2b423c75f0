package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// upgradeRecord is the marker stored at .kv2/upgraded when every v1 key of
// the mount has been moved into the v2 layout.
type upgradeRecord struct {
	// Time is when the upgrade finished, in Unix nanoseconds.
	Time int64 `json:"time"`
	// Keys is the number of v1 keys moved.
	Keys int `json:"keys"`
}

// Initialize implements [logical.Initializer]. It upgrades the mount's
// version 1 data, if any, to version 2 before the first request: each v1
// secret becomes version 1 of the same key. It runs synchronously and is
// idempotent.
//
// The order makes it safe to rerun after a crash at any point. For each v1
// key it writes the version record, then the metadata (the commit point),
// then deletes the v1 record; a key whose metadata already exists was
// committed by an interrupted run and only its v1 record is deleted. With
// transactional storage the three writes of a key are one transaction. The
// marker is written last, after every key; its presence makes later calls
// cost a single Get.
func (b *versioned) Initialize(ctx context.Context, s logical.Storage) error {
	_, err := s.Get(ctx, upgradedKey)
	if err == nil {
		return nil
	}
	if !errors.Is(err, logical.ErrNotFound) {
		return fmt.Errorf("kv: read upgrade marker: %w", err)
	}
	n, err := b.upgradeDir(ctx, s, "")
	if err != nil {
		return fmt.Errorf("kv: upgrade to version 2 (%d keys moved): %w", n, err)
	}
	var ops writeOps
	if err := ops.put(upgradedKey, upgradeRecord{Time: b.now().UnixNano(), Keys: n}); err != nil {
		return err
	}
	if err := ops.apply(ctx, s); err != nil {
		return fmt.Errorf("kv: write upgrade marker: %w", err)
	}
	if n > 0 {
		b.logger.Info("kv data upgraded to version 2", "keys", n)
	}
	return nil
}

// upgradeDir moves every v1 key below dir and returns how many it moved.
func (b *versioned) upgradeDir(ctx context.Context, s logical.Storage, dir string) (int, error) {
	names, err := s.List(ctx, dir)
	if err != nil {
		return 0, fmt.Errorf("list %q: %w", dir, err)
	}
	moved := 0
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return moved, err
		}
		full := dir + name
		if strings.HasSuffix(name, "/") {
			if full == v2Prefix {
				continue
			}
			n, err := b.upgradeDir(ctx, s, full)
			moved += n
			if err != nil {
				return moved, err
			}
			continue
		}
		ok, err := b.upgradeKey(ctx, s, full)
		if err != nil {
			return moved, err
		}
		if ok {
			moved++
		}
	}
	return moved, nil
}

// upgradeKey moves the v1 secret at key to version 1 of key. It reports
// false when the record vanished before it could be read.
func (b *versioned) upgradeKey(ctx context.Context, s logical.Storage, key string) (bool, error) {
	raw, err := s.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %q: %w", key, err)
	}
	var ops writeOps
	_, err = s.Get(ctx, metadataKey(key))
	switch {
	case err == nil:
		// Committed by an interrupted run: only the v1 record is left.
	case errors.Is(err, logical.ErrNotFound):
		var data map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil || data == nil {
			return false, fmt.Errorf("%q does not hold a JSON object", key)
		}
		meta := &keyMetadata{Key: key}
		meta.addVersion(b.now().UnixNano(), 0, mountConfig{})
		if err := ops.put(versionKey(key, 1), versionRecord{Data: data}); err != nil {
			return false, err
		}
		if err := ops.put(metadataKey(key), meta); err != nil {
			return false, err
		}
	default:
		return false, fmt.Errorf("read metadata of %q: %w", key, err)
	}
	ops.delete(key)
	if err := ops.apply(ctx, s); err != nil {
		return false, err
	}
	return true, nil
}
