// Package cubbyhole is Vault's cubbyhole secrets engine: private storage
// for each token. Every token sees its own cubbyhole at cubbyhole/, and no
// other token, root included, can read it; it is destroyed with the token.
//
// The engine stores JSON objects, like KV v1, in the request's storage.
// The core mounts it at cubbyhole/ (it cannot be disabled or moved),
// hands each request a view of the caller's own cubbyhole (the mount's
// view below the token's hashed id) and deletes that view when the token
// is revoked; the engine itself knows nothing of tokens. It
// keeps nothing in memory and publishes no events: even a path in a
// cubbyhole is the token's own business.
package cubbyhole

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Factory returns the engine; it takes nothing from its configuration.
func Factory(context.Context, *logical.BackendConfig) (logical.Backend, error) {
	b := &backend{}
	fb, err := framework.NewBackend(help, []*framework.Path{{
		Pattern:             `(?P<path>.*)`,
		TakesArbitraryInput: true,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.read, Summary: "Read a secret from the token's cubbyhole."},
			logical.CreateOperation: {Handler: b.write, Summary: "Store a secret in the token's cubbyhole."},
			logical.UpdateOperation: {Handler: b.write, Summary: "Store a secret in the token's cubbyhole."},
			logical.DeleteOperation: {Handler: b.delete, Summary: "Delete a secret from the token's cubbyhole."},
			logical.ListOperation:   {Handler: b.list, Summary: "List the secrets below a path of the token's cubbyhole."},
		},
		ExistenceCheck: b.exists,
		HelpSynopsis:   "Per-token private storage: any JSON object, readable only by the token that wrote it.",
	}})
	if err != nil {
		return nil, fmt.Errorf("cubbyhole: %w", err)
	}
	b.Backend = fb
	return b, nil
}

type backend struct {
	*framework.Backend
}

// PureReads reports that reads and lists change nothing.
func (b *backend) PureReads() bool { return true }

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//") {
		return logical.BadRequest("invalid secret path %q: it must be non-empty and have no empty segments", key)
	}
	return nil
}

func (b *backend) exists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	key := d.String("path")
	if key == "" {
		return false, nil
	}
	_, err := req.Storage.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cubbyhole: existence check: %w", err)
	}
	return true, nil
}

func (b *backend) read(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	if key == "" {
		return nil, logical.ErrNotFound
	}
	raw, err := req.Storage.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, logical.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cubbyhole: read: %w", err)
	}
	defer clear(raw)
	var data map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return nil, fmt.Errorf("cubbyhole: decode %q: %w", key, err)
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) write(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if len(req.Data) == 0 {
		return nil, logical.BadRequest("missing data fields")
	}
	raw, err := json.Marshal(req.Data)
	if err != nil {
		return nil, logical.BadRequest("cannot encode the secret as JSON: %v", err)
	}
	defer clear(raw)
	if err := req.Storage.Put(ctx, key, raw); err != nil {
		return nil, fmt.Errorf("cubbyhole: write: %w", err)
	}
	return nil, nil
}

func (b *backend) delete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	if key == "" {
		return nil, nil
	}
	if err := req.Storage.Delete(ctx, key); err != nil && !errors.Is(err, logical.ErrNotFound) {
		return nil, fmt.Errorf("cubbyhole: delete: %w", err)
	}
	return nil, nil
}

func (b *backend) list(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	dir := d.String("path")
	if dir != "" && !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	keys, err := req.Storage.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("cubbyhole: list: %w", err)
	}
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

const help = `
The cubbyhole secrets engine gives every token private storage at
cubbyhole/: a token reads, lists and deletes only what it wrote there, no
other token (root included) can, and it is all deleted when the token is
revoked or expires. Batch tokens have no cubbyhole.
`
