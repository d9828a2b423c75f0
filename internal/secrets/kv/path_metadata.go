package kv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Limits on custom_metadata (spec §7.3).
const (
	maxCustomMetadataKeys     = 64
	maxCustomMetadataKeyLen   = 128
	maxCustomMetadataValueLen = 512
)

// pathMetadata serves metadata/<path>: list keys, read, write, patch and
// delete a key's metadata.
func (b *versioned) pathMetadata() *framework.Path {
	return &framework.Path{
		Pattern: `metadata/(?P<path>.*)`,
		Fields: map[string]*framework.FieldSchema{
			"path":                 {Type: framework.TypeString, Description: "Location of the secret."},
			"max_versions":         {Type: framework.TypeInt, Description: "The number of versions to keep; 0 uses the mount's setting."},
			"cas_required":         {Type: framework.TypeBool, Description: "Whether every write of the key needs options.cas."},
			"delete_version_after": {Type: framework.TypeDurationSecond, Description: "How long after its creation each new version is soft-deleted; 0 uses the mount's setting, which also caps it."},
			"custom_metadata":      {Type: framework.TypeKVPairs, Description: "User-provided string pairs describing the secret."},
			"after":                {Type: framework.TypeString, Description: "LIST only: return the keys after this one."},
			"limit":                {Type: framework.TypeInt, Description: "LIST only: return at most this many keys."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation:   {Handler: b.handleMetadataList, Summary: "List the keys below a path."},
			logical.ReadOperation:   {Handler: b.handleMetadataRead, Summary: "Read a key's metadata and version history."},
			logical.CreateOperation: {Handler: b.handleMetadataWrite, Summary: "Set a key's settings, creating its metadata if needed."},
			logical.UpdateOperation: {Handler: b.handleMetadataWrite, Summary: "Set a key's settings, creating its metadata if needed."},
			logical.PatchOperation:  {Handler: b.handleMetadataPatch, Summary: "Merge changes into an existing key's settings."},
			logical.DeleteOperation: {Handler: b.handleMetadataDelete, Summary: "Delete a key and all its versions permanently."},
		},
		ExistenceCheck:  b.keyExists,
		HelpSynopsis:    "Read, write and delete a key's metadata and settings; list keys.",
		HelpDescription: metadataHelp,
	}
}

func (b *versioned) handleMetadataList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	dir := d.String("path")
	after := d.String("after")
	limit := d.Int("limit")

	if dir != "" && !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	keys, err := req.Storage.List(ctx, metadataPrefix+dir)
	if err != nil {
		return nil, fmt.Errorf("kv: list %q: %w", dir, err)
	}
	if after != "" {
		i, _ := slices.BinarySearch(keys, after)
		for i < len(keys) && keys[i] <= after {
			i++
		}
		keys = keys[i:]
	}
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *versioned) handleMetadataRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	if key == "" {
		return rootResponse(), nil
	}
	meta, err := b.readMetadata(ctx, req.Storage, key)
	if err != nil {
		return nil, err
	}
	versions := make(map[string]any, len(meta.Versions))
	for _, v := range meta.Versions {
		versions[strconv.FormatInt(v.Version, 10)] = map[string]any{
			"created_time":  formatTime(v.CreatedTime),
			"deletion_time": formatTime(v.DeletionTime),
			"destroyed":     v.Destroyed,
		}
	}
	return &logical.Response{Data: map[string]any{
		"cas_required":         meta.CASRequired,
		"created_time":         formatTime(meta.CreatedTime),
		"current_version":      meta.CurrentVersion,
		"custom_metadata":      customMetadataData(meta.CustomMetadata),
		"delete_version_after": meta.DeleteVersionAfter.String(),
		"max_versions":         meta.MaxVersions,
		"oldest_version":       meta.OldestVersion,
		"updated_time":         formatTime(meta.UpdatedTime),
		"versions":             versions,
	}}, nil
}

// metadataUpdate is a decoded write or patch of metadata/<path>. A nil
// field was not supplied.
type metadataUpdate struct {
	key                string
	maxVersions        *int
	casRequired        *bool
	deleteVersionAfter *time.Duration
	// hasCustom reports whether custom_metadata was supplied. For a write,
	// custom is the new value. For a patch, custom holds the members to
	// set, remove the members to delete (JSON null), and clear is set when
	// custom_metadata itself was null.
	hasCustom bool
	custom    map[string]string
	remove    []string
	clear     bool
}

