// Package kv is the KV secrets engine, in both of Vault's flavours: version
// 1, a plain passthrough store of JSON objects, and version 2, a versioned
// store with metadata, soft deletion, check-and-set and pruning (spec §7).
// [Factory] chooses between them from the mount's "version" option; a v2
// backend upgrades a mount's v1 data in place when it is initialized.
//
// The package owns the KV storage layout within its mount's view and the
// exact wire shape of every KV response. It must not import storage, the
// barrier or core: it sees storage only as the [logical.Storage] on each
// request, and it never asks for a lease (v1 reads only report a TTL).
//
// # Storage layout
//
// Version 1 stores each secret as its JSON object under the user's own path:
// the secret "app/db" is the storage key "app/db", so LIST is a storage
// List. The prefix ".kv2/" is reserved: v1 refuses writes below it.
//
// Version 2 keeps everything below ".kv2/", so that a v1 mount's data and
// the v2 data it is upgraded into never collide:
//
//	.kv2/config                 mount settings (mountConfig)
//	.kv2/metadata/<key>         one key's metadata (keyMetadata), including
//	                            the state of every retained version
//	.kv2/versions/<key>/<n>     the data of version n of key (versionRecord)
//	.kv2/upgraded               marker: the v1→v2 upgrade is complete
//
// Every record is a JSON-encoded struct. Keys contain '/', so metadata keyed
// by the user path makes LIST on metadata/<dir>/ a storage List of
// ".kv2/metadata/<dir>/". A version number is the last segment of its record
// key and contains no '/', so every (key, version) pair has its own record,
// and the records of one key are exactly the numeric leaves directly under
// ".kv2/versions/<key>/" (the records of "<key>/x" sit one level deeper).
//
// The metadata record is the commit point of every change. A write stores
// the new version's data first and then the metadata that refers to it; data
// no metadata refers to is invisible and is removed when the key's metadata
// is deleted. When the request's storage implements
// [logical.TransactionalStorage], the writes of one request are applied in a
// single transaction instead.
//
// A read costs one metadata Get and one version Get, without locks. Decoded
// metadata (never secret data) is cached in memory and checked against the
// stored bytes on every read, so the cache cannot serve stale metadata.
// Changes to one key are serialized by a striped lock inside the backend,
// since storage has no compare-and-swap; with several servers on one storage,
// only the active one may write.
package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/jsonenc"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Storage keys of the v2 layout (see the package doc).
const (
	v2Prefix       = ".kv2/"
	configKey      = v2Prefix + "config"
	metadataPrefix = v2Prefix + "metadata/"
	versionsPrefix = v2Prefix + "versions/"
	upgradedKey    = v2Prefix + "upgraded"
)

// defaultMaxVersions is the number of versions kept when neither the key
// nor the mount sets max_versions.
const defaultMaxVersions = 10

// lockStripes is the number of per-key locks; keys share a lock when their
// hashes collide, which only costs concurrency.
const lockStripes = 256

// Factory builds a KV backend: version 1 when the mount's "version" option is
// "" or "1", version 2 when it is "2".
func Factory(_ context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	if conf == nil {
		return nil, errors.New("kv: nil backend config")
	}
	switch v := conf.Options["version"]; v {
	case "", "1":
		return newPassthrough(conf)
	case "2":
		return newVersioned(conf)
	default:
		return nil, fmt.Errorf("kv: invalid version %q: must be \"1\" or \"2\"", v)
	}
}

// versioned is the KV v2 backend.
type versioned struct {
	*framework.Backend
	now    func() time.Time
	logger *slog.Logger
	// locks serialize the changes to one key (striped by key hash).
	locks [lockStripes]sync.RWMutex
	// configMu serializes config read-modify-write.
	configMu sync.Mutex
	// metaCache saves readers from decoding unchanged metadata.
	metaCache framework.DecodeCache
}

var (
	_ logical.Backend     = (*versioned)(nil)
	_ logical.Initializer = (*versioned)(nil)
	_ logical.PureReader  = (*versioned)(nil)
)

// PureReads reports that reading a secret, its metadata, subkeys or the
// mount's config changes nothing.
func (b *versioned) PureReads() bool { return true }

