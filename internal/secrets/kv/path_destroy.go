package kv

import (
	"context"
	"errors"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// pathDestroy serves destroy/<path>: remove the data of the listed versions
// permanently.
func (b *versioned) pathDestroy() *framework.Path {
	return &framework.Path{
		Pattern: `destroy/(?P<path>.*[^/])`,
		Fields: map[string]*framework.FieldSchema{
			"path":     {Type: framework.TypeString, Description: "Location of the secret."},
			"versions": versionsField(),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleDestroy, Summary: "Destroy versions of the secret."},
		},
		HelpSynopsis:    "Permanently remove versions of a secret.",
		HelpDescription: "Marks the listed versions destroyed and removes their data; the metadata keeps a record of them.",
	}
}

// handleDestroy marks the versions destroyed (the commit point) and then
// removes their data. It removes the data of every listed version that is
// destroyed, not only of those it marks, so that a retry after a failed
// removal finishes the job.
func (b *versioned) handleDestroy(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key, versions, err := decodeVersions(d)
	if err != nil {
		return nil, err
	}

	l := b.lockFor(key)
	l.Lock()
	defer l.Unlock()
	meta, err := loadMetadata(ctx, req.Storage, key)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ops, removals writeOps
	changed := false
	for _, n := range versions {
		vm := meta.version(int64(n))
		if vm == nil {
			continue
		}
		if !vm.Destroyed {
			vm.Destroyed = true
			changed = true
		}
		removals.delete(versionKey(key, vm.Version))
	}
	if changed {
		if err := ops.put(metadataKey(key), meta); err != nil {
			return nil, err
		}
	}
	if err := append(ops, removals...).apply(ctx, req.Storage); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	return withEvent(nil, v2Event("destroy", "destroy/"+key, "data/"+key, meta, "destroyed_versions", versionList(versions))), nil
}
