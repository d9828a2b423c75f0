package token

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/glob"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/policy"
)

// createFields are the parameters of the create paths (spec §4.2).
func createFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"id": {Type: framework.TypeString, Sensitive: true,
			Description: "The token itself, instead of a generated one; root or sudo only. It may not contain '.'."},
		"policies": {Type: framework.TypeCommaStringSlice,
			Description: "The token's policies; by default the caller's. Without sudo they must be a subset of the caller's."},
		"meta": {Type: framework.TypeKVPairs,
			Description: "Metadata to keep with the token, shown in lookups and audit logs."},
		"no_parent": {Type: framework.TypeBool,
			Description: "Create an orphan token (root or sudo only)."},
		"no_default_policy": {Type: framework.TypeBool,
			Description: `Do not add the "default" policy.`},
		"renewable": {Type: framework.TypeBool, Default: true,
			Description: "Whether the token may be renewed."},
		"ttl": {Type: framework.TypeDurationSecond,
			Description: "The token's TTL; by default the mount's default TTL."},
		"lease": {Type: framework.TypeDurationSecond,
			Description: `Deprecated: use "ttl".`},
		"explicit_max_ttl": {Type: framework.TypeDurationSecond,
			Description: "A hard cap on the token's life, which renewals cannot pass."},
		"display_name": {Type: framework.TypeString,
			Description: `A name for the token, stored as "token-<name>".`},
		"num_uses": {Type: framework.TypeInt,
			Description: "How many requests the token may make; 0 means unlimited."},
		"period": {Type: framework.TypeDurationSecond,
			Description: "Make the token periodic: each renewal resets its TTL to this value (root or sudo, or a role)."},
		"type": {Type: framework.TypeString,
			Description: `"service" (the default) or "batch".`},
		"entity_alias": {Type: framework.TypeString,
			Description: "The name of an entity alias to attach the token to (only with a role that allows it)."},
	}
}

func (b *backend) pathCreate() *framework.Path {
	return &framework.Path{
		Pattern: "create",
		Fields:  createFields(),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
				return b.create(ctx, req, d, false, nil)
			}, Summary: "Create a token, a child of the caller's."},
		},
		HelpSynopsis: "Create a token.",
	}
}

func (b *backend) pathCreateOrphan() *framework.Path {
	return &framework.Path{
		Pattern: "create-orphan",
		Fields:  createFields(),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
				return b.create(ctx, req, d, true, nil)
			}, Summary: "Create an orphan token."},
		},
		HelpSynopsis: "Create a token without a parent; needs only update on this path.",
	}
}

func (b *backend) pathCreateRole() *framework.Path {
	f := createFields()
	f["role_name"] = roleNameField()
	return &framework.Path{
		Pattern: `create/(?P<role_name>[^/]+)`,
		Fields:  f,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleCreateRole, Summary: "Create a token against a token role."},
		},
		HelpSynopsis: "Create a token against a token role.",
	}
}

func (b *backend) handleCreateRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("role_name")
	r, err := b.st.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("unknown role %s", name)
	}
	return b.create(ctx, req, d, false, r)
}

// displayNameSanitize replaces what a display name may not hold.
var displayNameSanitize = regexp.MustCompile(`[^a-zA-Z0-9-]`)