func newVersioned(conf *logical.BackendConfig) (*versioned, error) {
	b := &versioned{now: conf.Now, logger: conf.Logger}
	if b.now == nil {
		b.now = time.Now
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	paths := []*framework.Path{
		b.pathData(),
		b.pathMetadata(),
		b.pathConfig(),
		b.pathDelete(),
		b.pathUndelete(),
		b.pathDestroy(),
		b.pathSubkeys(),
		pathRoot(),
		pathInvalid(),
	}
	fb, err := framework.NewBackend(versionedHelp, paths)
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	b.Backend = fb
	return b, nil
}

// lockFor returns the lock guarding key.
func (b *versioned) lockFor(key string) *sync.RWMutex {
	// FNV-1a, inline so that it does not allocate.
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return &b.locks[h%lockStripes]
}

// mountConfig is the stored mount configuration (.kv2/config).
type mountConfig struct {
	// MaxVersions is the mount's max_versions; 0 means the default (10).
	MaxVersions int `json:"max_versions"`
	// CASRequired makes every data write need options.cas.
	CASRequired bool `json:"cas_required"`
	// DeleteVersionAfter soft-deletes each version this long after its
	// creation; 0 means never, and a negative value disables the setting
	// for every key.
	DeleteVersionAfter time.Duration `json:"delete_version_after"`
}

// keyMetadata is the stored metadata of one key (.kv2/metadata/<key>).
// Times are Unix nanoseconds, 0 meaning unset.
type keyMetadata struct {
	Key                string            `json:"key"`
	CurrentVersion     int64             `json:"current_version"`
	OldestVersion      int64             `json:"oldest_version"`
	MaxVersions        int               `json:"max_versions,omitempty"`
	CASRequired        bool              `json:"cas_required,omitempty"`
	DeleteVersionAfter time.Duration     `json:"delete_version_after,omitempty"`
	CustomMetadata     map[string]string `json:"custom_metadata,omitempty"`
	CreatedTime        int64             `json:"created_time"`
	UpdatedTime        int64             `json:"updated_time"`
	// Versions are the retained versions, in ascending order.
	Versions []versionMetadata `json:"versions"`
}

// versionMetadata is the state of one version, kept in its key's metadata.
type versionMetadata struct {
	Version      int64 `json:"version"`
	CreatedTime  int64 `json:"created_time"`
	DeletionTime int64 `json:"deletion_time,omitempty"`
	Destroyed    bool  `json:"destroyed,omitempty"`
}

// versionRecord is the stored data of one version
// (.kv2/versions/<key>/<n>).
type versionRecord struct {
	// Data is the secret, a JSON object; numbers decode as json.Number so
	// that they round-trip exactly.
	Data map[string]any `json:"data"`
}

// version returns the metadata of version n, or nil when it is not
// retained.
func (m *keyMetadata) version(n int64) *versionMetadata {
	if len(m.Versions) == 0 || n <= 0 {
		return nil
	}
	// Versions are contiguous unless something went wrong; fall back to a
	// scan if not.
	if i := n - m.Versions[0].Version; i >= 0 && i < int64(len(m.Versions)) && m.Versions[i].Version == n {
		return &m.Versions[i]
	}
	for i := range m.Versions {
		if m.Versions[i].Version == n {
			return &m.Versions[i]
		}
	}
	return nil
}

// deleted reports whether the version is soft-deleted at now.
func (v *versionMetadata) deleted(now time.Time) bool {
	return v.DeletionTime != 0 && v.DeletionTime <= now.UnixNano()
}

// live reports whether the version can be read at now.
func (v *versionMetadata) live(now time.Time) bool {
	return !v.Destroyed && !v.deleted(now)
}

// addVersion appends version CurrentVersion+1 and drops the versions beyond
// the effective maximum, returning the new version's metadata and the
// numbers of the dropped versions.
func (m *keyMetadata) addVersion(created, deletion int64, cfg mountConfig) (versionMetadata, []int64) {
	m.CurrentVersion++
	vm := versionMetadata{Version: m.CurrentVersion, CreatedTime: created, DeletionTime: deletion}
	m.Versions = append(m.Versions, vm)
	m.UpdatedTime = created
	if m.CreatedTime == 0 {
		m.CreatedTime = created
	}
	limit := int64(effectiveMaxVersions(m, cfg))
	if m.CurrentVersion-m.OldestVersion < limit {
		return vm, nil
	}
	cut := m.CurrentVersion - limit // versions <= cut are dropped
	var dropped []int64
	kept := m.Versions[:0]
	for _, v := range m.Versions {
		if v.Version <= cut {
			dropped = append(dropped, v.Version)
			continue
		}
		kept = append(kept, v)
	}
	m.Versions = kept
	m.OldestVersion = cut + 1
	return vm, dropped
}

// effectiveMaxVersions is the key's max_versions, else the mount's, else 10.
func effectiveMaxVersions(m *keyMetadata, cfg mountConfig) int {
	switch {
	case m.MaxVersions > 0:
		return m.MaxVersions
	case cfg.MaxVersions > 0:
		return cfg.MaxVersions
	}
	return defaultMaxVersions
}

// deletionTime is when a version created at created is soft-deleted: after
// the smaller of the key's and the mount's delete_version_after, 0 when
// neither is set or the mount disables it.
func deletionTime(created int64, cfg mountConfig, m *keyMetadata) int64 {
	if cfg.DeleteVersionAfter < 0 {
		return 0
	}
	d := m.DeleteVersionAfter
	if cfg.DeleteVersionAfter > 0 && (d <= 0 || cfg.DeleteVersionAfter < d) {
		d = cfg.DeleteVersionAfter
	}
	if d <= 0 {
		return 0
	}
	return created + int64(d)
}

func metadataKey(key string) string { return metadataPrefix + key }

func versionsDir(key string) string { return versionsPrefix + key + "/" }

func versionKey(key string, n int64) string {
	return versionsPrefix + key + "/" + strconv.FormatInt(n, 10)
}

// checkKey rejects a secret path that cannot be stored: empty, with an
// empty segment, or with a leading or trailing '/'.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//") {
		return logical.BadRequest("invalid secret path %q: it must be non-empty and have no empty segments", key)
	}
	return nil
}

