package token

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

func roleNameField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeNameString, Description: "The name of the token role."}
}

func (b *backend) pathRoleList() *framework.Path {
	return &framework.Path{
		Pattern: "roles/?",
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: {Handler: func(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
				keys, err := b.st.listRoles(ctx)
				if err != nil {
					return nil, err
				}
				if len(keys) == 0 {
					return nil, logical.ErrNotFound
				}
				return &logical.Response{Data: map[string]any{"keys": keys}}, nil
			}, Summary: "List the token roles."},
		},
		HelpSynopsis: "List the token roles.",
	}
}

// roleFields are the parameters of roles/<name> (spec §4.5), with the
// deprecated aliases period, explicit_max_ttl and bound_cidrs.
func roleFields() map[string]*framework.FieldSchema {
	list := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeCommaStringSlice, Description: desc}
	}
	dur := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeDurationSecond, Description: desc}
	}
	return map[string]*framework.FieldSchema{
		"role_name":                roleNameField(),
		"allowed_policies":         list("Policies tokens of the role may have; when set, tokens may have policies their creator lacks."),
		"disallowed_policies":      list("Policies tokens of the role may not have."),
		"allowed_policies_glob":    list("Globs of policies tokens of the role may have."),
		"disallowed_policies_glob": list("Globs of policies tokens of the role may not have."),
		"orphan":                   {Type: framework.TypeBool, Description: "Make the role's tokens orphans."},
		"renewable":                {Type: framework.TypeBool, Default: true, Description: "Whether the role's tokens may be renewed."},
		"path_suffix":              {Type: framework.TypeString, Description: "A suffix for the creation path of the role's tokens, so that they can be revoked by prefix."},
		"allowed_entity_aliases":   list("Entity aliases tokens of the role may be attached to."),
		"token_type":               {Type: framework.TypeString, Description: `"service", "batch", "default-service" (the default) or "default-batch".`},
		"token_ttl":                dur("The default TTL of the role's tokens."),
		"token_max_ttl":            dur("The longest the role's tokens may live, renewals included."),
		"token_explicit_max_ttl":   dur("A hard cap on the life of the role's tokens."),
		"token_period":             dur("Make the role's tokens periodic."),
		"token_num_uses":           {Type: framework.TypeInt, Description: "How many requests each of the role's tokens may make; 0 means unlimited."},
		"token_no_default_policy":  {Type: framework.TypeBool, Description: `Do not add the "default" policy to the role's tokens.`},
		"token_bound_cidrs":        list("CIDR blocks that may use the role's tokens."),
		"period":                   dur(`Deprecated: use "token_period".`),
		"explicit_max_ttl":         dur(`Deprecated: use "token_explicit_max_ttl".`),
		"bound_cidrs":              list(`Deprecated: use "token_bound_cidrs".`),
	}
}

func (b *backend) pathRole() *framework.Path {
	return &framework.Path{
		Pattern: `roles/(?P<role_name>[^/]+)`,
		Fields:  roleFields(),
		ExistenceCheck: func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (bool, error) {
			r, err := b.st.loadRole(ctx, d.String("role_name"))
			return r != nil, err
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleRoleRead, Summary: "Read a token role."},
			logical.CreateOperation: {Handler: b.handleRoleWrite, Summary: "Create a token role."},
			logical.UpdateOperation: {Handler: b.handleRoleWrite, Summary: "Update a token role."},
			logical.DeleteOperation: {Handler: b.handleRoleDelete, Summary: "Delete a token role."},
		},
		HelpSynopsis: "Manage a token role.",
	}
}

