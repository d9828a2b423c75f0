package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/glob"
	"github.com/vigil-secrets/vigil/internal/jwks"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// internalRole is the InternalData key of a login's role, read back on
// renewal.
const internalRole = "role"

// The 403 messages of spec §6.1 step 3.
const (
	msgNameNotAuthorized      = "service account name not authorized"
	msgNamespaceNotAuthorized = "namespace not authorized"
)

func (b *backend) pathLogin() *framework.Path {
	return &framework.Path{
		Pattern: `login`,
		Fields: map[string]*framework.FieldSchema{
			"role": {Type: framework.TypeString, Description: "The role to log in with."},
			"jwt":  {Type: framework.TypeString, Sensitive: true, Description: "The service account's JWT."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleLogin, Summary: "Log in with a service-account token."},
		},
		HelpSynopsis: "Log in with a Kubernetes service-account token.",
		HelpDescription: "A missing role or jwt, or an unknown role, is a 400; every other failure is a 403 " +
			"(\"service account name not authorized\", \"namespace not authorized\" or \"permission denied\").",
	}
}

// denied is the 403 of a refused login: the client sees "permission
// denied", the cause is logged by the handler.
func denied(cause error) error {
	return &logical.CodedError{Status: 403, Msg: logical.ErrPermissionDenied.Error(), Err: cause}
}

func (b *backend) handleLogin(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := strings.ToLower(strings.TrimSpace(d.String("role")))
	if name == "" {
		return nil, logical.BadRequest("missing role")
	}
	tok := secret.NewString(strings.TrimSpace(d.String("jwt")))
	if tok.IsEmpty() {
		return nil, logical.BadRequest("missing jwt")
	}
	var r *roleEntry
	var err error
	if len(name) <= maxRoleNameLen {
		if r, err = loadRole(ctx, req.Storage, name); err != nil {
			return nil, err
		}
	}
	if r == nil {
		return nil, logical.BadRequest("invalid role name %q", truncate(name, 128))
	}
	a, err := b.login(ctx, req, r, tok)
	if err != nil {
		var coded *logical.CodedError
		if errors.As(err, &coded) && coded.Status == 403 {
			b.logger.Info("kubernetes login refused", "role", r.Name, "reason", coded.Error())
		}
		return nil, err
	}
	return &logical.Response{Auth: a}, nil
}

// login decides a login with role r (spec §6.1 steps 2 to 5).
func (b *backend) login(ctx context.Context, req *logical.Request, r *roleEntry, tok secret.String) (*logical.Auth, error) {
	if len(r.Token.BoundCIDRs) > 0 {
		addr := ""
		if req.Connection != nil {
			addr = req.Connection.RemoteAddr
		}
		if !framework.CIDRsContain(r.Token.BoundCIDRs, addr) {
			return nil, denied(errors.New("the client address is outside token_bound_cidrs"))
		}
	}
	cfg, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, logical.BadRequest("could not load backend configuration")
	}
	jws, err := jwks.ParseSigned(tok.Reveal(), nil)
	if err != nil {
		return nil, denied(err)
	}
	var c *claims
	if cfg.TokenValidation == validationJWKS {
		c, err = b.validateJWKS(ctx, cfg, r, jws)
	} else {
		c, err = b.validateLocal(cfg, r, jws)
	}
	if err != nil {
		return nil, denied(err)
	}
	sa := c.SA
	if !glob.MatchAny(r.BoundSANames, sa.Name) {
		return nil, logical.CodedErrorf(403, "%s", msgNameNotAuthorized)
	}
	if !glob.MatchAny(r.BoundSANamespaces, sa.Namespace) {
		return nil, logical.CodedErrorf(403, "%s", msgNamespaceNotAuthorized)
	}
	if cfg.TokenValidation != validationJWKS {
		rr, err := b.reviewFor(cfg, r, c, tok)
		if err != nil {
			return nil, denied(err)
		}
		if err := b.review(ctx, rr, sa); err != nil {
			return nil, denied(err)
		}
	}
	return loginAuth(r, sa), nil
}

