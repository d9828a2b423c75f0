package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// role is a token role (role/<name>): a template for the tokens created
// through auth/token/create/<name>, which may grant policies the caller
// does not hold.
type role struct {
	Name                   string         `json:"name"`
	AllowedPolicies        []string       `json:"allowed_policies,omitempty"`
	DisallowedPolicies     []string       `json:"disallowed_policies,omitempty"`
	AllowedPoliciesGlob    []string       `json:"allowed_policies_glob,omitempty"`
	DisallowedPoliciesGlob []string       `json:"disallowed_policies_glob,omitempty"`
	Orphan                 bool           `json:"orphan,omitempty"`
	Renewable              bool           `json:"renewable"`
	PathSuffix             string         `json:"path_suffix,omitempty"`
	AllowedEntityAliases   []string       `json:"allowed_entity_aliases,omitempty"`
	TokenType              string         `json:"token_type"`
	TokenTTL               time.Duration  `json:"token_ttl,omitempty"`
	TokenMaxTTL            time.Duration  `json:"token_max_ttl,omitempty"`
	TokenExplicitMaxTTL    time.Duration  `json:"token_explicit_max_ttl,omitempty"`
	TokenPeriod            time.Duration  `json:"token_period,omitempty"`
	TokenNumUses           int            `json:"token_num_uses,omitempty"`
	TokenNoDefaultPolicy   bool           `json:"token_no_default_policy,omitempty"`
	TokenBoundCIDRs        []netip.Prefix `json:"token_bound_cidrs,omitempty"`
	// Legacy* record that the last write used a deprecated alias; reads
	// then echo it, as Vault's do.
	LegacyPeriod         bool `json:"legacy_period,omitempty"`
	LegacyExplicitMaxTTL bool `json:"legacy_explicit_max_ttl,omitempty"`
	LegacyBoundCIDRs     bool `json:"legacy_bound_cidrs,omitempty"`
}

func roleKey(name string) string { return rolePrefix + name }

// loadRole returns the role called name, or nil when there is none.
func (st *Store) loadRole(ctx context.Context, name string) (*role, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	raw, err := st.s.Get(ctx, roleKey(name))
	if errors.Is(err, logical.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token: read role %q: %w", name, err)
	}
	r := new(role)
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("token: decode role %q: %w", name, err)
	}
	if r.TokenType == "" || r.TokenType == typeDefault {
		r.TokenType = typeDefaultService
	}
	return r, nil
}

func (st *Store) putRole(ctx context.Context, r *role) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("token: encode role %q: %w", r.Name, err)
	}
	if err := st.s.Put(ctx, roleKey(r.Name), raw); err != nil {
		return fmt.Errorf("token: store role %q: %w", r.Name, err)
	}
	return nil
}

func (st *Store) deleteRole(ctx context.Context, name string) error {
	if err := st.s.Delete(ctx, roleKey(name)); err != nil {
		return fmt.Errorf("token: delete role %q: %w", name, err)
	}
	return nil
}

func (st *Store) listRoles(ctx context.Context) ([]string, error) {
	names, err := st.s.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("token: list roles: %w", err)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			out = append(out, n)
		}
	}
	return out, nil
}

// validPathSuffix checks a role's path_suffix: '/'-separated segments of
// letters, digits, '_', '-' and '.', each beginning and ending with a
// letter, digit or '_' (so no "..").
func validPathSuffix(s string) bool {
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "" {
			return false
		}
		for i, c := range seg {
			word := c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !word && !((c == '-' || c == '.') && i > 0 && i < len(seg)-1) {
				return false
			}
		}
		if strings.Contains(seg, "..") {
			return false
		}
	}
	return true
}