// create serves the three create paths: the rules of spec §4.2 and §4.5,
// decided against the caller's token and ACL.
func (b *backend) create(ctx context.Context, req *logical.Request, d *framework.FieldData, orphan bool, r *role) (*logical.Response, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	parent := c.Entry
	if parent.IsBatch() {
		return nil, logical.BadRequest("batch tokens cannot create more tokens")
	}
	if parent.NumUses != 0 {
		// Children would escape the parent's use limit.
		return nil, logical.BadRequest("restricted use token cannot generate child tokens")
	}
	sudo := isSudo(c, fullPath(req))
	resp := &logical.Response{}

	typ := strings.ToLower(strings.TrimSpace(d.String("type")))
	if r != nil {
		switch r.TokenType {
		case typeDefaultBatch:
			if typ == "" {
				typ = TypeBatch
			}
		case TypeService, TypeBatch:
			typ = r.TokenType
		}
	}
	renewable := d.Bool("renewable")
	numUses := d.Int("num_uses")
	explicitMax := d.Duration("explicit_max_ttl")
	period := d.Duration("period")
	switch typ {
	case "", TypeService:
		typ = TypeService
	case TypeBatch:
		var bad string
		switch {
		case explicitMax != 0:
			bad = "explicit_max_ttl"
		case numUses != 0:
			bad = "num_uses"
		case period != 0:
			bad = "period"
		}
		if bad != "" {
			return nil, logical.BadRequest("batch tokens cannot have %q set", bad)
		}
		renewable = false
	default:
		return nil, logical.BadRequest("invalid 'token_type' value")
	}
	if numUses < 0 {
		return nil, logical.BadRequest("number of uses cannot be negative")
	}
	if alias := d.String("entity_alias"); alias != "" {
		if r == nil {
			return nil, logical.BadRequest("'entity_alias' is only allowed in combination with token role")
		}
		lower := strings.ToLower(alias)
		if !slices.Contains(r.AllowedEntityAliases, lower) && !glob.MatchAny(r.AllowedEntityAliases, lower) {
			return nil, logical.BadRequest("invalid 'entity_alias' value")
		}
		return nil, logical.BadRequest("'entity_alias' is not supported: this server has no identity store")
	}

	e := &Entry{
		Parent:      parent.HashedID,
		Path:        "auth/token/" + req.Path,
		DisplayName: "token",
		NumUses:     numUses,
		Type:        typ,
	}
	if meta := d.StringMap("meta"); len(meta) > 0 {
		e.Meta = meta
	}
	if r != nil {
		e.Role = r.Name
		renewable = renewable && r.Renewable
		switch {
		case r.TokenNumUses == 0:
		case e.NumUses == 0, r.TokenNumUses < e.NumUses:
			e.NumUses = r.TokenNumUses
		}
		if r.PathSuffix != "" {
			e.Path += "/" + r.PathSuffix
		}
	}
	if name := d.String("display_name"); name != "" {
		e.DisplayName = strings.TrimSuffix(displayNameSanitize.ReplaceAllString("token-"+name, "-"), "-")
	}
	id := d.String("id")
	if id != "" {
		if !sudo {
			return nil, logical.BadRequest("root or sudo privileges required to specify token id")
		}
		if err := ValidateID(id); err != nil {
			return nil, logical.BadRequest("%s", strings.TrimPrefix(err.Error(), "token: "))
		}
		if typ == TypeBatch {
			return nil, logical.BadRequest("batch tokens cannot have a custom id")
		}
	}

	// Policies (Vault's rules): a role with allowed or disallowed policies
	// decides alone; otherwise the caller's policies are the default, and
	// a subset of them is required without sudo.
	policies := d.StringSlice("policies")
	noDefault := d.Bool("no_default_policy") || (r != nil && r.TokenNoDefaultPolicy)
	addDefault := false
	switch {
	case r != nil && (len(r.AllowedPolicies) > 0 || len(r.DisallowedPolicies) > 0 ||
		len(r.AllowedPoliciesGlob) > 0 || len(r.DisallowedPoliciesGlob) > 0):
		localDefault := !noDefault && !slices.Contains(r.DisallowedPolicies, defaultPolicy) &&
			!glob.MatchAny(r.DisallowedPoliciesGlob, defaultPolicy)
		var final []string
		if len(policies) > 0 {
			final = sanitizePolicies(policies, localDefault)
		}
		if len(r.AllowedPolicies) > 0 || len(r.AllowedPoliciesGlob) > 0 {
			allowed := sanitizePolicies(r.AllowedPolicies, localDefault)
			if len(final) == 0 {
				final = allowed
			} else {
				for _, p := range final {
					if !slices.Contains(allowed, p) && !glob.MatchAny(r.AllowedPoliciesGlob, p) {
						return nil, logical.BadRequest("token policies (%q) must be subset of the role's allowed policies (%q) or glob policies (%q)",
							final, allowed, r.AllowedPoliciesGlob)
					}
				}
			}
		} else if len(final) == 0 {
			final = sanitizePolicies(parent.Policies, localDefault)
		}
		for _, p := range final {
			if slices.Contains(r.DisallowedPolicies, p) || glob.MatchAny(r.DisallowedPoliciesGlob, p) {
				return nil, logical.BadRequest("token policy %q is disallowed by this role", p)
			}
		}
		policies = final
	case len(policies) == 0:
		policies = sanitizePolicies(parent.Policies, false)
	case !sudo:
		if !subset(sanitizePolicies(parent.Policies, false), sanitizePolicies(policies, false)) {
			return nil, logical.BadRequest("child policies must be subset of parent")
		}
		addDefault = !noDefault && slices.Contains(parent.Policies, defaultPolicy)
	default:
		addDefault = !noDefault
	}
	e.Policies = sanitizePolicies(policies, addDefault)
	if noDefault {
		e.Policies = slices.DeleteFunc(e.Policies, func(p string) bool { return p == defaultPolicy })
	}
	for _, p := range e.Policies {
		if p == policy.ResponseWrappingName {
			return nil, logical.BadRequest("cannot assign policy %q", p)
		}
	}
	if e.IsRoot() {
		if !parent.IsRoot() {
			return nil, logical.BadRequest("root tokens may not be created without parent token being root")
		}
		if typ == TypeBatch {
			return nil, logical.BadRequest("batch tokens cannot be root tokens")
		}
	}

	// Parent, bound CIDRs and entity.
	switch {
	case r != nil:
		if r.Orphan {
			e.Parent = ""
		}
		if len(r.TokenBoundCIDRs) > 0 {
			e.BoundCIDRs = slices.Clone(r.TokenBoundCIDRs)
		}
	case d.Bool("no_parent"):
		if !sudo {
			return nil, logical.BadRequest("root or sudo privileges required to create orphan token")
		}
		e.Parent = ""
	case orphan:
		e.Parent = ""
	}
	if e.Parent != "" {
		e.EntityID = parent.EntityID
		if r == nil {
			e.BoundCIDRs = slices.Clone(parent.BoundCIDRs)
		}
	}

	// TTLs.
	if period > 0 && !sudo {
		return nil, logical.BadRequest("root or sudo privileges required to create periodic token")
	}
	ttl := d.Duration("ttl")
	if ttl == 0 {
		ttl = d.Duration("lease")
	}
	var roleTTL, roleMax time.Duration
	if r != nil {
		roleTTL, roleMax = r.TokenTTL, r.TokenMaxTTL
	}
	if r != nil && typ != TypeBatch {
		if r.TokenExplicitMaxTTL != 0 {
			if explicitMax == 0 {
				explicitMax = r.TokenExplicitMaxTTL
			} else {
				explicitMax = min(explicitMax, r.TokenExplicitMaxTTL)
				resp.AddWarning(fmt.Sprintf("Explicit max TTL specified both during creation call and in role; using the lesser value of %d seconds", seconds(explicitMax)))
			}
		}
		if r.TokenPeriod != 0 {
			if period == 0 {
				period = r.TokenPeriod
			} else {
				period = min(period, r.TokenPeriod)
				resp.AddWarning(fmt.Sprintf("Period specified both during creation call and in role; using the lesser value of %d seconds", seconds(period)))
			}
		}
	}
	var finalTTL time.Duration
	if period > 0 || ttl > 0 || roleTTL > 0 || !e.IsRoot() {
		t, warnings, err := calculateTTL(ttlInput{
			Now: b.st.now(), Increment: ttl, BackendTTL: roleTTL, Period: period,
			BackendMaxTTL: roleMax, ExplicitMaxTTL: explicitMax, Defaults: b.defaults(),
		})
		if err != nil {
			return nil, logical.BadRequest("%v", err)
		}
		resp.Warnings = append(resp.Warnings, warnings...)
		finalTTL = t
	}
	if finalTTL == 0 && explicitMax > 0 {
		// Root tokens are still bound by an explicit maximum.
		finalTTL = explicitMax
	}
	if finalTTL == 0 {
		if !parent.ExpireTime.IsZero() {
			return nil, logical.BadRequest("expiring root tokens cannot create non-expiring root tokens")
		}
		renewable = false
		e.BoundCIDRs = nil
	}
	e.TTL = finalTTL
	e.ExplicitMaxTTL = explicitMax
	e.MaxTTL = roleMax
	e.Period = period
	e.Renewable = renewable

	tok, err := b.st.create(ctx, id, e)
	switch {
	case errors.Is(err, ErrBadID):
		return nil, logical.BadRequest("%s", strings.TrimPrefix(err.Error(), "token: "))
	case errors.Is(err, ErrInvalid):
		// The caller was revoked meanwhile.
		return nil, logical.ErrPermissionDenied
	case err != nil:
		return nil, err
	}
	resp.Auth = authFor(e, tok.Reveal(), b.st.now())
	if b.cfg.PolicyExists != nil {
		for _, p := range e.Policies {
			if p == rootPolicy {
				continue
			}
			ok, err := b.cfg.PolicyExists(ctx, p)
			if err != nil {
				return nil, err
			}
			if !ok {
				resp.AddWarning(fmt.Sprintf("Policy %q does not exist", p))
			}
		}
	}
	return resp, nil
}
