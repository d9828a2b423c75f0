package kv

import (
	"context"
	"errors"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// versionsField is the "versions" parameter of delete/, undelete/ and
// destroy/. The CLI sends it as strings (["1","3"]).
func versionsField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeCommaIntSlice, Description: "The versions to act on."}
}

// pathDelete serves delete/<path>: soft-delete the listed versions.
func (b *versioned) pathDelete() *framework.Path {
	return &framework.Path{
		Pattern: `delete/(?P<path>.*[^/])`,
		Fields: map[string]*framework.FieldSchema{
			"path":     {Type: framework.TypeString, Description: "Location of the secret."},
			"versions": versionsField(),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleDelete, Summary: "Soft-delete versions of the secret."},
		},
		HelpSynopsis:    "Soft-delete versions of a secret.",
		HelpDescription: "Marks the listed versions deleted: reads of them answer 404 until they are undeleted.",
	}
}

// pathUndelete serves undelete/<path>: restore soft-deleted versions.
func (b *versioned) pathUndelete() *framework.Path {
	return &framework.Path{
		Pattern: `undelete/(?P<path>.*[^/])`,
		Fields: map[string]*framework.FieldSchema{
			"path":     {Type: framework.TypeString, Description: "Location of the secret."},
			"versions": versionsField(),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleUndelete, Summary: "Undelete versions of the secret."},
		},
		HelpSynopsis:    "Undelete versions of a secret.",
		HelpDescription: "Clears the deletion time of the listed versions; destroyed versions stay destroyed.",
	}
}

// decodeVersions returns the key and the "versions" list, which must not be
// empty.
func decodeVersions(d *framework.FieldData) (string, []int, error) {
	key := d.String("path")
	versions := d.IntSlice("versions")
	if len(versions) == 0 {
		return key, nil, logical.BadRequest("No version number provided")
	}
	return key, versions, nil
}

// updateVersions applies change to the listed versions of key under its
// lock and stores the metadata if change reports a modification. A missing
// key or version is skipped. It returns the response: the event op
// (delete or undelete) when something changed, with the listed versions
// in field.
func (b *versioned) updateVersions(ctx context.Context, s logical.Storage, key string, versions []int, op, field string, change func(*versionMetadata) bool) (*logical.Response, error) {
	l := b.lockFor(key)
	l.Lock()
	defer l.Unlock()
	meta, err := loadMetadata(ctx, s, key)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	changed := false
	for _, n := range versions {
		if vm := meta.version(int64(n)); vm != nil && change(vm) {
			changed = true
		}
	}
	if !changed {
		return nil, nil
	}
	var ops writeOps
	if err := ops.put(metadataKey(key), meta); err != nil {
		return nil, err
	}
	if err := ops.apply(ctx, s); err != nil {
		return nil, err
	}
	return withEvent(nil, v2Event(op, op+"/"+key, "data/"+key, meta, field, versionList(versions))), nil
}

func (b *versioned) handleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key, versions, err := decodeVersions(d)
	if err != nil {
		return nil, err
	}
	now := b.now()
	return b.updateVersions(ctx, req.Storage, key, versions, "delete", "deleted_versions", func(vm *versionMetadata) bool {
		if !vm.live(now) {
			return false
		}
		vm.DeletionTime = now.UnixNano()
		return true
	})
}

func (b *versioned) handleUndelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key, versions, err := decodeVersions(d)
	if err != nil {
		return nil, err
	}
	return b.updateVersions(ctx, req.Storage, key, versions, "undelete", "undeleted_versions", func(vm *versionMetadata) bool {
		if vm.Destroyed || vm.DeletionTime == 0 {
			return false
		}
		vm.DeletionTime = 0
		return true
	})
}