func (u *metadataUpdate) empty() bool {
	return u.maxVersions == nil && u.casRequired == nil && u.deleteVersionAfter == nil && !u.hasCustom
}

func decodeMetadataUpdate(d *framework.FieldData, patch bool) (metadataUpdate, error) {
	u := metadataUpdate{key: d.String("path")}
	if err := checkKey(u.key); err != nil {
		return u, err
	}
	if d.Has("max_versions") {
		v := d.Int("max_versions")
		if v < 0 {
			return u, logical.BadRequest("max_versions must not be negative")
		}
		u.maxVersions = &v
	}
	if d.Has("cas_required") {
		v := d.Bool("cas_required")
		u.casRequired = &v
	}
	if d.Has("delete_version_after") {
		v := d.Duration("delete_version_after")
		u.deleteVersionAfter = &v
	}
	if d.Has("custom_metadata") {
		u.hasCustom = true
		u.custom = d.StringMap("custom_metadata")
		if patch {
			// A merge patch removes the members given as null, and null
			// for the whole object clears it.
			switch raw := d.Raw("custom_metadata").(type) {
			case nil:
				u.clear = true
			case map[string]any:
				for k, v := range raw {
					if v == nil {
						u.remove = append(u.remove, k)
						delete(u.custom, k)
					}
				}
			}
		}
	}
	return u, nil
}

// validateCustomMetadata checks the limits on custom_metadata.
func validateCustomMetadata(cm map[string]string) error {
	const prefix = "custom_metadata validation failed: "
	if len(cm) > maxCustomMetadataKeys {
		return logical.BadRequest(prefix+"payload must contain at most %d keys, provided %d", maxCustomMetadataKeys, len(cm))
	}
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(cm)) {
		v := cm[k]
		if n := len(k); n == 0 || n > maxCustomMetadataKeyLen {
			problems = append(problems, fmt.Sprintf("length of key %q is %d but must be 0 < len(key) <= %d", k, n, maxCustomMetadataKeyLen))
		}
		if n := len(v); n == 0 || n > maxCustomMetadataValueLen {
			problems = append(problems, fmt.Sprintf("length of value for key %q is %d but must be 0 < len(value) <= %d", k, n, maxCustomMetadataValueLen))
		}
		if !printable(k) {
			problems = append(problems, fmt.Sprintf("key %q contains unprintable characters", k))
		}
		if !printable(v) {
			problems = append(problems, fmt.Sprintf("value for key %q contains unprintable characters", k))
		}
	}
	if len(problems) > 0 {
		return logical.BadRequest("%s", prefix+strings.Join(problems, "; "))
	}
	return nil
}

func printable(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// casWarning is added when a key sets cas_required false on a mount that
// requires it.
const casWarning = `"cas_required" set to false, but is mandated by backend config. This value will be ignored.`

// settingsResponse returns the response of a metadata write or patch: empty,
// or with the cas_required warning.
func (b *versioned) settingsResponse(ctx context.Context, s logical.Storage, u *metadataUpdate) (*logical.Response, error) {
	resp := &logical.Response{}
	if u.casRequired != nil && !*u.casRequired {
		cfg, err := loadConfig(ctx, s)
		if err != nil {
			return nil, err
		}
		if cfg.CASRequired {
			resp.AddWarning(casWarning)
		}
	}
	return resp, nil
}

// apply sets the supplied settings on meta.
func (u *metadataUpdate) apply(meta *keyMetadata) {
	if u.maxVersions != nil {
		meta.MaxVersions = *u.maxVersions
	}
	if u.casRequired != nil {
		meta.CASRequired = *u.casRequired
	}
	if u.deleteVersionAfter != nil {
		meta.DeleteVersionAfter = *u.deleteVersionAfter
	}
}

func (b *versioned) handleMetadataWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if d.String("path") == "" {
		return rootResponse(), nil
	}
	u, err := decodeMetadataUpdate(d, false)
	if err != nil {
		return nil, err
	}
	if u.empty() {
		return nil, nil
	}
	if u.hasCustom {
		if err := validateCustomMetadata(u.custom); err != nil {
			return nil, err
		}
	}
	resp, err := b.settingsResponse(ctx, req.Storage, &u)
	if err != nil {
		return nil, err
	}

	l := b.lockFor(u.key)
	l.Lock()
	defer l.Unlock()
	meta, err := loadMetadata(ctx, req.Storage, u.key)
	switch {
	case errors.Is(err, logical.ErrNotFound):
		now := b.now().UnixNano()
		meta = &keyMetadata{Key: u.key, CreatedTime: now, UpdatedTime: now, Versions: []versionMetadata{}}
	case err != nil:
		return nil, err
	}
	u.apply(meta)
	if u.hasCustom {
		meta.CustomMetadata = u.custom
	}
	var ops writeOps
	if err := ops.put(metadataKey(u.key), meta); err != nil {
		return nil, err
	}
	if err := ops.apply(ctx, req.Storage); err != nil {
		return nil, err
	}
	return withEvent(resp, v2MetadataEvent("metadata-write", u.key, "metadata/"+u.key)), nil
}