// loadConfig returns the mount configuration (zero when never written).
func loadConfig(ctx context.Context, s logical.Storage) (mountConfig, error) {
	var cfg mountConfig
	raw, err := s.Get(ctx, configKey)
	if errors.Is(err, logical.ErrNotFound) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("kv: read config: %w", err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("kv: decode config: %w", err)
	}
	return cfg, nil
}

// errNoKey is returned by loadMetadata for a key without metadata; it wraps
// logical.ErrNotFound.
var errNoKey = fmt.Errorf("kv: no such key: %w", logical.ErrNotFound)

// loadMetadata returns the metadata of key, or an error wrapping
// logical.ErrNotFound when the key has none.
func loadMetadata(ctx context.Context, s logical.Storage, key string) (*keyMetadata, error) {
	raw, err := s.Get(ctx, metadataKey(key))
	if errors.Is(err, logical.ErrNotFound) {
		return nil, errNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("kv: read metadata of %q: %w", key, err)
	}
	m := new(keyMetadata)
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("kv: decode metadata of %q: %w", key, err)
	}
	return m, nil
}

// readMetadata is loadMetadata for readers: the result comes from the
// metadata cache when the stored bytes are unchanged, and the caller must not
// modify it.
func (b *versioned) readMetadata(ctx context.Context, s logical.Storage, key string) (*keyMetadata, error) {
	mk := metadataKey(key)
	raw, err := s.Get(ctx, mk)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, errNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("kv: read metadata of %q: %w", key, err)
	}
	m, err := framework.Decode[keyMetadata](&b.metaCache, mk, raw)
	if err != nil {
		return nil, fmt.Errorf("kv: decode metadata of %q: %w", key, err)
	}
	return m, nil
}

// errNoVersionData means metadata refers to version data that is missing.
var errNoVersionData = errors.New("kv: version data missing")

