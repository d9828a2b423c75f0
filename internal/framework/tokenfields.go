package framework

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// The shared token fields. Every role-based auth method (AppRole,
// Kubernetes, JWT, userpass) lets a role say what the tokens its logins
// create look like, with the same field names and the same rules, so that
// one client library and one Terraform provider can configure any of them.
// [TokenFields] declares the fields, [TokenParams] holds their values in a
// role, [TokenParams.Parse] applies a request to them, and
// [TokenParams.Populate] copies them into a login's [logical.Auth].

// Token types a role may ask for, as stored in [TokenParams.Type]. The empty
// type defers to the mount's default.
const (
	TokenTypeService = "service"
	TokenTypeBatch   = "batch"
)

// rootPolicy is the policy no login may grant.
const rootPolicy = "root"

// defaultPolicy is added to every token by the pipeline unless
// NoDefaultPolicy is set; policy comparisons ignore it.
const defaultPolicy = "default"

// TokenFields returns the schemas of the shared token fields, in a new map
// the caller may add to: token_bound_cidrs, token_explicit_max_ttl,
// token_max_ttl, token_no_default_policy, token_num_uses, token_period,
// token_policies, token_ttl, token_type, and the deprecated aliases policies
// (of token_policies) and period (of token_period). Method-specific legacy
// fields (AppRole's bound_cidr_list) are the caller's to add.
func TokenFields() map[string]*FieldSchema {
	return map[string]*FieldSchema{
		"token_bound_cidrs": {
			Type:        TypeCommaStringSlice,
			Description: "CIDR blocks (or single addresses) that may use the tokens this role creates; a comma-separated string or a list.",
		},
		"token_explicit_max_ttl": {
			Type:        TypeDurationSecond,
			Description: "A hard cap on the lifetime of the tokens this role creates, which later changes to the role or the mount do not move.",
		},
		"token_max_ttl": {
			Type:        TypeDurationSecond,
			Description: "The longest the tokens this role creates may live, renewals included; 0 means the mount's maximum.",
		},
		"token_no_default_policy": {
			Type:        TypeBool,
			Description: "Do not add the \"default\" policy to the tokens this role creates.",
		},
		"token_num_uses": {
			Type:        TypeInt,
			Description: "How many requests each token may make; 0 means unlimited.",
		},
		"token_period": {
			Type:        TypeDurationSecond,
			Description: "Make the tokens periodic: each renewal resets their TTL to this value, and no maximum TTL applies.",
		},
		"token_policies": {
			Type:        TypeCommaStringSlice,
			Description: "The policies of the tokens this role creates; a comma-separated string or a list.",
		},
		"token_ttl": {
			Type:        TypeDurationSecond,
			Description: "The initial TTL of the tokens this role creates; 0 means the mount's default.",
		},
		"token_type": {
			Type:        TypeString,
			Description: `The type of the tokens this role creates: "service", "batch" or "default" (the mount's default). "default-service" and "default-batch" are accepted and mean "service" and "batch".`,
		},
		"policies": {
			Type:        TypeCommaStringSlice,
			Description: `Deprecated: use "token_policies". When both are given, only "token_policies" is used.`,
		},
		"period": {
			Type:        TypeDurationSecond,
			Description: `Deprecated: use "token_period". When both are given, only "token_period" is used.`,
		},
	}
}

// TokenParams are the token settings of a role. The zero value asks for the
// mount's defaults everywhere. It is stored with the role as JSON.
type TokenParams struct {
	// Policies are sanitized: lowercase, trimmed, without duplicates,
	// sorted. They never contain "root".
	Policies        []string       `json:"policies,omitempty"`
	TTL             time.Duration  `json:"ttl,omitempty"`
	MaxTTL          time.Duration  `json:"max_ttl,omitempty"`
	ExplicitMaxTTL  time.Duration  `json:"explicit_max_ttl,omitempty"`
	Period          time.Duration  `json:"period,omitempty"`
	NumUses         int            `json:"num_uses,omitempty"`
	NoDefaultPolicy bool           `json:"no_default_policy,omitempty"`
	BoundCIDRs      []netip.Prefix `json:"bound_cidrs,omitempty"`
	// Type is "" (the mount's default), TokenTypeService or TokenTypeBatch.
	Type string `json:"type,omitempty"`
	// LegacyPolicies and LegacyPeriod record that the last write set the
	// value through a deprecated alias; role reads then echo the alias too,
	// as Vault's do.
	LegacyPolicies bool `json:"legacy_policies,omitempty"`
	LegacyPeriod   bool `json:"legacy_period,omitempty"`
}

