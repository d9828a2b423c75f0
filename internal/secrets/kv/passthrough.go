package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// passthrough is the KV v1 backend: each secret is a JSON object stored
// under its own path, replaced whole on every write.
type passthrough struct {
	*framework.Backend
	system logical.SystemView
}

var (
	_ logical.Backend    = (*passthrough)(nil)
	_ logical.PureReader = (*passthrough)(nil)
)

// PureReads reports that reading or listing secrets changes nothing: a
// secret's ttl is reported, never leased.
func (b *passthrough) PureReads() bool { return true }

func newPassthrough(conf *logical.BackendConfig) (*passthrough, error) {
	b := &passthrough{system: conf.System}
	fb, err := framework.NewBackend(passthroughHelp, []*framework.Path{{
		Pattern:             `(?P<path>.*)`,
		TakesArbitraryInput: true,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleRead, Summary: "Read a secret."},
			logical.CreateOperation: {Handler: b.handleWrite, Summary: "Store a secret, replacing any previous value."},
			logical.UpdateOperation: {Handler: b.handleWrite, Summary: "Store a secret, replacing any previous value."},
			logical.DeleteOperation: {Handler: b.handleDelete, Summary: "Delete a secret."},
			logical.ListOperation:   {Handler: b.handleList, Summary: "List the secrets below a path."},
		},
		ExistenceCheck:  b.exists,
		HelpSynopsis:    "Pass-through secret storage: any JSON object, stored as given.",
		HelpDescription: passthroughHelp,
	}})
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	b.Backend = fb
	return b, nil
}

// reserved reports whether key lies below the prefix kept for v2 data.
func reserved(key string) bool { return strings.HasPrefix(key, v2Prefix) }

func (b *passthrough) exists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	key := d.String("path")
	if key == "" || reserved(key) {
		return false, nil
	}
	_, err := req.Storage.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kv: existence check of %q: %w", key, err)
	}
	return true, nil
}

func (b *passthrough) handleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	if key == "" || reserved(key) {
		return nil, logical.ErrNotFound
	}
	raw, err := req.Storage.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, logical.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("kv: read %q: %w", key, err)
	}
	var data map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return nil, fmt.Errorf("kv: decode %q: %w", key, err)
	}
	return &logical.Response{
		Data:   data,
		Secret: &logical.Secret{TTL: b.ttl(data), NoLease: true},
	}, nil
}

// ttl is the lease duration a v1 read reports: the secret's "ttl" (or
// "lease") value when it is a positive duration, else the mount's default.
func (b *passthrough) ttl(data map[string]any) time.Duration {
	raw, ok := data["ttl"]
	if !ok {
		raw, ok = data["lease"]
	}
	if ok {
		if d, err := framework.ParseDurationSecond(raw); err == nil && d > 0 {
			return d
		}
	}
	if b.system == nil {
		return 0
	}
	return b.system.DefaultLeaseTTL()
}

func (b *passthrough) handleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if reserved(key) {
		return nil, logical.BadRequest("cannot write %q: the prefix %q is reserved for versioned data", key, v2Prefix)
	}
	// The secret is the request body itself.
	if len(req.Data) == 0 {
		return nil, logical.BadRequest("missing data fields")
	}
	raw, err := json.Marshal(req.Data)
	if err != nil {
		return nil, logical.BadRequest("cannot encode the secret as JSON: %v", err)
	}
	if err := req.Storage.Put(ctx, key, raw); err != nil {
		return nil, fmt.Errorf("kv: write %q: %w", key, err)
	}
	return withEvent(nil, v1Event("write", key)), nil
}

func (b *passthrough) handleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	if key == "" || reserved(key) {
		return nil, nil
	}
	if err := req.Storage.Delete(ctx, key); err != nil {
		return nil, fmt.Errorf("kv: delete %q: %w", key, err)
	}
	return withEvent(nil, v1Event("delete", key)), nil
}

func (b *passthrough) handleList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	dir := d.String("path")
	if dir != "" && !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	if reserved(dir) {
		return nil, logical.ErrNotFound
	}
	keys, err := req.Storage.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("kv: list %q: %w", dir, err)
	}
	if dir == "" {
		keys = removeString(keys, v2Prefix)
	}
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

func removeString(list []string, s string) []string {
	out := list[:0:0]
	for _, e := range list {
		if e != s {
			out = append(out, e)
		}
	}
	return out
}

const passthroughHelp = `
The K/V secrets engine, version 1, stores arbitrary JSON objects. A write
replaces the object stored at its path; a read returns it as written, with
its "ttl" key (if any) as the refresh interval reported to clients. The
prefix ".kv2/" is reserved.
`
