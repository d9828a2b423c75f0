package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/policy"
)

// MountPath is where the token store's backend is always mounted.
const MountPath = "auth/token/"

// BackendConfig configures the auth/token backend.
type BackendConfig struct {
	// System gives the auth/token mount's tuned TTLs; nil means
	// SystemDefaultTTL for both.
	System logical.SystemView
	// PolicyExists reports whether a policy exists, for the warning
	// `Policy "x" does not exist` on token creation; nil skips the check.
	PolicyExists func(ctx context.Context, name string) (bool, error)
	// Logger receives the backend's log lines; nil discards them.
	Logger *slog.Logger
}

// backend serves auth/token/ (spec §4.1) over a Store. The caller of each
// request comes from the context ([WithCaller]).
type backend struct {
	*framework.Backend
	st  *Store
	cfg BackendConfig
}

var (
	_ logical.Backend       = (*backend)(nil)
	_ logical.SpecialPather = (*backend)(nil)
)

// NewBackend returns the auth/token backend over st. Core mounts it at
// auth/token/ and must set the caller of every request it hands it with
// [WithCaller]. Its root paths (sudo needed) are revoke-orphan and the
// accessors list; it has no unauthenticated paths.
func NewBackend(st *Store, cfg BackendConfig) (logical.Backend, error) {
	if st == nil {
		return nil, errors.New("token: backend needs a store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &backend{st: st, cfg: cfg}
	paths := []*framework.Path{
		b.pathAccessors(),
		b.pathCreateOrphan(),
		b.pathCreateRole(),
		b.pathCreate(),
		b.pathLookup(),
		b.pathLookupAccessor(),
		b.pathLookupSelf(),
		b.pathRevokeAccessor(),
		b.pathRevokeSelf(),
		b.pathRevoke(),
		b.pathRevokeOrphan(),
		b.pathRenewAccessor(),
		b.pathRenewSelf(),
		b.pathRenew(),
		b.pathRoleList(),
		b.pathRole(),
		b.pathTidy(),
	}
	fb, err := framework.NewBackend(backendHelp, paths,
		framework.WithSpecialPaths(logical.PathsSpecial{Root: []string{"revoke-orphan", "accessors", "accessors/"}}),
	)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	b.Backend = fb
	return b, nil
}

// defaults returns the auth/token mount's TTLs.
func (b *backend) defaults() TTLDefaults {
	if b.cfg.System == nil {
		return TTLDefaults{}
	}
	return TTLDefaults{DefaultTTL: b.cfg.System.DefaultLeaseTTL(), MaxTTL: b.cfg.System.MaxLeaseTTL()}
}

// caller returns the request's caller, or permission denied.
func caller(ctx context.Context) (*Caller, error) {
	c := CallerFrom(ctx)
	if c == nil || c.Entry == nil {
		return nil, logical.ErrPermissionDenied
	}
	return c, nil
}

// fullPath is the request's path from the root ("auth/token/create").
func fullPath(req *logical.Request) string {
	mp := req.MountPoint
	if mp == "" {
		mp = MountPath
	}
	return mp + req.Path
}

// isSudo reports whether the caller is root or its ACL grants sudo on
// path.
func isSudo(c *Caller, path string) bool {
	if c.Entry != nil && c.Entry.IsRoot() {
		return true
	}
	if c.ACL == nil {
		return false
	}
	return c.ACL.IsRoot() || c.ACL.Allowed(policy.Request{Operation: policy.UpdateOperation, Path: path, Sudo: true}).Allowed
}

// seconds renders a duration as the whole seconds Vault's responses use.
func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// authFor is the auth object of a create or renew response for e; tok is
// the client token ("" for renew-accessor).
func authFor(e *Entry, tok string, now time.Time) *logical.Auth {
	ttl := e.TTL
	if !e.ExpireTime.IsZero() {
		// The time left, in whole seconds rounded up: a token created
		// for an hour reports 3600, not 3599 (batch tokens keep their
		// creation time to the second, and a service token's clock
		// moves on between creation and answer).
		ttl = max(e.ExpireTime.Sub(now), 0)
		if r := ttl % time.Second; r != 0 {
			ttl += time.Second - r
		}
	}
	return &logical.Auth{
		ClientToken:    tok,
		Accessor:       e.Accessor,
		Policies:       slices.Clone(e.Policies),
		Metadata:       maps.Clone(e.Meta),
		DisplayName:    e.DisplayName,
		TTL:            ttl,
		ExplicitMaxTTL: e.ExplicitMaxTTL,
		Period:         e.Period,
		Renewable:      e.Renewable && !e.ExpireTime.IsZero() && !e.IsBatch(),
		TokenType:      e.Type,
		Orphan:         e.Parent == "",
		NumUses:        max(e.NumUses, 0),
	}
}

// lookupData is the data of a token lookup (spec §4.3); id is the token
// ("" for lookup-accessor).
func lookupData(e *Entry, id string, now time.Time) map[string]any {
	policies := slices.Clone(e.Policies)
	if policies == nil {
		policies = []string{}
	}
	var meta any
	if len(e.Meta) > 0 {
		meta = maps.Clone(e.Meta)
	}
	var expire any
	if !e.ExpireTime.IsZero() {
		expire = e.ExpireTime.UTC().Format(time.RFC3339Nano)
	}
	m := map[string]any{
		"id":               id,
		"accessor":         e.Accessor,
		"policies":         policies,
		"path":             e.Path,
		"meta":             meta,
		"display_name":     e.DisplayName,
		"num_uses":         max(e.NumUses, 0),
		"orphan":           e.Parent == "",
		"creation_time":    e.CreationTime.Unix(),
		"creation_ttl":     seconds(e.TTL),
		"ttl":              seconds(e.TTLAt(now)),
		"expire_time":      expire,
		"explicit_max_ttl": seconds(e.ExplicitMaxTTL),
		"entity_id":        e.EntityID,
		"type":             e.Type,
		"renewable":        e.Renewable && !e.ExpireTime.IsZero() && !e.IsBatch(),
		"issue_time":       e.CreationTime.UTC().Format(time.RFC3339Nano),
	}
	if !e.LastRenewal.IsZero() {
		m["last_renewal_time"] = e.LastRenewal.Unix()
		m["last_renewal"] = e.LastRenewal.UTC().Format(time.RFC3339Nano)
	}
	if e.Period > 0 {
		m["period"] = seconds(e.Period)
	}
	if e.Role != "" {
		m["role"] = e.Role
	}
	if len(e.BoundCIDRs) > 0 {
		cidrs := make([]string, 0, len(e.BoundCIDRs))
		for _, p := range e.BoundCIDRs {
			cidrs = append(cidrs, formatCIDR(p))
		}
		m["bound_cidrs"] = cidrs
	}
	return m
}

const backendHelp = `
The token store: create, look up, renew and revoke tokens, manage token
roles, and list accessors. It is always mounted at auth/token/ and cannot
be disabled.
`