// loadVersion returns the data of version n of key. A missing record is
// errNoVersionData, which is not a "not found": the metadata said it exists.
func loadVersion(ctx context.Context, s logical.Storage, key string, n int64) (map[string]any, error) {
	raw, err := s.Get(ctx, versionKey(key, n))
	if errors.Is(err, logical.ErrNotFound) {
		return nil, errNoVersionData
	}
	if err != nil {
		return nil, fmt.Errorf("kv: read version %d of %q: %w", n, key, err)
	}
	return decodeVersion(raw)
}

// loadVersionRaw returns the stored JSON object of version n of key without
// decoding it: a read passes it to the response as it is.
func loadVersionRaw(ctx context.Context, s logical.Storage, key string, n int64) (json.RawMessage, error) {
	raw, err := s.Get(ctx, versionKey(key, n))
	if errors.Is(err, logical.ErrNotFound) {
		return nil, errNoVersionData
	}
	if err != nil {
		return nil, fmt.Errorf("kv: read version %d of %q: %w", n, key, err)
	}
	return rawVersionData(raw)
}

// rawVersionData extracts the data object of a stored version record. The
// record is what writeOps.put stored (the barrier authenticates it), so the
// common shape is sliced out directly; anything else is decoded.
func rawVersionData(raw []byte) (json.RawMessage, error) {
	const head = `{"data":`
	if len(raw) > len(head)+1 && string(raw[:len(head)]) == head && raw[len(raw)-1] == '}' && raw[len(head)] == '{' {
		return json.RawMessage(raw[len(head) : len(raw)-1]), nil
	}
	var rec struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("kv: decode version: %w", err)
	}
	if len(rec.Data) == 0 || string(rec.Data) == "null" {
		return json.RawMessage("{}"), nil
	}
	return rec.Data, nil
}

func decodeVersion(raw []byte) (map[string]any, error) {
	var rec versionRecord
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("kv: decode version: %w", err)
	}
	if rec.Data == nil {
		rec.Data = map[string]any{}
	}
	return rec.Data, nil
}

// writeOps is a batch of storage writes applied in one transaction when the
// storage supports it, else in order.
type writeOps []logical.StorageOp

func (w *writeOps) put(key string, v any) error {
	var raw []byte
	var err error
	if a, ok := v.(jsonAppender); ok {
		raw, err = a.appendJSON(make([]byte, 0, a.sizeHint()))
	} else {
		raw, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("kv: encode %q: %w", key, err)
	}
	*w = append(*w, logical.StorageOp{Key: key, Value: raw})
	return nil
}

// jsonAppender is a record every write stores, which encodes itself as
// encoding/json would, without its reflection.
type jsonAppender interface {
	appendJSON(buf []byte) ([]byte, error)
	// sizeHint is about how many bytes appendJSON appends, so that it
	// appends them to one allocation.
	sizeHint() int
}

func (r versionRecord) sizeHint() int {
	n := 16
	for k, v := range r.Data {
		n += len(k) + 8
		if s, ok := v.(string); ok {
			n += len(s) + len(s)/8
		} else {
			n += 32
		}
	}
	return n
}

func (m *keyMetadata) sizeHint() int {
	n := 192 + 2*len(m.Key) + 80*len(m.Versions)
	for k, v := range m.CustomMetadata {
		n += len(k) + len(v) + 8
	}
	return n
}

func (r versionRecord) appendJSON(buf []byte) ([]byte, error) {
	out, ok := jsonenc.AppendAnyMap(append(buf, `{"data":`...), r.Data)
	if !ok {
		// A value only encoding/json can describe the trouble with.
		return json.Marshal(r)
	}
	return append(out, '}'), nil
}

// appendVersionMetadata appends v as encoding/json marshals it.
func appendVersionMetadata(buf []byte, v versionMetadata) ([]byte, bool) {
	buf = append(buf, `{"version":`...)
	buf = strconv.AppendInt(buf, v.Version, 10)
	buf = append(buf, `,"created_time":`...)
	buf = strconv.AppendInt(buf, v.CreatedTime, 10)
	if v.DeletionTime != 0 {
		buf = append(buf, `,"deletion_time":`...)
		buf = strconv.AppendInt(buf, v.DeletionTime, 10)
	}
	if v.Destroyed {
		buf = append(buf, `,"destroyed":true`...)
	}
	return append(buf, '}'), true
}

