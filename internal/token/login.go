package token

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Login describes the login a token is created for.
type Login struct {
	// MountPath is the auth mount that served the login, with a trailing
	// '/' ("auth/approle/"). Renewals of the token go back to it.
	MountPath string
	// Path is the login's request path ("auth/userpass/login/alice"); it
	// becomes the token's creation path and the prefix of its lease id.
	// Empty means MountPath + "login".
	Path string
	// TokenType is the mount's token_type setting ("", "default",
	// "default-service", "default-batch", "service" or "batch"); see
	// [ResolveType].
	TokenType string
	// Defaults are the mount's tuned TTLs.
	Defaults TTLDefaults
}

// CreateForLogin creates the token a login asked for in a (the Auth an
// auth method returned) and fills in a.ClientToken, a.Accessor and
// a.Orphan, and the settled a.Policies, a.TTL, a.Renewable and
// a.TokenType. The token is an orphan: a service token unless the mount or
// the method asks for batch. Its policies are the method's plus "default"
// (unless NoDefaultPolicy); its TTL follows a.TTL, a.MaxTTL,
// a.ExplicitMaxTTL and a.Period within the mount's defaults (spec §4.4);
// its display name is the mount path's name joined to a.DisplayName
// ("kubernetes-ns-sa"). The login's InternalData, alias and mount path are
// kept for renewals. The warnings are for the login response.
//
// A method's mistake (a root policy, a batch token with a period or a use
// limit, a malformed bound CIDR) is a 400 [logical.CodedError].
func (st *Store) CreateForLogin(ctx context.Context, login Login, a *logical.Auth) (*Entry, secret.String, []string, error) {
	if a == nil {
		return nil, secret.String{}, nil, errors.New("token: no auth to create a token for")
	}
	typ, err := ResolveType(login.TokenType, a.TokenType)
	if err != nil {
		return nil, secret.String{}, nil, logical.BadRequest("%v", err)
	}
	if slices.Contains(framework.SanitizePolicies(a.Policies), rootPolicy) {
		return nil, secret.String{}, nil, logical.BadRequest("auth methods cannot create root tokens")
	}
	if a.NumUses < 0 {
		return nil, secret.String{}, nil, logical.BadRequest("number of uses cannot be negative")
	}
	if typ == TypeBatch {
		switch {
		case a.Period > 0:
			return nil, secret.String{}, nil, logical.BadRequest(`batch tokens cannot have "period" set`)
		case a.NumUses > 0:
			return nil, secret.String{}, nil, logical.BadRequest(`batch tokens cannot have "num_uses" set`)
		}
	}
	cidrs, err := framework.ParseCIDRs("token_bound_cidrs", a.BoundCIDRs)
	if err != nil {
		return nil, secret.String{}, nil, err
	}
	mountPath := login.MountPath
	if mountPath != "" && !strings.HasSuffix(mountPath, "/") {
		mountPath += "/"
	}
	path := login.Path
	if path == "" {
		path = mountPath + "login"
	}
	ttl, warnings, err := calculateTTL(ttlInput{
		Now:            st.now(),
		BackendTTL:     a.TTL,
		Period:         a.Period,
		BackendMaxTTL:  a.MaxTTL,
		ExplicitMaxTTL: a.ExplicitMaxTTL,
		Defaults:       login.Defaults,
	})
	if err != nil {
		return nil, secret.String{}, nil, err
	}
	source := strings.ReplaceAll(strings.TrimPrefix(mountPath, "auth/"), "/", "-")
	e := &Entry{
		Policies:       sanitizePolicies(a.Policies, !a.NoDefaultPolicy),
		Path:           path,
		DisplayName:    strings.TrimSuffix(source+a.DisplayName, "-"),
		Meta:           maps.Clone(a.Metadata),
		TTL:            ttl,
		Type:           typ,
		NumUses:        a.NumUses,
		ExplicitMaxTTL: a.ExplicitMaxTTL,
		MaxTTL:         a.MaxTTL,
		Period:         a.Period,
		Renewable:      a.Renewable && typ == TypeService,
		BoundCIDRs:     cidrs,
		MountPath:      mountPath,
		InternalData:   maps.Clone(a.InternalData),
		EntityID:       a.EntityID,
	}
	if a.Alias != nil {
		e.Alias = &logical.Alias{Name: a.Alias.Name, Metadata: maps.Clone(a.Alias.Metadata)}
	}
	tok, err := st.create(ctx, "", e)
	if err != nil {
		return nil, secret.String{}, nil, err
	}
	a.ClientToken = tok.Reveal()
	a.Accessor = e.Accessor
	a.Orphan = true
	a.Policies = slices.Clone(e.Policies)
	a.TTL = e.TTL
	a.Renewable = e.Renewable
	a.TokenType = e.Type
	return e, tok, warnings, nil
}
