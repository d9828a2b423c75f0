package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// TokenAuth is the token auth method (auth/token/...): creating, looking
// up, renewing and revoking tokens, and asking what a token may do.
//
// Tokens travel only in request bodies (and in the X-Vault-Token header),
// never in URLs, so they do not end up in proxy or access logs; the errors
// these methods return never contain them.
type TokenAuth struct {
	c *Client
}

// TokenAuth returns the client's token auth API. ([Client.Token] is the
// token the client sends.)
func (c *Client) TokenAuth() *TokenAuth { return &TokenAuth{c: c} }

// TokenCreateRequest is the body of auth/token/create, create-orphan and
// create/<role>. Zero fields are not sent, so the server applies its
// defaults (the caller's policies, the mount's TTL, renewable); Renewable
// is a pointer so that false can be sent.
type TokenCreateRequest struct {
	// ID is the token itself instead of a generated one (root or sudo
	// only). It is a secret.
	ID string `json:"id,omitempty"`
	// Policies are the token's policies; empty means the caller's.
	Policies []string `json:"policies,omitempty"`
	// Metadata is kept with the token and shown in lookups and audit logs.
	Metadata map[string]string `json:"meta,omitempty"`
	// NoParent creates an orphan token through auth/token/create (root or
	// sudo only); [TokenAuth.CreateOrphan] needs no sudo.
	NoParent bool `json:"no_parent,omitempty"`
	// NoDefaultPolicy leaves out the "default" policy.
	NoDefaultPolicy bool `json:"no_default_policy,omitempty"`
	// Renewable, when not nil, says whether the token may be renewed
	// (the server's default is true).
	Renewable *bool `json:"renewable,omitempty"`
	// TTL, ExplicitMaxTTL and Period are durations ("1h", "90m", "3600").
	TTL            string `json:"ttl,omitempty"`
	ExplicitMaxTTL string `json:"explicit_max_ttl,omitempty"`
	Period         string `json:"period,omitempty"`
	// DisplayName names the token; the server stores "token-<name>".
	DisplayName string `json:"display_name,omitempty"`
	// NumUses limits how many requests the token may make; 0 is no limit.
	NumUses int `json:"num_uses,omitempty"`
	// Type is "service" or "batch"; empty means the server's default.
	Type string `json:"type,omitempty"`
	// EntityAlias attaches the token to an entity alias (with a role only).
	EntityAlias string `json:"entity_alias,omitempty"`
}

// Errors for arguments that are refused before any request is sent.
var (
	errEmptyToken    = errors.New("api: empty token")
	errEmptyAccessor = errors.New("api: empty accessor")
	errNoPaths       = errors.New("api: no paths to check")
)

// Create creates a token, a child of the caller's token (POST
// auth/token/create). The answer's Auth holds the new token.
func (t *TokenAuth) Create(ctx context.Context, req TokenCreateRequest) (*Secret, error) {
	return t.write(ctx, http.MethodPost, "auth/token/create", req)
}

// CreateOrphan creates a token without a parent (POST
// auth/token/create-orphan), which needs only update on that path rather
// than the sudo that NoParent needs.
func (t *TokenAuth) CreateOrphan(ctx context.Context, req TokenCreateRequest) (*Secret, error) {
	return t.write(ctx, http.MethodPost, "auth/token/create-orphan", req)
}

// CreateWithRole creates a token against the token role named role (POST
// auth/token/create/<role>); the role may override fields of req.
func (t *TokenAuth) CreateWithRole(ctx context.Context, role string, req TokenCreateRequest) (*Secret, error) {
	switch {
	case role == "":
		return nil, errors.New("api: empty token role name")
	case strings.Contains(role, "/"), role == ".", role == "..":
		// Do would keep a '/' as a separator and the server cleans dot
		// segments: the request would reach another path.
		return nil, fmt.Errorf("api: invalid token role name %q", role)
	}
	return t.write(ctx, http.MethodPost, "auth/token/create/"+role, req)
}

// Lookup returns the properties of token (POST auth/token/lookup) in the
// answer's Data. A token that does not exist, has expired or was revoked
// gives a 403 "bad token" [*ResponseError].
func (t *TokenAuth) Lookup(ctx context.Context, token string) (*Secret, error) {
	if token == "" {
		// The server would look up the caller's own token instead.
		return nil, errEmptyToken
	}
	return t.write(ctx, http.MethodPost, "auth/token/lookup", map[string]string{"token": token})
}

// LookupSelf returns the properties of the client's own token (GET
// auth/token/lookup-self), which the default policy allows.
func (t *TokenAuth) LookupSelf(ctx context.Context) (*Secret, error) {
	return t.write(ctx, http.MethodGet, "auth/token/lookup-self", nil)
}

// LookupAccessor returns the properties of the token behind accessor
// (POST auth/token/lookup-accessor); Data["id"] is empty.
func (t *TokenAuth) LookupAccessor(ctx context.Context, accessor string) (*Secret, error) {
	if accessor == "" {
		return nil, errEmptyAccessor
	}
	return t.write(ctx, http.MethodPost, "auth/token/lookup-accessor", map[string]string{"accessor": accessor})
}

