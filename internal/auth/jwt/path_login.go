package jwt

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/jwks"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// internalRole is the InternalData key of a login's role, read back on
// renewal.
const internalRole = "role"

func (b *backend) pathLogin() *framework.Path {
	return &framework.Path{
		Pattern: `login`,
		Fields: map[string]*framework.FieldSchema{
			"role": {Type: framework.TypeString, Description: "The role to log in with (the mount's default_role when empty)."},
			"jwt":  {Type: framework.TypeString, Sensitive: true, Description: "The signed JWT."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleLogin, Summary: "Log in with a JWT."},
		},
		HelpSynopsis: "Log in with a signed JWT whose claims meet the role's bounds.",
	}
}

func (b *backend) handleLogin(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, logical.BadRequest("could not load configuration")
	}
	name := strings.ToLower(d.String("role"))
	if name == "" {
		name = cfg.DefaultRole
	}
	if name == "" {
		return nil, logical.BadRequest("missing role")
	}
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("role %q could not be found", name)
	}
	if r.RoleType == roleTypeOIDC {
		return nil, logical.BadRequest("role with oidc role_type is not allowed")
	}
	tok := secret.NewString(strings.TrimSpace(d.String("jwt")))
	if tok.IsEmpty() {
		return nil, logical.BadRequest("missing token")
	}
	if len(tok.Reveal()) > jwks.MaxTokenSize {
		return nil, logical.BadRequest("error validating token: the token is longer than %d bytes", jwks.MaxTokenSize)
	}
	if len(r.Token.BoundCIDRs) > 0 {
		addr := ""
		if req.Connection != nil {
			addr = req.Connection.RemoteAddr
		}
		if !framework.CIDRsContain(r.Token.BoundCIDRs, addr) {
			return nil, logical.ErrPermissionDenied
		}
	}
	ks, err := b.source(cfg)
	if err != nil {
		return nil, logical.BadRequest("error validating token: %s", err)
	}
	payload, err := ks.verify(ctx, tok.Reveal())
	if err != nil {
		return nil, logical.BadRequest("error validating token: %s", err)
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, logical.BadRequest("error validating token: %s", err)
	}
	if err := validateClaims(c, cfg, r, b.now()); err != nil {
		return nil, logical.BadRequest("error validating claims: %s", err)
	}
	user, ok := userClaim(c, r)
	userName, isString := user.(string)
	if !ok || !isString || userName == "" {
		return nil, logical.BadRequest("claim %q not found in token or not a string", r.UserClaim)
	}
	meta := map[string]string{"role": r.Name}
	for claim, key := range r.ClaimMappings {
		if v, ok := c.lookup(claim); ok {
			if s, ok := scalarString(v); ok {
				meta[key] = s
			}
		}
	}
	a := &logical.Auth{
		Metadata:    meta,
		Role:        r.Name,
		DisplayName: userName,
		Alias:       &logical.Alias{Name: userName, Metadata: maps.Clone(meta)},
		InternalData: map[string]any{
			internalRole: r.Name,
		},
	}
	if groups := groupsOf(c, r.GroupsClaim); len(groups) > 0 {
		a.InternalData["groups"] = groups
	}
	r.Token.Populate(a)
	return &logical.Response{Auth: a}, nil
}

// userClaim reads the role's user claim: by JSON pointer when
// user_claim_json_pointer is set, else by its plain name (even one that
// starts with '/').
func userClaim(c claims, r *roleEntry) (any, bool) {
	if !r.UserClaimPointer {
		v, ok := c[r.UserClaim]
		return v, ok
	}
	if !strings.HasPrefix(r.UserClaim, "/") {
		return c.lookup("/" + r.UserClaim)
	}
	return c.lookup(r.UserClaim)
}

// groupsOf reads the groups claim: a string or a list of strings.
func groupsOf(c claims, name string) []string {
	if name == "" {
		return nil
	}
	v, ok := c.lookup(name)
	if !ok {
		return nil
	}
	g, _ := allowedValues(v)
	return g
}

// validateClaims checks the issuer, the time claims with the role's
// leeways, the audience, the subject and the bound claims, in the order
// of spec §6.2. Its errors name claims, never their secret parts.
func validateClaims(c claims, cfg *configEntry, r *roleEntry, now time.Time) error {
	if cfg.BoundIssuer != "" {
		if iss, _ := c["iss"].(string); iss != cfg.BoundIssuer {
			return fmt.Errorf("iss claim does not match the configured bound_issuer")
		}
	}
	skew := max(r.ClockSkewLeeway, 0)
	exp, ok, err := c.time("exp")
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("the token has no exp claim")
	case now.After(exp.Add(max(r.ExpirationLeeway, 0) + skew)):
		return fmt.Errorf("token is expired")
	}
	if nbf, ok, err := c.time("nbf"); err != nil {
		return err
	} else if ok && now.Before(nbf.Add(-max(r.NotBeforeLeeway, 0)-skew)) {
		return fmt.Errorf("token not valid yet (nbf)")
	}
	if iat, ok, err := c.time("iat"); err != nil {
		return err
	} else if ok && now.Before(iat.Add(-skew)) {
		return fmt.Errorf("token issued in the future (iat)")
	}
	aud, err := c.audiences()
	if err != nil {
		return err
	}
	switch {
	case len(aud) > 0 && len(r.BoundAudiences) == 0:
		return fmt.Errorf("audience claim found in JWT but no audiences bound to the role")
	case len(r.BoundAudiences) > 0 && !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(r.BoundAudiences, a) }):
		return fmt.Errorf("aud claim does not match any bound audience")
	}
	if r.BoundSubject != "" {
		if sub, _ := c["sub"].(string); sub != r.BoundSubject {
			return fmt.Errorf("sub claim does not match bound subject")
		}
	}
	return matchBound(c, r.BoundClaims, r.BoundClaimsType == "glob")
}

// renew serves the renewal of a token a login created: the role must still
// exist with the same policies; the token gets the role's current TTLs.
func (b *backend) renew(ctx context.Context, req *logical.Request) (*logical.Auth, error) {
	name, _ := req.Auth.InternalData[internalRole].(string)
	if name == "" {
		return nil, logical.BadRequest("the token was not created by a JWT login of this mount")
	}
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return framework.RenewFromRole(req, name, nil)
	}
	return framework.RenewFromRole(req, name, &r.Token)
}