// validateLocal is step 2 in tokenreview mode: the signature with
// pem_keys (when configured), the issuer (when checked), the role's
// audience, and the service account claims. Without pem_keys the payload
// is read unverified: the TokenReview of the same token decides.
func (b *backend) validateLocal(cfg *configEntry, r *roleEntry, jws *jose.JSONWebSignature) (*claims, error) {
	var payload []byte
	if len(cfg.PEMKeys) > 0 {
		keys, err := parsePEMKeys(cfg.PEMKeys)
		if err != nil {
			return nil, err
		}
		if payload, err = jwks.VerifyWithKeys(jws, keys); err != nil {
			return nil, fmt.Errorf("pem_keys: %w", err)
		}
	} else {
		payload = jws.UnsafePayloadWithoutVerification()
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	if !cfg.DisableISSValidation {
		want := cfg.Issuer
		if want == "" {
			want = legacyIssuer
		}
		if c.Issuer != want {
			return nil, errors.New("the JWT's iss is not the configured issuer")
		}
	}
	if r.Audience != "" && !slices.Contains(c.Audiences, r.Audience) {
		return nil, errors.New("the JWT's aud does not contain the role's audience")
	}
	return c, nil
}

// validateJWKS is step 2 in jwks mode: the signature with the issuer's
// key set, iss, exp, nbf, iat and the role's audience.
func (b *backend) validateJWKS(ctx context.Context, cfg *configEntry, r *roleEntry, jws *jose.JSONWebSignature) (*claims, error) {
	remote, err := b.keys.get(cfg, b.newRemote)
	if err != nil {
		return nil, err
	}
	payload, err := remote.Verify(ctx, jws)
	if err != nil {
		return nil, err
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	now := b.now()
	switch {
	case r.Audience == "":
		// Without a TokenReview nothing else limits a token to Vigil.
		return nil, errors.New("the role has no audience, which jwks mode requires")
	case c.Issuer != cfg.Issuer:
		return nil, errors.New("the JWT's iss is not the configured issuer")
	case c.Expiry.IsZero():
		return nil, errors.New("the JWT has no exp: only expiring (projected) tokens are accepted in jwks mode")
	case !now.Before(c.Expiry.Add(timeLeeway)):
		return nil, errors.New("the JWT has expired")
	case !c.NotBefore.IsZero() && now.Before(c.NotBefore.Add(-timeLeeway)):
		return nil, errors.New("the JWT is not valid yet (nbf)")
	case !c.IssuedAt.IsZero() && now.Before(c.IssuedAt.Add(-timeLeeway)):
		return nil, errors.New("the JWT was issued in the future (iat)")
	case r.Audience != "" && !slices.Contains(c.Audiences, r.Audience):
		return nil, errors.New("the JWT's aud does not contain the role's audience")
	}
	return c, nil
}

// reviewFor builds the TokenReview of step 4: the audiences are the
// role's, or else the JWT's own; the bearer is the reviewer JWT, or else
// the pod's own token, or else the client's JWT.
func (b *backend) reviewFor(cfg *configEntry, r *roleEntry, c *claims, tok secret.String) (reviewRequest, error) {
	rr := reviewRequest{host: cfg.KubernetesHost, caPEM: cfg.KubernetesCACert, token: tok, audiences: c.Audiences}
	if r.Audience != "" {
		rr.audiences = []string{r.Audience}
	}
	if cfg.TokenReviewerJWT != "" {
		rr.bearer = secret.NewString(cfg.TokenReviewerJWT)
	}
	if !cfg.DisableLocalCAJWT && (rr.caPEM == "" || rr.bearer.IsEmpty()) {
		ca, localTok, err := b.local.get()
		if err != nil {
			return reviewRequest{}, fmt.Errorf("read the pod's service-account files: %w", err)
		}
		if rr.caPEM == "" {
			rr.caPEM = strings.TrimSpace(ca)
		}
		if rr.bearer.IsEmpty() {
			rr.bearer = localTok
		}
	}
	if rr.bearer.IsEmpty() {
		rr.bearer = tok
	}
	return rr, nil
}

// loginAuth is the auth of a successful login of sa with role r.
func loginAuth(r *roleEntry, sa serviceAccount) *logical.Auth {
	meta := map[string]string{
		"role":                        r.Name,
		"service_account_name":        sa.Name,
		"service_account_namespace":   sa.Namespace,
		"service_account_uid":         sa.UID,
		"service_account_secret_name": sa.SecretName,
	}
	// The alias (the service account's identity entity) records what
	// stays the same across the account's pods; the token also names the
	// pod that logged in.
	aliasMeta := maps.Clone(meta)
	if sa.PodName != "" {
		meta["pod_name"] = sa.PodName
		meta["pod_uid"] = sa.PodUID
	}
	alias := sa.UID
	if r.AliasNameSource == aliasSourceName {
		alias = sa.Namespace + "/" + sa.Name
	}
	a := &logical.Auth{
		Metadata:     meta,
		Role:         r.Name,
		DisplayName:  sa.Namespace + "-" + sa.Name,
		Alias:        &logical.Alias{Name: alias, Metadata: aliasMeta},
		InternalData: map[string]any{internalRole: r.Name},
	}
	r.Token.Populate(a)
	return a
}

// renew serves the renewal of a token a login created: the role must still
// exist with the same policies; the token gets the role's current TTLs.
func (b *backend) renew(ctx context.Context, req *logical.Request) (*logical.Auth, error) {
	name, _ := req.Auth.InternalData[internalRole].(string)
	if name == "" {
		return nil, logical.BadRequest("the token was not created by a Kubernetes login of this mount")
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

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
