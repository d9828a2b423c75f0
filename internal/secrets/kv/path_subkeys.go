package kv

import (
	"context"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// pathSubkeys serves subkeys/<path>: the structure of a version with its
// values removed.
func (b *versioned) pathSubkeys() *framework.Path {
	return &framework.Path{
		Pattern: `subkeys/(?P<path>.*[^/])`,
		Fields: map[string]*framework.FieldSchema{
			"path":    {Type: framework.TypeString, Description: "Location of the secret."},
			"version": {Type: framework.TypeInt, Description: "The version to read; 0 or absent reads the current version."},
			"depth":   {Type: framework.TypeInt, Description: "The deepest nesting level to show; 0 shows every level."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: {Handler: b.handleSubkeysRead, Summary: "Read the keys of a version without its values."},
		},
		HelpSynopsis:    "Read the structure of a secret with its values replaced by null.",
		HelpDescription: "Every value that is not a non-empty object is replaced by null; objects below the given depth are replaced by null too.",
	}
}

func (b *versioned) handleSubkeysRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	version := d.Int64("version")
	depth := d.Int("depth")
	if depth < 0 {
		return nil, logical.BadRequest("depth must be a non-negative integer")
	}

	r, err := b.readVersion(ctx, req.Storage, key, version)
	if err != nil {
		return nil, err
	}
	md := versionJSON(r.meta, r.vm)
	if r.data == nil {
		return &logical.Response{StatusCode: 404, Data: map[string]any{"subkeys": nil, "metadata": md}}, nil
	}
	data, err := decodeVersion(append([]byte(`{"data":`), append(r.data, '}')...))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"subkeys": subkeys(data, depth, 1), "metadata": md}}, nil
}

// subkeys returns the structure of m at nesting level level: non-empty
// objects are kept (down to depth, 0 meaning no limit), every other value
// becomes nil.
func subkeys(m map[string]any, depth, level int) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if nested, ok := v.(map[string]any); ok && len(nested) > 0 && (depth == 0 || level < depth) {
			out[k] = subkeys(nested, depth, level+1)
			continue
		}
		out[k] = nil
	}
	return out
}