func (m *keyMetadata) appendJSON(buf []byte) ([]byte, error) {
	buf = append(buf, `{"key":`...)
	buf = jsonenc.AppendString(buf, m.Key)
	buf = append(buf, `,"current_version":`...)
	buf = strconv.AppendInt(buf, m.CurrentVersion, 10)
	buf = append(buf, `,"oldest_version":`...)
	buf = strconv.AppendInt(buf, m.OldestVersion, 10)
	if m.MaxVersions != 0 {
		buf = append(buf, `,"max_versions":`...)
		buf = strconv.AppendInt(buf, int64(m.MaxVersions), 10)
	}
	if m.CASRequired {
		buf = append(buf, `,"cas_required":true`...)
	}
	if m.DeleteVersionAfter != 0 {
		buf = append(buf, `,"delete_version_after":`...)
		buf = strconv.AppendInt(buf, int64(m.DeleteVersionAfter), 10)
	}
	if len(m.CustomMetadata) > 0 {
		buf = append(buf, `,"custom_metadata":`...)
		buf = jsonenc.AppendStringMap(buf, m.CustomMetadata)
	}
	buf = append(buf, `,"created_time":`...)
	buf = strconv.AppendInt(buf, m.CreatedTime, 10)
	buf = append(buf, `,"updated_time":`...)
	buf = strconv.AppendInt(buf, m.UpdatedTime, 10)
	buf = append(buf, `,"versions":`...)
	buf, _ = jsonenc.AppendArray(buf, m.Versions, appendVersionMetadata)
	return append(buf, '}'), nil
}

func (w *writeOps) delete(key string) {
	*w = append(*w, logical.StorageOp{Key: key, Delete: true})
}

// apply writes ops (see logical.ApplyOps): callers order their ops so that
// every prefix leaves a consistent state (data before the metadata that
// refers to it, garbage removal after the metadata that drops it).
func (w writeOps) apply(ctx context.Context, s logical.Storage) error {
	if err := logical.ApplyOps(ctx, s, w); err != nil {
		return fmt.Errorf("kv: write: %w", err)
	}
	return nil
}

// commit applies ops, a change ending at its commit point, and then cleanup,
// the removal of data the change made unreachable. With transactions both go
// in one transaction. Without, a failed cleanup does not fail the request,
// which has taken effect: resp gets a warning, and the data stays until the
// key's metadata is deleted (which removes every version record of the key).
func (b *versioned) commit(ctx context.Context, s logical.Storage, ops, cleanup writeOps, resp *logical.Response) error {
	if _, ok := s.(logical.TransactionalStorage); ok {
		return append(ops, cleanup...).apply(ctx, s)
	}
	if err := ops.apply(ctx, s); err != nil {
		return err
	}
	if err := cleanup.apply(ctx, s); err != nil {
		b.logger.Warn("could not remove pruned version data", "error", err)
		resp.AddWarning("The write succeeded, but the data of pruned versions could not be removed; it will be removed when the key's metadata is deleted.")
	}
	return nil
}

// formatTime renders Unix nanoseconds as RFC 3339 in UTC, "" for 0.
func formatTime(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// customMetadataData renders custom_metadata: an object, or null when unset.
func customMetadataData(cm map[string]string) any {
	if len(cm) == 0 {
		return nil
	}
	out := make(map[string]any, len(cm))
	for k, v := range cm {
		out[k] = v
	}
	return out
}

// versionJSON is versionData as the JSON object encoding/json would make
// of it (keys sorted), for reads, the hot path: the response encoder copies
// it as it is instead of building, sorting and walking two maps.
func versionJSON(m *keyMetadata, v *versionMetadata) json.RawMessage {
	b := make([]byte, 0, 160)
	b = append(b, `{"created_time":`...)
	b = appendTime(b, v.CreatedTime)
	b = append(b, `,"custom_metadata":`...)
	if len(m.CustomMetadata) == 0 {
		b = append(b, "null"...)
	} else {
		b = jsonenc.AppendStringMap(b, m.CustomMetadata)
	}
	b = append(b, `,"deletion_time":`...)
	b = appendTime(b, v.DeletionTime)
	b = append(b, `,"destroyed":`...)
	b = strconv.AppendBool(b, v.Destroyed)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, v.Version, 10)
	return append(b, '}')
}