func (b *backend) handleRoleRead(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := b.st.loadRole(ctx, d.String("role_name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.ErrNotFound
	}
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return slices.Clone(s)
	}
	data := map[string]any{
		"name":                     r.Name,
		"allowed_policies":         nonNil(r.AllowedPolicies),
		"disallowed_policies":      nonNil(r.DisallowedPolicies),
		"allowed_policies_glob":    nonNil(r.AllowedPoliciesGlob),
		"disallowed_policies_glob": nonNil(r.DisallowedPoliciesGlob),
		"orphan":                   r.Orphan,
		"renewable":                r.Renewable,
		"path_suffix":              r.PathSuffix,
		"allowed_entity_aliases":   nonNil(r.AllowedEntityAliases),
		"token_type":               r.TokenType,
		"token_ttl":                seconds(r.TokenTTL),
		"token_max_ttl":            seconds(r.TokenMaxTTL),
		"token_explicit_max_ttl":   seconds(r.TokenExplicitMaxTTL),
		"token_period":             seconds(r.TokenPeriod),
		"token_no_default_policy":  r.TokenNoDefaultPolicy,
		"period":                   int64(0),
		"explicit_max_ttl":         int64(0),
	}
	if r.LegacyPeriod {
		data["period"] = seconds(r.TokenPeriod)
	}
	if r.LegacyExplicitMaxTTL {
		data["explicit_max_ttl"] = seconds(r.TokenExplicitMaxTTL)
	}
	if len(r.TokenBoundCIDRs) > 0 {
		cidrs := framework.FormatCIDRs(r.TokenBoundCIDRs)
		data["token_bound_cidrs"] = cidrs
		if r.LegacyBoundCIDRs {
			data["bound_cidrs"] = slices.Clone(cidrs)
		}
	}
	if r.TokenNumUses > 0 {
		data["token_num_uses"] = r.TokenNumUses
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) handleRoleWrite(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("role_name")
	r, err := b.st.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &role{Name: name, Renewable: true, TokenType: typeDefaultService}
	}
	resp := &logical.Response{}
	if d.Has("orphan") {
		r.Orphan = d.Bool("orphan")
	}
	if d.Has("renewable") {
		r.Renewable = d.Bool("renewable")
	}
	if d.Has("path_suffix") {
		s := d.String("path_suffix")
		if s != "" && !validPathSuffix(s) {
			return nil, logical.BadRequest("given role path suffix contains invalid characters: each '/'-separated segment must be letters, digits, '_', '-' and '.', beginning and ending with a letter, digit or '_'")
		}
		r.PathSuffix = s
	}
	if d.Has("allowed_policies") {
		r.AllowedPolicies = sanitizePolicies(d.StringSlice("allowed_policies"), false)
	}
	if d.Has("disallowed_policies") {
		r.DisallowedPolicies = framework.SanitizePolicies(d.StringSlice("disallowed_policies"))
	}
	if d.Has("allowed_policies_glob") {
		r.AllowedPoliciesGlob = framework.SanitizePolicies(d.StringSlice("allowed_policies_glob"))
	}
	if d.Has("disallowed_policies_glob") {
		r.DisallowedPoliciesGlob = framework.SanitizePolicies(d.StringSlice("disallowed_policies_glob"))
	}
	if d.Has("allowed_entity_aliases") {
		r.AllowedEntityAliases = framework.SanitizePolicies(d.StringSlice("allowed_entity_aliases"))
	}
	if d.Has("token_type") {
		switch t := strings.ToLower(strings.TrimSpace(d.String("token_type"))); t {
		case TypeService, TypeBatch, typeDefaultService, typeDefaultBatch:
			r.TokenType = t
		case "", typeDefault:
			r.TokenType = typeDefaultService
		default:
			return nil, logical.BadRequest("invalid 'token_type' value %q", d.String("token_type"))
		}
	}
	if d.Has("token_ttl") {
		r.TokenTTL = d.Duration("token_ttl")
	}
	if d.Has("token_max_ttl") {
		r.TokenMaxTTL = d.Duration("token_max_ttl")
	}
	if d.Has("token_num_uses") {
		if n := d.Int("token_num_uses"); n < 0 {
			return nil, logical.BadRequest("token_num_uses must not be negative")
		} else {
			r.TokenNumUses = n
		}
	}
	if d.Has("token_no_default_policy") {
		r.TokenNoDefaultPolicy = d.Bool("token_no_default_policy")
	}
	// The token_ names win over their deprecated aliases; reads echo an
	// alias only when it was the one used.
	switch {
	case d.Has("token_period"):
		r.TokenPeriod, r.LegacyPeriod = d.Duration("token_period"), false
		if d.Has("period") {
			resp.AddWarning("Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value")
		}
	case d.Has("period"):
		r.TokenPeriod, r.LegacyPeriod = d.Duration("period"), true
	}
	switch {
	case d.Has("token_explicit_max_ttl"):
		r.TokenExplicitMaxTTL, r.LegacyExplicitMaxTTL = d.Duration("token_explicit_max_ttl"), false
		if d.Has("explicit_max_ttl") {
			resp.AddWarning("Both 'token_explicit_max_ttl' and deprecated 'explicit_max_ttl' value supplied, ignoring the deprecated value")
		}
	case d.Has("explicit_max_ttl"):
		r.TokenExplicitMaxTTL, r.LegacyExplicitMaxTTL = d.Duration("explicit_max_ttl"), true
	}
	cidrField := ""
	switch {
	case d.Has("token_bound_cidrs"):
		cidrField, r.LegacyBoundCIDRs = "token_bound_cidrs", false
		if d.Has("bound_cidrs") {
			resp.AddWarning("Both 'token_bound_cidrs' and deprecated 'bound_cidrs' value supplied, ignoring the deprecated value")
		}
	case d.Has("bound_cidrs"):
		cidrField, r.LegacyBoundCIDRs = "bound_cidrs", true
	}
	if cidrField != "" {
		cidrs, err := framework.ParseCIDRs(cidrField, d.StringSlice(cidrField))
		if err != nil {
			return nil, err
		}
		r.TokenBoundCIDRs = cidrs
	}
	if r.TokenTTL > 0 && r.TokenMaxTTL > 0 && r.TokenTTL > r.TokenMaxTTL {
		return nil, logical.BadRequest("token_ttl must not be greater than token_max_ttl")
	}
	if r.TokenType == TypeBatch {
		switch {
		case !r.Orphan:
			return nil, logical.BadRequest("'token_type' cannot be 'batch' when role is set to generate non-orphan tokens")
		case r.TokenPeriod != 0:
			return nil, logical.BadRequest("'token_type' cannot be 'batch' when role is set to generate periodic tokens")
		case r.Renewable:
			return nil, logical.BadRequest("'token_type' cannot be 'batch' when role is set to generate renewable tokens")
		case r.TokenExplicitMaxTTL != 0:
			return nil, logical.BadRequest("'token_type' cannot be 'batch' when role is set to generate tokens with an explicit max TTL")
		case r.TokenNumUses != 0:
			return nil, logical.BadRequest("'token_type' cannot be 'batch' when role is set to generate tokens with a use limit")
		}
	}
	if mx := b.defaults().resolved().MaxTTL; r.TokenExplicitMaxTTL > mx {
		resp.AddWarning(fmt.Sprintf("Given explicit max TTL of %d is greater than system/mount allowed value of %d seconds; tokens of this role are capped at the latter",
			seconds(r.TokenExplicitMaxTTL), seconds(mx)))
	}
	if err := b.st.putRole(ctx, r); err != nil {
		return nil, err
	}
	if len(resp.Warnings) == 0 {
		return nil, nil
	}
	return resp, nil
}

func (b *backend) handleRoleDelete(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, b.st.deleteRole(ctx, d.String("role_name"))
}
