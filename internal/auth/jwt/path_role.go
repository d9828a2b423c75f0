package jwt

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Role types.
const (
	roleTypeJWT  = "jwt"
	roleTypeOIDC = "oidc"
)

// Default leeways (spec §6.2).
const (
	defaultClockSkew = 60 * time.Second
	defaultExpLeeway = 150 * time.Second
	defaultNbfLeeway = 150 * time.Second
)

// roleEntry is a role.
type roleEntry struct {
	Name                string            `json:"name"`
	RoleType            string            `json:"role_type"`
	UserClaim           string            `json:"user_claim"`
	UserClaimPointer    bool              `json:"user_claim_json_pointer,omitempty"`
	BoundAudiences      []string          `json:"bound_audiences,omitempty"`
	BoundSubject        string            `json:"bound_subject,omitempty"`
	BoundClaims         map[string]any    `json:"bound_claims,omitempty"`
	BoundClaimsType     string            `json:"bound_claims_type"`
	ClaimMappings       map[string]string `json:"claim_mappings,omitempty"`
	GroupsClaim         string            `json:"groups_claim,omitempty"`
	ClockSkewLeeway     time.Duration     `json:"clock_skew_leeway"`
	ExpirationLeeway    time.Duration     `json:"expiration_leeway"`
	NotBeforeLeeway     time.Duration     `json:"not_before_leeway"`
	OIDCScopes          []string          `json:"oidc_scopes,omitempty"`
	AllowedRedirectURIs []string          `json:"allowed_redirect_uris,omitempty"`
	VerboseOIDCLogging  bool              `json:"verbose_oidc_logging,omitempty"`
	MaxAge              time.Duration     `json:"max_age,omitempty"`
	Token               framework.TokenParams
}

func roleFields() map[string]*framework.FieldSchema {
	f := map[string]*framework.FieldSchema{
		"name":                    {Type: framework.TypeNameString, Description: "The role's name."},
		"role_type":               {Type: framework.TypeString, Description: `"jwt" (logins with a JWT) or "oidc" (browser flow; the default).`},
		"user_claim":              {Type: framework.TypeString, Description: "The claim that names the user (the alias name)."},
		"user_claim_json_pointer": {Type: framework.TypeBool, Description: "user_claim is a JSON pointer (/a/b)."},
		"bound_audiences":         {Type: framework.TypeCommaStringSlice, Description: "The aud values accepted; any one matches."},
		"bound_subject":           {Type: framework.TypeString, Description: "The sub claim required."},
		"bound_claims":            {Type: framework.TypeMap, Description: "Claims (names or JSON pointers) and the value, or values, each must have."},
		"bound_claims_type":       {Type: framework.TypeString, Description: `"string" (exact) or "glob" (* anywhere).`},
		"claim_mappings":          {Type: framework.TypeKVPairs, Description: "Claims copied into the token's metadata, claim → metadata key."},
		"groups_claim":            {Type: framework.TypeString, Description: "The claim that lists the user's groups."},
		"clock_skew_leeway":       {Type: framework.TypeSignedDurationSecond, Description: "Leeway on every time claim (60s; -1 for none)."},
		"expiration_leeway":       {Type: framework.TypeSignedDurationSecond, Description: "Leeway on exp (150s; -1 for none)."},
		"not_before_leeway":       {Type: framework.TypeSignedDurationSecond, Description: "Leeway on nbf (150s; -1 for none)."},
		"oidc_scopes":             {Type: framework.TypeCommaStringSlice},
		"allowed_redirect_uris":   {Type: framework.TypeCommaStringSlice},
		"verbose_oidc_logging":    {Type: framework.TypeBool},
		"max_age":                 {Type: framework.TypeDurationSecond},
	}
	maps.Copy(f, framework.TokenFields())
	return f
}

func (b *backend) pathRoleList() *framework.Path {
	return &framework.Path{
		Pattern: `role/?`,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: {Handler: b.listRoles, Summary: "List the roles."},
		},
		HelpSynopsis: "List the roles.",
	}
}

func (b *backend) pathRole() *framework.Path {
	return &framework.Path{
		Pattern: `role/(?P<name>[^/]+)`,
		Fields:  roleFields(),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.readRole, Summary: "Read a role."},
			logical.CreateOperation: {Handler: b.writeRole, Summary: "Create a role."},
			logical.UpdateOperation: {Handler: b.writeRole, Summary: "Update a role."},
			logical.DeleteOperation: {Handler: b.deleteRole, Summary: "Delete a role."},
		},
		ExistenceCheck: b.roleExists,
		HelpSynopsis:   "A role: the bounds a token's claims must meet, and the token a login gets.",
	}
}

func loadRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	r := new(roleEntry)
	found, err := framework.GetJSON(ctx, s, rolePrefix+strings.ToLower(name), r)
	if err != nil || !found {
		return nil, err
	}
	return r, nil
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := loadRole(ctx, req.Storage, d.String("name"))
	return r != nil, err
}

func (b *backend) listRoles(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	keys, err := req.Storage.List(ctx, rolePrefix)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *backend) deleteRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, rolePrefix+strings.ToLower(d.String("name")))
}

