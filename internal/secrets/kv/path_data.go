package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// pathData serves data/<path>: read a version, write a new one, patch the
// current one, soft-delete the current one.
func (b *versioned) pathData() *framework.Path {
	return &framework.Path{
		Pattern: `data/(?P<path>.*[^/])`,
		Fields: map[string]*framework.FieldSchema{
			"path":    {Type: framework.TypeString, Description: "Location of the secret."},
			"version": {Type: framework.TypeInt, Description: "The version to read; 0 or absent reads the current version."},
			"options": {Type: framework.TypeMap, Description: `Write options: "cas" is the version the write expects to be current (0: the key must not exist).`},
			"data":    {Type: framework.TypeMap, Description: "The secret: a JSON object stored and returned on read."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleDataRead, Summary: "Read a version of the secret."},
			logical.CreateOperation: {Handler: b.handleDataWrite, Summary: "Write a new version of the secret."},
			logical.UpdateOperation: {Handler: b.handleDataWrite, Summary: "Write a new version of the secret."},
			logical.PatchOperation:  {Handler: b.handleDataPatch, Summary: "Merge-patch the current version into a new version."},
			logical.DeleteOperation: {Handler: b.handleDataDelete, Summary: "Soft-delete the current version."},
		},
		ExistenceCheck:  b.keyExists,
		HelpSynopsis:    "Write, patch, read and delete versioned secrets.",
		HelpDescription: dataHelp,
	}
}

// keyExists is the existence check of data/ and metadata/: does the key
// have metadata.
func (b *versioned) keyExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	key := d.String("path")
	if key == "" {
		return false, nil
	}
	_, err := req.Storage.Get(ctx, metadataKey(key))
	if errors.Is(err, logical.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kv: existence check of %q: %w", key, err)
	}
	return true, nil
}

// versionRead is the outcome of reading one version of a key. meta and vm
// are shared with the metadata cache: read-only.
type versionRead struct {
	meta *keyMetadata
	vm   *versionMetadata
	// data is the stored JSON object, nil when the version is deleted or
	// destroyed.
	data json.RawMessage
}

// readVersion reads version n of key (the current version when n <= 0). A
// key or version that does not exist is an error wrapping
// logical.ErrNotFound; a deleted or destroyed version has nil data.
//
// It takes no lock: if a writer removes the version's data between the two
// Gets, the read is retried once under the key's lock.
func (b *versioned) readVersion(ctx context.Context, s logical.Storage, key string, n int64) (versionRead, error) {
	r, err := readVersionOnce(ctx, s, key, n, b)
	if !errors.Is(err, errNoVersionData) {
		return r, err
	}
	l := b.lockFor(key)
	l.RLock()
	defer l.RUnlock()
	r, err = readVersionOnce(ctx, s, key, n, b)
	if errors.Is(err, errNoVersionData) {
		return r, fmt.Errorf("kv: version %d of %q: %w", n, key, err)
	}
	return r, err
}

func readVersionOnce(ctx context.Context, s logical.Storage, key string, n int64, b *versioned) (versionRead, error) {
	meta, err := b.readMetadata(ctx, s, key)
	if err != nil {
		return versionRead{}, err
	}
	if n <= 0 {
		n = meta.CurrentVersion
	}
	vm := meta.version(n)
	if vm == nil {
		return versionRead{}, logical.ErrNotFound
	}
	r := versionRead{meta: meta, vm: vm}
	// Only a version with a deletion time needs the clock, and most have
	// none: without one, live ignores the time.
	var now time.Time
	if vm.DeletionTime != 0 {
		now = b.now()
	}
	if !vm.live(now) {
		return r, nil
	}
	r.data, err = loadVersionRaw(ctx, s, key, n)
	return r, err
}

func (b *versioned) handleDataRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")
	version := d.Int64("version")

	r, err := b.readVersion(ctx, req.Storage, key, version)
	if err != nil {
		return nil, err
	}
	md := versionJSON(r.meta, r.vm)
	if r.data == nil {
		// Clients rely on this shape: data null, the version's metadata,
		// status 404.
		return &logical.Response{StatusCode: 404, Data: map[string]any{"data": nil, "metadata": md}}, nil
	}
	return &logical.Response{Data: map[string]any{"data": r.data, "metadata": md}}, nil
}

// dataWrite is a decoded write or patch of data/<path>.
type dataWrite struct {
	key  string
	data map[string]any
	// hasCAS reports whether options.cas was given; cas is its value.
	hasCAS bool
	cas    int64
}

func decodeDataWrite(d *framework.FieldData) (dataWrite, error) {
	w := dataWrite{key: d.String("path"), data: d.Map("data")}
	if err := checkKey(w.key); err != nil {
		return w, err
	}
	if w.data == nil {
		return w, logical.BadRequest("no data provided")
	}
	if raw, ok := d.Map("options")["cas"]; ok && raw != nil {
		cas, err := framework.ParseInt(raw)
		if err != nil || cas < 0 {
			return w, logical.BadRequest("error parsing check-and-set parameter")
		}
		w.hasCAS, w.cas = true, int64(cas)
	}
	return w, nil
}