func (b *versioned) handleMetadataPatch(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if d.String("path") == "" {
		return rootResponse(), nil
	}
	u, err := decodeMetadataUpdate(d, true)
	if err != nil {
		return nil, err
	}
	resp, err := b.settingsResponse(ctx, req.Storage, &u)
	if err != nil {
		return nil, err
	}

	l := b.lockFor(u.key)
	l.Lock()
	defer l.Unlock()
	meta, err := loadMetadata(ctx, req.Storage, u.key)
	if err != nil {
		return nil, err
	}
	u.apply(meta)
	if u.hasCustom {
		merged := map[string]string{}
		if !u.clear {
			for k, v := range meta.CustomMetadata {
				merged[k] = v
			}
		}
		for _, k := range u.remove {
			delete(merged, k)
		}
		for k, v := range u.custom {
			merged[k] = v
		}
		if err := validateCustomMetadata(merged); err != nil {
			return nil, err
		}
		meta.CustomMetadata = merged
	}
	var ops writeOps
	if err := ops.put(metadataKey(u.key), meta); err != nil {
		return nil, err
	}
	if err := ops.apply(ctx, req.Storage); err != nil {
		return nil, err
	}
	return withEvent(resp, v2MetadataEvent("metadata-patch", u.key, "metadata/"+u.key)), nil
}

// handleMetadataDelete removes the key's metadata (the commit point) and
// then every version record of the key. It removes the records even when the
// metadata is already gone, so a retry after a failure finishes the job.
func (b *versioned) handleMetadataDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	if key == "" {
		return rootResponse(), nil
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}

	l := b.lockFor(key)
	l.Lock()
	defer l.Unlock()
	var versions []int64
	meta, err := loadMetadata(ctx, req.Storage, key)
	switch {
	case err == nil:
		for _, v := range meta.Versions {
			versions = append(versions, v.Version)
		}
	case !errors.Is(err, logical.ErrNotFound):
		return nil, err
	}
	// Records the metadata no longer refers to (pruned versions whose
	// removal failed) are found by listing.
	names, err := req.Storage.List(ctx, versionsDir(key))
	if err != nil {
		return nil, fmt.Errorf("kv: list versions of %q: %w", key, err)
	}
	for _, name := range names {
		if n, err := strconv.ParseInt(name, 10, 64); err == nil && n > 0 && !slices.Contains(versions, n) {
			versions = append(versions, n)
		}
	}
	var ops writeOps
	if meta != nil {
		ops.delete(metadataKey(key))
	}
	for _, n := range versions {
		ops.delete(versionKey(key, n))
	}
	if err := ops.apply(ctx, req.Storage); err != nil {
		return nil, err
	}
	if meta == nil {
		return nil, nil
	}
	return withEvent(nil, v2MetadataEvent("metadata-delete", key, "data/"+key)), nil
}

const metadataHelp = `
A read returns the key's settings and the state of every retained version.
A write sets max_versions, cas_required, delete_version_after and
custom_metadata (only those supplied), creating the key's metadata if the
key has none; a patch merges changes into an existing key's settings. A
delete removes the key and all its versions permanently. LIST on
metadata/<dir>/ returns the keys and sub-directories below <dir>.
`
