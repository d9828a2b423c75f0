// Package mount owns the mount tables: the persisted lists of mounted
// secrets engines and of auth methods (whose paths begin with "auth/"),
// each entry keyed by a UUID that names its
// barrier view, and the longest-prefix [Router] that finds the mount owning a
// request path.
//
// It does not build backends (the core does, from the factories it is
// given) and it never sees plaintext storage outside the views it is handed.
package mount

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Sentinel errors callers branch on.
var (
	// ErrPathInUse: the path is, contains or lies inside an existing mount.
	ErrPathInUse = errors.New("path is already in use")
	// ErrNotMounted: no mount at that path.
	ErrNotMounted = errors.New("no mount at that path")
	// ErrProtected: the mount cannot be disabled or moved (sys/).
	ErrProtected = errors.New("mount is protected")
)

// Config is a mount's tunable configuration. Zero TTLs mean "the system
// default".
type Config struct {
	DefaultLeaseTTL   time.Duration `json:"default_lease_ttl"`
	MaxLeaseTTL       time.Duration `json:"max_lease_ttl"`
	ForceNoCache      bool          `json:"force_no_cache"`
	ListingVisibility string        `json:"listing_visibility,omitempty"`
	// TokenType is an auth method's token_type ("default-service" when
	// empty).
	TokenType                 string   `json:"token_type,omitempty"`
	AuditNonHMACRequestKeys   []string `json:"audit_non_hmac_request_keys,omitempty"`
	AuditNonHMACResponseKeys  []string `json:"audit_non_hmac_response_keys,omitempty"`
	PassthroughRequestHeaders []string `json:"passthrough_request_headers,omitempty"`
	AllowedResponseHeaders    []string `json:"allowed_response_headers,omitempty"`
}

// Entry is one mount.
type Entry struct {
	// Path is where the mount lives, with a trailing '/' ("secret/").
	Path string `json:"path"`
	// Type is the engine type ("kv").
	Type string `json:"type"`
	// Description is free text.
	Description string `json:"description"`
	// UUID names the mount's storage view; it never changes, so moving a
	// mount moves no data.
	UUID string `json:"uuid"`
	// Accessor is the public id "<type>_<8 hex>".
	Accessor string `json:"accessor"`
	// Config holds the tunables.
	Config Config `json:"config"`
	// Options are engine options ("version": "2").
	Options map[string]string `json:"options"`
	// Local, SealWrap and ExternalEntropyAccess are recorded for Vault
	// compatibility (replication and seal wrapping are not features here).
	Local                 bool   `json:"local"`
	SealWrap              bool   `json:"seal_wrap"`
	ExternalEntropyAccess bool   `json:"external_entropy_access"`
	PluginVersion         string `json:"plugin_version,omitempty"`
	// CreatedAt is when the mount was enabled.
	CreatedAt time.Time `json:"created_at"`
}

// Clone returns a deep copy of e.
func (e *Entry) Clone() *Entry {
	c := *e
	c.Options = cloneMap(e.Options)
	c.Config.AuditNonHMACRequestKeys = append([]string(nil), e.Config.AuditNonHMACRequestKeys...)
	c.Config.AuditNonHMACResponseKeys = append([]string(nil), e.Config.AuditNonHMACResponseKeys...)
	c.Config.PassthroughRequestHeaders = append([]string(nil), e.Config.PassthroughRequestHeaders...)
	c.Config.AllowedResponseHeaders = append([]string(nil), e.Config.AllowedResponseHeaders...)
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// NewEntry returns an entry with a fresh UUID and accessor.
func NewEntry(path, typ string, now time.Time) *Entry {
	return &Entry{
		Path:      path,
		Type:      typ,
		UUID:      secret.UUID(),
		Accessor:  NewAccessor(typ),
		CreatedAt: now.UTC(),
	}
}

// NewAccessor returns "<prefix>_<8 hex>".
func NewAccessor(prefix string) string {
	return fmt.Sprintf("%s_%x", prefix, secret.RandomBytes(4))
}

// ViewPrefix is the storage prefix of the mount's barrier view:
// "auth/<uuid>/" for an auth method (mounted under "auth/"),
// "logical/<uuid>/" for a secrets engine.
func (e *Entry) ViewPrefix() string {
	if strings.HasPrefix(e.Path, "auth/") {
		return "auth/" + e.UUID + "/"
	}
	return "logical/" + e.UUID + "/"
}

// NormalizePath cleans a user-supplied mount path: no leading '/', exactly
// one trailing '/'. It rejects empty paths and ".." segments.
func NormalizePath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", fmt.Errorf("%w: empty mount path", logical.ErrInvalidRequest)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%w: invalid mount path %q", logical.ErrInvalidRequest, p)
		}
	}
	return p + "/", nil
}

// NormalizeNewPath is NormalizePath for a mount about to be made (enabled
// or moved to): it also refuses a path that is not UTF-8, which JSON
// answers and metric labels could not carry as it is. Paths of existing
// mounts go through NormalizePath alone, so that such a mount made
// before can still be tuned, moved away or disabled.
func NormalizeNewPath(p string) (string, error) {
	if !utf8.ValidString(p) {
		return "", fmt.Errorf("%w: mount path %q is not valid UTF-8", logical.ErrInvalidRequest, p)
	}
	return NormalizePath(p)
}

// Table is the persisted list of mounts.
type Table struct {
	Entries []*Entry `json:"entries"`
}

// Find returns the entry mounted exactly at path (with trailing '/').
func (t *Table) Find(path string) *Entry {
	for _, e := range t.Entries {
		if e.Path == path {
			return e
		}
	}
	return nil
}

// Conflicts reports whether path is, contains or lies inside a mount.
func (t *Table) Conflicts(path string) bool {
	for _, e := range t.Entries {
		if strings.HasPrefix(path, e.Path) || strings.HasPrefix(e.Path, path) {
			return true
		}
	}
	return false
}

// Clone returns a deep copy of t.
func (t *Table) Clone() *Table {
	c := &Table{Entries: make([]*Entry, len(t.Entries))}
	for i, e := range t.Entries {
		c.Entries[i] = e.Clone()
	}
	return c
}

// Load reads the table at key. A missing table is an error wrapping
// logical.ErrNotFound.
func Load(ctx context.Context, s logical.Storage, key string) (*Table, error) {
	raw, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("mount: load table %q: %w", key, err)
	}
	var t Table
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("mount: decode table %q: %w", key, err)
	}
	return &t, nil
}

// Save writes the table at key.
func (t *Table) Save(ctx context.Context, s logical.Storage, key string) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("mount: encode table: %w", err)
	}
	if err := s.Put(ctx, key, raw); err != nil {
		return fmt.Errorf("mount: save table %q: %w", key, err)
	}
	return nil
}