func (b *backend) readRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := loadRole(ctx, req.Storage, d.String("name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.ErrNotFound
	}
	data := map[string]any{
		"role_type":               r.RoleType,
		"user_claim":              r.UserClaim,
		"user_claim_json_pointer": r.UserClaimPointer,
		"bound_audiences":         nonNil(r.BoundAudiences),
		"bound_subject":           r.BoundSubject,
		"bound_claims":            r.BoundClaims,
		"bound_claims_type":       r.BoundClaimsType,
		"claim_mappings":          r.ClaimMappings,
		"groups_claim":            r.GroupsClaim,
		"clock_skew_leeway":       leewaySeconds(r.ClockSkewLeeway),
		"expiration_leeway":       leewaySeconds(r.ExpirationLeeway),
		"not_before_leeway":       leewaySeconds(r.NotBeforeLeeway),
		"oidc_scopes":             nonNil(r.OIDCScopes),
		"allowed_redirect_uris":   nonNil(r.AllowedRedirectURIs),
		"verbose_oidc_logging":    r.VerboseOIDCLogging,
		"max_age":                 framework.Seconds(r.MaxAge),
	}
	r.Token.ResponseData(data)
	return &logical.Response{Data: data}, nil
}

// leewaySeconds renders a leeway: -1 when disabled.
func leewaySeconds(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return framework.Seconds(d)
}

// leeway reads a leeway field: -1 disables it (stored as -1s), absent
// keeps cur.
func leeway(d *framework.FieldData, name string, cur time.Duration) time.Duration {
	if !d.Has(name) {
		return cur
	}
	if v := d.Duration(name); v < 0 {
		return -time.Second
	} else {
		return v
	}
}

func (b *backend) writeRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := strings.ToLower(d.String("name"))
	b.roleMu.Lock()
	defer b.roleMu.Unlock()
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &roleEntry{Name: name, RoleType: roleTypeOIDC, BoundClaimsType: "string",
			ClockSkewLeeway: defaultClockSkew, ExpirationLeeway: defaultExpLeeway, NotBeforeLeeway: defaultNbfLeeway}
	}
	if d.Has("role_type") {
		r.RoleType = d.String("role_type")
	}
	if r.RoleType != roleTypeJWT && r.RoleType != roleTypeOIDC {
		return nil, logical.BadRequest(`invalid role_type %q: want "jwt" or "oidc"`, r.RoleType)
	}
	if d.Has("user_claim") {
		r.UserClaim = d.String("user_claim")
	}
	if r.UserClaim == "" {
		return nil, logical.BadRequest("a user claim must be defined on the role")
	}
	if d.Has("user_claim_json_pointer") {
		r.UserClaimPointer = d.Bool("user_claim_json_pointer")
	}
	if d.Has("bound_audiences") {
		r.BoundAudiences = d.StringSlice("bound_audiences")
	}
	if d.Has("bound_subject") {
		r.BoundSubject = d.String("bound_subject")
	}
	if d.Has("bound_claims_type") {
		r.BoundClaimsType = d.String("bound_claims_type")
	}
	if r.BoundClaimsType != "string" && r.BoundClaimsType != "glob" {
		return nil, logical.BadRequest(`invalid bound_claims_type %q: want "string" or "glob"`, r.BoundClaimsType)
	}
	if d.Has("bound_claims") {
		bc := d.Map("bound_claims")
		for k, v := range bc {
			if _, err := allowedValues(v); err != nil {
				return nil, logical.BadRequest("bound_claims %q: %s", k, err)
			}
		}
		r.BoundClaims = bc
	}
	if d.Has("claim_mappings") {
		r.ClaimMappings = d.StringMap("claim_mappings")
		seen := map[string]bool{}
		for _, to := range r.ClaimMappings {
			if seen[to] || to == "role" {
				return nil, logical.BadRequest("claim_mappings: metadata key %q is used twice (\"role\" is reserved)", to)
			}
			seen[to] = true
		}
	}
	if d.Has("groups_claim") {
		r.GroupsClaim = d.String("groups_claim")
	}
	r.ClockSkewLeeway = leeway(d, "clock_skew_leeway", r.ClockSkewLeeway)
	r.ExpirationLeeway = leeway(d, "expiration_leeway", r.ExpirationLeeway)
	r.NotBeforeLeeway = leeway(d, "not_before_leeway", r.NotBeforeLeeway)
	if d.Has("oidc_scopes") {
		r.OIDCScopes = d.StringSlice("oidc_scopes")
	}
	if d.Has("allowed_redirect_uris") {
		r.AllowedRedirectURIs = d.StringSlice("allowed_redirect_uris")
	}
	if d.Has("verbose_oidc_logging") {
		r.VerboseOIDCLogging = d.Bool("verbose_oidc_logging")
	}
	if d.Has("max_age") {
		r.MaxAge = d.Duration("max_age")
	}
	warnings, err := r.Token.Parse(d)
	if err != nil {
		return nil, err
	}
	if r.RoleType == roleTypeJWT && len(r.BoundAudiences) == 0 && r.BoundSubject == "" &&
		len(r.BoundClaims) == 0 && len(r.Token.BoundCIDRs) == 0 {
		return nil, logical.BadRequest("must have at least one bound constraint when creating/updating a role: bound_audiences, bound_subject, bound_claims or token_bound_cidrs")
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, rolePrefix+name, raw); err != nil {
		return nil, err
	}
	if len(warnings) == 0 {
		return nil, nil
	}
	return &logical.Response{Warnings: warnings}, nil
}