// appendTime appends formatTime(ns) as a JSON string.
func appendTime(b []byte, ns int64) []byte {
	b = append(b, '"')
	if ns != 0 {
		b = time.Unix(0, ns).UTC().AppendFormat(b, time.RFC3339Nano)
	}
	return append(b, '"')
}

// versionData renders one version's metadata as data and write responses
// show it.
func versionData(m *keyMetadata, v *versionMetadata) map[string]any {
	return map[string]any{
		"version":         v.Version,
		"created_time":    formatTime(v.CreatedTime),
		"deletion_time":   formatTime(v.DeletionTime),
		"destroyed":       v.Destroyed,
		"custom_metadata": customMetadataData(m.CustomMetadata),
	}
}

// Warnings of the v2 catch-all paths.
const (
	rootWarning        = "Non-listing operations on the root of a K/V v2 mount are not supported."
	invalidPathWarning = "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv %s' for this operation."
)

// catchAll serves every operation with h.
func catchAll(h framework.OperationFunc) map[logical.Operation]framework.OperationHandler {
	all := []logical.Operation{
		logical.ReadOperation, logical.CreateOperation, logical.UpdateOperation,
		logical.PatchOperation, logical.DeleteOperation, logical.ListOperation,
	}
	ops := make(map[logical.Operation]framework.OperationHandler, len(all))
	for _, op := range all {
		ops[op] = framework.OperationHandler{Handler: h}
	}
	return ops
}

// pathRoot answers the bare roots of the v2 path groups ("data",
// "metadata", "data/"...): 404 with a warning. LIST metadata/ is served by
// pathMetadata, which comes first.
func pathRoot() *framework.Path {
	return &framework.Path{
		Pattern: `(?:data|metadata|delete|undelete|destroy|subkeys)/?`,
		// The answer is "wrong path" whatever the parameters.
		TakesArbitraryInput: true,
		Operations: catchAll(func(_ context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
			if req.Operation == logical.ListOperation {
				return invalidPath(req.Operation), nil
			}
			return rootResponse(), nil
		}),
		HelpSynopsis: "The roots of the K/V v2 path groups take no operations but LIST on metadata/.",
	}
}

func rootResponse() *logical.Response {
	return &logical.Response{StatusCode: 404, Warnings: []string{rootWarning}}
}

// pathInvalid answers every other path of a v2 mount: 404 with a warning
// naming the CLI command to use.
func pathInvalid() *framework.Path {
	return &framework.Path{
		Pattern:             `.*`,
		TakesArbitraryInput: true,
		Operations: catchAll(func(_ context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
			return invalidPath(req.Operation), nil
		}),
		HelpSynopsis:    "Paths outside data/, metadata/, delete/, undelete/, destroy/, subkeys/ and config are not part of a K/V v2 mount.",
		HelpDescription: versionedHelp,
	}
}

func invalidPath(op logical.Operation) *logical.Response {
	var cmd string
	switch op {
	case logical.CreateOperation, logical.UpdateOperation:
		cmd = "put"
	case logical.PatchOperation:
		cmd = "patch"
	case logical.ReadOperation:
		cmd = "get"
	case logical.ListOperation:
		cmd = "list"
	case logical.DeleteOperation:
		cmd = "delete"
	}
	return &logical.Response{StatusCode: 404, Warnings: []string{fmt.Sprintf(invalidPathWarning, cmd)}}
}

const versionedHelp = `
The K/V secrets engine, version 2, stores versioned JSON objects. Each write
to data/<path> creates a new version; older versions are kept up to
max_versions and can be read with ?version=N, soft-deleted, undeleted or
destroyed. metadata/<path> holds each key's settings and version history.
`