// incrementSeconds is an increment as the whole seconds the server reads.
func incrementSeconds(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

// Renew renews token (PUT auth/token/renew) for increment from now, or
// for its original TTL when increment is 0, within its maximum TTL. The
// answer's Auth holds the new lease duration.
func (t *TokenAuth) Renew(ctx context.Context, token string, increment time.Duration) (*Secret, error) {
	if token == "" {
		return nil, errEmptyToken
	}
	return t.write(ctx, http.MethodPut, "auth/token/renew", map[string]any{"token": token, "increment": incrementSeconds(increment)})
}

// RenewSelf renews the client's own token (PUT auth/token/renew-self).
func (t *TokenAuth) RenewSelf(ctx context.Context, increment time.Duration) (*Secret, error) {
	return t.write(ctx, http.MethodPut, "auth/token/renew-self", map[string]any{"increment": incrementSeconds(increment)})
}

// RenewAccessor renews the token behind accessor (POST
// auth/token/renew-accessor); the answer's Auth has no client token.
func (t *TokenAuth) RenewAccessor(ctx context.Context, accessor string, increment time.Duration) (*Secret, error) {
	if accessor == "" {
		return nil, errEmptyAccessor
	}
	return t.write(ctx, http.MethodPost, "auth/token/renew-accessor", map[string]any{"accessor": accessor, "increment": incrementSeconds(increment)})
}

// Revoke revokes token, every token created under it and all their leases
// (PUT auth/token/revoke). Revoking a token that does not exist succeeds.
func (t *TokenAuth) Revoke(ctx context.Context, token string) error {
	if token == "" {
		return errEmptyToken
	}
	_, err := t.c.Do(ctx, http.MethodPut, "auth/token/revoke", nil, map[string]string{"token": token})
	return err
}

// RevokeOrphan revokes token and its leases but not its children, which
// become orphans (PUT auth/token/revoke-orphan; root or sudo only).
func (t *TokenAuth) RevokeOrphan(ctx context.Context, token string) error {
	if token == "" {
		return errEmptyToken
	}
	_, err := t.c.Do(ctx, http.MethodPut, "auth/token/revoke-orphan", nil, map[string]string{"token": token})
	return err
}

// RevokeAccessor revokes the token behind accessor and its children
// (POST auth/token/revoke-accessor). An unknown accessor is not an error
// (the server only warns).
func (t *TokenAuth) RevokeAccessor(ctx context.Context, accessor string) error {
	if accessor == "" {
		return errEmptyAccessor
	}
	_, err := t.c.Do(ctx, http.MethodPost, "auth/token/revoke-accessor", nil, map[string]string{"accessor": accessor})
	return err
}

// RevokeSelf revokes the client's own token and its children (PUT
// auth/token/revoke-self). The client keeps sending the revoked token
// until [Client.SetToken] changes it.
func (t *TokenAuth) RevokeSelf(ctx context.Context) error {
	_, err := t.c.Do(ctx, http.MethodPut, "auth/token/revoke-self", nil, nil)
	return err
}

// Capabilities returns the capabilities token has on each of paths (POST
// sys/capabilities), keyed by path: sorted names such as "read" and
// "update", ["deny"] for none and ["root"] for a root token. It needs
// update on sys/capabilities.
func (t *TokenAuth) Capabilities(ctx context.Context, token string, paths []string) (map[string][]string, error) {
	if token == "" {
		return nil, errEmptyToken
	}
	return t.capabilities(ctx, "sys/capabilities", map[string]any{"token": token}, paths)
}

// CapabilitiesSelf returns the capabilities of the client's own token on
// each of paths (POST sys/capabilities-self), which the default policy
// allows.
func (t *TokenAuth) CapabilitiesSelf(ctx context.Context, paths []string) (map[string][]string, error) {
	return t.capabilities(ctx, "sys/capabilities-self", map[string]any{}, paths)
}

// CapabilitiesAccessor returns the capabilities of the token behind
// accessor on each of paths (POST sys/capabilities-accessor).
func (t *TokenAuth) CapabilitiesAccessor(ctx context.Context, accessor string, paths []string) (map[string][]string, error) {
	if accessor == "" {
		return nil, errEmptyAccessor
	}
	return t.capabilities(ctx, "sys/capabilities-accessor", map[string]any{"accessor": accessor}, paths)
}

// capabilities sends paths with body and decodes the answer: one key per
// path, plus "capabilities" (those of the first path), which servers
// that predate "paths" answer alone.
func (t *TokenAuth) capabilities(ctx context.Context, endpoint string, body map[string]any, paths []string) (map[string][]string, error) {
	if len(paths) == 0 {
		return nil, errNoPaths
	}
	for _, p := range paths {
		if p == "" {
			return nil, errors.New("api: empty path to check")
		}
	}
	body["paths"] = paths
	resp, err := t.c.Do(ctx, http.MethodPost, endpoint, nil, body)
	if err != nil {
		return nil, err
	}
	sec, err := resp.Secret()
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("%w: POST %s", errNoData, endpoint)
	}
	out := make(map[string][]string, len(paths))
	for _, p := range paths {
		v, ok := sec.Data[p]
		if !ok && len(paths) == 1 {
			v, ok = sec.Data["capabilities"]
		}
		if !ok {
			return nil, fmt.Errorf("api: POST %s: no capabilities for %q in the response", endpoint, p)
		}
		var caps []string
		if err := decodeData(v, &caps); err != nil {
			return nil, fmt.Errorf("api: POST %s: capabilities for %q: %w", endpoint, p, err)
		}
		if caps == nil {
			caps = []string{}
		}
		out[p] = caps
	}
	return out, nil
}

// write sends body to path and decodes the envelope; a 204 gives (nil,
// nil).
func (t *TokenAuth) write(ctx context.Context, method, path string, body any) (*Secret, error) {
	resp, err := t.c.Do(ctx, method, path, nil, body)
	if err != nil {
		return nil, err
	}
	return resp.Secret()
}