// Parse applies the token fields the request supplied (see [TokenFields])
// to t, leaving the others as they are, and validates the result. Only the
// fields the request supplied are read, so d may come from a path that
// declares only some of them (a role's "token-ttl" sub-path). A caller's
// mistake is a 400 [logical.CodedError] naming the field; on error t may be
// partly updated and must be discarded. The warnings are for the response.
func (t *TokenParams) Parse(d *FieldData) (warnings []string, err error) {
	if d.Has("token_bound_cidrs") {
		cidrs, err := ParseCIDRs("token_bound_cidrs", d.StringSlice("token_bound_cidrs"))
		if err != nil {
			return nil, err
		}
		t.BoundCIDRs = cidrs
	}
	if d.Has("token_explicit_max_ttl") {
		t.ExplicitMaxTTL = d.Duration("token_explicit_max_ttl")
	}
	if d.Has("token_max_ttl") {
		t.MaxTTL = d.Duration("token_max_ttl")
	}
	if d.Has("token_ttl") {
		t.TTL = d.Duration("token_ttl")
	}
	if d.Has("token_no_default_policy") {
		t.NoDefaultPolicy = d.Bool("token_no_default_policy")
	}
	if d.Has("token_num_uses") {
		t.NumUses = d.Int("token_num_uses")
	}
	// A deprecated alias counts only when the new name is absent; the
	// alias is echoed by reads only when it was the one used.
	switch {
	case d.Has("token_policies"):
		t.Policies = SanitizePolicies(d.StringSlice("token_policies"))
		t.LegacyPolicies = d.Has("policies")
	case d.Has("policies"):
		t.Policies = SanitizePolicies(d.StringSlice("policies"))
		t.LegacyPolicies = true
	}
	switch {
	case d.Has("token_period"):
		t.Period = d.Duration("token_period")
		t.LegacyPeriod = d.Has("period")
	case d.Has("period"):
		t.Period = d.Duration("period")
		t.LegacyPeriod = true
	}
	if d.Has("token_type") {
		typ, warning, err := parseTokenType(d.String("token_type"))
		if err != nil {
			return nil, err
		}
		t.Type = typ
		if warning != "" {
			warnings = append(warnings, warning)
		}
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return warnings, nil
}

// parseTokenType maps a token_type value to its stored form. The
// "default-*" forms are accepted for old clients, with a warning, as Vault
// does.
func parseTokenType(s string) (typ, warning string, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "default":
		return "", "", nil
	case TokenTypeService:
		return TokenTypeService, "", nil
	case TokenTypeBatch:
		return TokenTypeBatch, "", nil
	case "default-service":
		return TokenTypeService, `token_type "default-service" has no useful meaning; using "service"`, nil
	case "default-batch":
		return TokenTypeBatch, `token_type "default-batch" has no useful meaning; using "batch"`, nil
	}
	return "", "", logical.BadRequest(`invalid token_type %q: it must be "service", "batch" or "default"`, s)
}

// Validate checks that the settings are consistent, with the 400 a role
// write gets when they are not.
func (t TokenParams) Validate() error {
	switch {
	case t.NumUses < 0:
		return logical.BadRequest("token_num_uses must not be negative")
	case t.TTL < 0 || t.MaxTTL < 0 || t.ExplicitMaxTTL < 0 || t.Period < 0:
		// The field types reject negative durations; a stored value
		// could still be wrong.
		return logical.BadRequest("token TTLs and period must not be negative")
	case t.TTL > 0 && t.MaxTTL > 0 && t.TTL > t.MaxTTL:
		return logical.BadRequest("token_ttl must not be greater than token_max_ttl")
	case t.Type != "" && t.Type != TokenTypeService && t.Type != TokenTypeBatch:
		return logical.BadRequest("invalid token_type %q", t.Type)
	case t.Type == TokenTypeBatch && t.Period != 0:
		return logical.BadRequest(`token_type "batch" cannot be used with token_period: batch tokens are not renewable`)
	case t.Type == TokenTypeBatch && t.NumUses != 0:
		return logical.BadRequest(`token_type "batch" cannot be used with token_num_uses`)
	case slices.Contains(t.Policies, rootPolicy):
		return logical.BadRequest(`token_policies must not contain "root": a login may not create a root token`)
	}
	return nil
}

// Populate copies the settings into a login's auth: policies, TTLs,
// period, use count, bound CIDRs, token type and the default-policy switch.
// Renewable is set for every token type but batch, which the pipeline never
// renews (Vault's helper sets it for all and lets the token store decide).
func (t TokenParams) Populate(a *logical.Auth) {
	a.Policies = slices.Clone(t.Policies)
	a.NoDefaultPolicy = t.NoDefaultPolicy
	a.TTL = t.TTL
	a.MaxTTL = t.MaxTTL
	a.ExplicitMaxTTL = t.ExplicitMaxTTL
	a.Period = t.Period
	a.NumUses = t.NumUses
	a.TokenType = t.Type
	a.BoundCIDRs = FormatCIDRs(t.BoundCIDRs)
	a.Renewable = t.Type != TokenTypeBatch
}