// checkCAS applies the check-and-set rules of a write to meta.
func (w dataWrite) checkCAS(cfg mountConfig, meta *keyMetadata) error {
	if w.hasCAS {
		if w.cas != meta.CurrentVersion {
			return logical.BadRequest("check-and-set parameter did not match the current version")
		}
		return nil
	}
	if cfg.CASRequired || meta.CASRequired {
		return logical.BadRequest("check-and-set parameter required for this call")
	}
	return nil
}

func (b *versioned) handleDataWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	w, err := decodeDataWrite(d)
	if err != nil {
		return nil, err
	}

	l := b.lockFor(w.key)
	l.Lock()
	defer l.Unlock()
	cfg, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	meta, err := loadMetadata(ctx, req.Storage, w.key)
	switch {
	case errors.Is(err, logical.ErrNotFound):
		meta = &keyMetadata{Key: w.key}
	case err != nil:
		return nil, err
	}
	if err := w.checkCAS(cfg, meta); err != nil {
		return nil, err
	}
	return b.commitVersion(ctx, req.Storage, meta, cfg, w.data, "data-write")
}

// commitVersion stores data as the next version of meta's key, drops the
// versions beyond the maximum, and returns the write response, with the
// event op (data-write or data-patch). The caller holds the key's lock.
func (b *versioned) commitVersion(ctx context.Context, s logical.Storage, meta *keyMetadata, cfg mountConfig, data map[string]any, op string) (*logical.Response, error) {
	now := b.now().UnixNano()
	var ops, cleanup writeOps
	if err := ops.put(versionKey(meta.Key, meta.CurrentVersion+1), versionRecord{Data: data}); err != nil {
		return nil, err
	}
	vm, dropped := meta.addVersion(now, deletionTime(now, cfg, meta), cfg)
	if err := ops.put(metadataKey(meta.Key), meta); err != nil {
		return nil, err
	}
	for _, n := range dropped {
		cleanup.delete(versionKey(meta.Key, n))
	}
	resp := &logical.Response{Data: versionData(meta, &vm)}
	if err := b.commit(ctx, s, ops, cleanup, resp); err != nil {
		return nil, err
	}
	return withEvent(resp, v2Event(op, "data/"+meta.Key, "data/"+meta.Key, meta)), nil
}

func (b *versioned) handleDataPatch(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	w, err := decodeDataWrite(d)
	if err != nil {
		return nil, err
	}

	l := b.lockFor(w.key)
	l.Lock()
	defer l.Unlock()
	meta, err := loadMetadata(ctx, req.Storage, w.key)
	if err != nil {
		return nil, err
	}
	cfg, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if err := w.checkCAS(cfg, meta); err != nil {
		return nil, err
	}
	vm := meta.version(meta.CurrentVersion)
	if vm == nil {
		return nil, logical.ErrNotFound
	}
	if !vm.live(b.now()) {
		return &logical.Response{StatusCode: 404, Data: versionData(meta, vm)}, nil
	}
	current, err := loadVersion(ctx, req.Storage, w.key, vm.Version)
	if err != nil {
		return nil, fmt.Errorf("kv: patch %q: %w", w.key, err)
	}
	return b.commitVersion(ctx, req.Storage, meta, cfg, mergePatch(current, w.data), "data-patch")
}

// mergePatch applies the RFC 7386 merge patch to target, which it modifies
// and returns: null removes a member, objects merge recursively, anything
// else (arrays included) replaces.
func mergePatch(target, patch map[string]any) map[string]any {
	if target == nil {
		target = make(map[string]any, len(patch))
	}
	for k, pv := range patch {
		switch pv := pv.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			tm, _ := target[k].(map[string]any)
			target[k] = mergePatch(tm, pv)
		default:
			target[k] = pv
		}
	}
	return target
}

func (b *versioned) handleDataDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := d.String("path")

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
	now := b.now()
	vm := meta.version(meta.CurrentVersion)
	if vm == nil || !vm.live(now) {
		return nil, nil
	}
	vm.DeletionTime = now.UnixNano()
	var ops writeOps
	if err := ops.put(metadataKey(key), meta); err != nil {
		return nil, err
	}
	if err := ops.apply(ctx, req.Storage); err != nil {
		return nil, err
	}
	return withEvent(nil, v2Event("data-delete", "data/"+key, "data/"+key, meta)), nil
}

const dataHelp = `
A write stores the object under "data" as a new version of the secret and
returns the version's metadata; "options.cas" makes it conditional on the
current version. A patch merges an RFC 7386 merge patch into the current
version and stores the result as a new version. A read returns the current
version, or the one named by "version"; a deleted or destroyed version reads
as 404 with its metadata. A delete soft-deletes the current version: it can
be undeleted.
`