// ResponseData adds the settings to a role read's data as Vault renders
// them: durations in whole seconds, empty lists as [], token_type "default"
// when unset, and the deprecated "policies" and "period" when the role was
// last written through them.
func (t TokenParams) ResponseData(m map[string]any) {
	policies := slices.Clone(t.Policies)
	if policies == nil {
		policies = []string{}
	}
	typ := t.Type
	if typ == "" {
		typ = "default"
	}
	m["token_bound_cidrs"] = FormatCIDRs(t.BoundCIDRs)
	m["token_explicit_max_ttl"] = Seconds(t.ExplicitMaxTTL)
	m["token_max_ttl"] = Seconds(t.MaxTTL)
	m["token_no_default_policy"] = t.NoDefaultPolicy
	m["token_num_uses"] = t.NumUses
	m["token_period"] = Seconds(t.Period)
	m["token_policies"] = policies
	m["token_ttl"] = Seconds(t.TTL)
	m["token_type"] = typ
	if t.LegacyPolicies {
		m["policies"] = slices.Clone(policies)
	}
	if t.LegacyPeriod {
		m["period"] = Seconds(t.Period)
	}
}

// Seconds renders a duration as the whole seconds Vault's responses use.
func Seconds(d time.Duration) int64 { return int64(d / time.Second) }

// SanitizePolicies returns policy names lowercased and trimmed, without
// empty names or duplicates, sorted. The input is not modified.
func SanitizePolicies(in []string) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// EquivalentPolicies reports whether two policy lists grant the same
// policies, ignoring order, case, duplicates and "default" (which the
// pipeline adds after the method has returned its list). Renewals use it to
// refuse a token whose role's policies have changed.
func EquivalentPolicies(a, b []string) bool {
	strip := func(in []string) []string {
		return slices.DeleteFunc(SanitizePolicies(in), func(p string) bool { return p == defaultPolicy })
	}
	return slices.Equal(strip(a), strip(b))
}

// RenewFromRole answers the renewal of a token a role-based login created
// (a [WithAuthRenew] handler's last step): the role must still exist
// (role nil: 400 "role ... no longer exists") with the policies the token
// got, and the renewed token takes the role's current TTL, maximum TTL
// and period. A caller that checks more (a role id) does so first.
func RenewFromRole(req *logical.Request, name string, role *TokenParams) (*logical.Auth, error) {
	switch {
	case role == nil:
		return nil, logical.BadRequest("role %q no longer exists; log in again", name)
	case !EquivalentPolicies(role.Policies, req.Auth.Policies):
		return nil, logical.BadRequest("the policies of role %q have changed since the login; log in again", name)
	}
	a := *req.Auth
	a.TTL = role.TTL
	a.MaxTTL = role.MaxTTL
	a.Period = role.Period
	return &a, nil
}

// ParseCIDRs parses CIDR blocks ("10.0.0.0/8") and single addresses
// ("10.1.2.3", a /32 or /128) given in the named field. Each block is
// masked to its network address, IPv4-mapped IPv6 addresses become IPv4,
// and duplicates are dropped; the order is kept. A value that is neither is
// a 400 naming the field and the value.
func ParseCIDRs(field string, in []string) ([]netip.Prefix, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := parseCIDR(s)
		if err != nil {
			return nil, logical.BadRequest("invalid CIDR block %s in %s: %v", describe(s), field, err)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an address or CIDR block")
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zones are not allowed")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an address or CIDR block")
	}
	if a := p.Addr(); a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("an IPv4-mapped block must be at least /96")
		}
		p = netip.PrefixFrom(a.Unmap(), bits)
	}
	return p.Masked(), nil
}

// FormatCIDRs renders blocks as Vault does: a single address without its
// /32 or /128, a block in CIDR form. It never returns nil, so that an empty
// list renders as [].
func FormatCIDRs(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.IsSingleIP() {
			out = append(out, p.Addr().String())
		} else {
			out = append(out, p.String())
		}
	}
	return out
}

// CIDRsContain reports whether addr, a client address as in
// [logical.Connection.RemoteAddr], lies in one of blocks. An empty or
// unparsable address lies in none.
func CIDRsContain(blocks []netip.Prefix, addr string) bool {
	a, err := netip.ParseAddr(strings.TrimSpace(addr))
	if err != nil {
		return false
	}
	a = a.WithZone("").Unmap()
	for _, p := range blocks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CIDRsSubset reports whether every block of child lies inside some block
// of parent.
func CIDRsSubset(child, parent []netip.Prefix) bool {
	for _, c := range child {
		inside := false
		for _, p := range parent {
			if p.Bits() <= c.Bits() && p.Contains(c.Addr()) {
				inside = true
				break
			}
		}
		if !inside {
			return false
		}
	}
	return true
}
