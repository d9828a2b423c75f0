package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/policy"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/token"
)

// Response wrapping (spec §11): a request that asks for it (the
// X-Vault-Wrap-TTL header, or a policy's min_wrapping_ttl) gets, instead
// of its response, a single-use wrapping token that lives for the wrap
// TTL; sys/wrapping/unwrap trades the token for the response, once. The
// response is kept as the client would have received it (its rendered
// JSON, which the HTTP layer provides), behind the barrier under the
// wrapping token's hashed id, and deleted when the token is unwrapped,
// expires or is revoked.

// wrappingView holds the wrapped responses, by the wrapping token's
// hashed id.
const wrappingView = "core/wrapping/"

// wrappingTokenPath is the creation path of every wrapping token (its
// lease lives under it); the path of the wrapped request is kept with
// the response.
const wrappingTokenPath = "sys/wrapping/wrap"

// errBadWrappingToken is the answer to a token that is not, or no
// longer, a wrapping token: Vault's words, a 400.
var errBadWrappingToken = logical.BadRequest("wrapping token is not valid or does not exist")

// WrapInfo describes a wrapping token, returned in place of a wrapped
// response.
type WrapInfo struct {
	// Token is the wrapping token: a secret.
	Token    secret.String
	Accessor string
	TTL      time.Duration
	// CreationTime is when the response was wrapped; CreationPath the
	// path of the request whose response it is.
	CreationTime time.Time
	CreationPath string
	// WrappedAccessor is the accessor of the token the wrapped response
	// carries (a login, a token creation), "" otherwise.
	WrappedAccessor string
}

// wrapped is a stored wrapped response.
type wrapped struct {
	// Body is the response as the client would have received it.
	Body         []byte    `json:"body"`
	CreationPath string    `json:"creation_path"`
	CreationTime time.Time `json:"creation_time"`
	TTL          int64     `json:"ttl"` // seconds
}

// wrapOverride is what sys/wrapping/wrap and rewrap tell the pipeline
// about wrapping their response (through the context): wrap it with TTL,
// under CreationPath when set.
type wrapOverride struct {
	ttl          time.Duration
	creationPath string
}

type wrapKey struct{}

// overrideOf returns the request's wrap override, nil outside sys/.
func overrideOf(ctx context.Context) *wrapOverride {
	o, _ := ctx.Value(wrapKey{}).(*wrapOverride)
	return o
}

// wrapsResponse reports whether resp renders as a JSON body that
// wrapping can replace: not an empty 204, not an error status, not a raw
// body other than JSON (an unwrapped response is wrapped again).
func wrapsResponse(resp *logical.Response) bool {
	if resp.StatusCode != 0 {
		return false
	}
	if resp.Raw != nil {
		return resp.Raw.ContentType == "application/json"
	}
	return resp.Data != nil || resp.Secret != nil || resp.Auth != nil || len(resp.Warnings) > 0
}

// wrapResult replaces res's response with a wrapping token: the response,
// rendered by render, is stored for the token. creationPath is the path
// of the request.
func (c *Core) wrapResult(ctx context.Context, res *Result, render WrapRenderer, ttl time.Duration, creationPath string) error {
	if render == nil {
		return errors.New("core: response wrapping asked for without a renderer")
	}
	body, err := render.RenderWrapped(res)
	if err != nil {
		return err
	}
	defer clear(body)
	info, err := c.wrap(ctx, body, ttl, creationPath)
	if err != nil {
		return err
	}
	if a := res.Response.Auth; a != nil {
		info.WrappedAccessor = a.Accessor
	}
	res.Wrap = info
	return nil
}

// wrap stores body for a new wrapping token.
func (c *Core) wrap(ctx context.Context, body []byte, ttl time.Duration, creationPath string) (*WrapInfo, error) {
	if ttl <= 0 {
		return nil, logical.BadRequest("a wrap TTL must be given to wrap a response (X-Vault-Wrap-TTL)")
	}
	if maxTTL := c.cfg.MaxLeaseTTL; maxTTL > 0 && ttl > maxTTL {
		ttl = maxTTL
	}
	te := &token.Entry{
		Policies:       []string{policy.ResponseWrappingName},
		Path:           wrappingTokenPath,
		DisplayName:    "response-wrapping",
		TTL:            ttl,
		ExplicitMaxTTL: ttl,
		NumUses:        1,
	}
	tok, err := c.tokens.Create(ctx, te)
	if err != nil {
		return nil, c.storageError(err)
	}
	w := wrapped{Body: body, CreationPath: creationPath, CreationTime: te.CreationTime, TTL: int64(ttl / time.Second)}
	if err := c.putJSON(ctx, wrappingView+te.HashedID, w); err != nil {
		if rerr := c.tokens.RevokeTree(context.WithoutCancel(ctx), te.HashedID); rerr != nil {
			c.log.Warn("could not revoke a wrapping token whose response was not stored", "error", rerr)
		}
		return nil, err
	}
	return &WrapInfo{Token: tok, Accessor: te.Accessor, TTL: ttl, CreationTime: te.CreationTime, CreationPath: creationPath}, nil
}

// isWrappingToken reports whether te is a wrapping token.
func isWrappingToken(te *token.Entry) bool {
	return te != nil && te.Path == wrappingTokenPath && slices.Equal(te.Policies, []string{policy.ResponseWrappingName})
}

// loadWrapped reads the response stored for the wrapping token te.
func (c *Core) loadWrapped(ctx context.Context, te *token.Entry) (*wrapped, error) {
	raw, err := c.barrier.Get(ctx, wrappingView+te.HashedID)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, errBadWrappingToken
	}
	if err != nil {
		return nil, c.storageError(err)
	}
	defer clear(raw)
	var w wrapped
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("core: decode wrapped response: %w", err)
	}
	return &w, nil
}

// popWrapped reads and deletes the response stored for the wrapping token
// te, whose one use the request being served took.
func (c *Core) popWrapped(ctx context.Context, te *token.Entry) (*wrapped, error) {
	w, err := c.loadWrapped(ctx, te)
	if err != nil {
		return nil, err
	}
	if err := c.forgetWrapped(ctx, te.HashedID); err != nil {
		return nil, err
	}
	return w, nil
}

// forgetWrapped deletes the response stored for a wrapping token (its
// hashed id); deleting one that is gone is no error.
func (c *Core) forgetWrapped(ctx context.Context, hashedID string) error {
	err := c.barrier.Delete(ctx, wrappingView+hashedID)
	if errors.Is(err, logical.ErrNotFound) {
		return nil
	}
	return err
}

// wrappingTokenOf returns the entry of tok if it is a usable wrapping
// token, without using it.
func (c *Core) wrappingTokenOf(ctx context.Context, tok string) (*token.Entry, error) {
	te, err := c.tokens.Lookup(ctx, secret.NewString(tok))
	if errors.Is(err, token.ErrInvalid) {
		return nil, errBadWrappingToken
	}
	if err != nil {
		return nil, c.storageError(err)
	}
	if !isWrappingToken(te) {
		return nil, errBadWrappingToken
	}
	return te, nil
}

// takeWrapped consumes the wrapping token tok (its only use, so that two
// requests cannot both unwrap it) and returns its response, deleted from
// storage with the token.
func (c *Core) takeWrapped(ctx context.Context, tok string) (*wrapped, error) {
	te, err := c.wrappingTokenOf(ctx, tok)
	if err != nil {
		return nil, err
	}
	if te, err = c.tokens.UseToken(ctx, te); errors.Is(err, token.ErrInvalid) {
		return nil, errBadWrappingToken
	} else if err != nil {
		return nil, c.storageError(err)
	}
	w, err := c.loadWrapped(ctx, te)
	if rerr := c.tokens.RevokeTree(context.WithoutCancel(ctx), te.HashedID); rerr != nil {
		c.log.Warn("could not revoke an unwrapped wrapping token", "error", rerr)
	}
	return w, err
}

// readCubbyholeResponse answers a wrapping token's read of
// cubbyhole/response, the way clients unwrapped before sys/wrapping/unwrap
// existed (Vault kept wrapped responses there): {"response": the wrapped
// response as a JSON string}. The request used the token's only use, as an
// unwrap does. Anything else a wrapping token asks of its cubbyhole finds
// it empty.
func (c *Core) readCubbyholeResponse(ctx context.Context, te *token.Entry, lreq *logical.Request) (*logical.Response, error) {
	if lreq.Operation != logical.ReadOperation || lreq.Path != "response" {
		return nil, logical.ErrNotFound
	}
	w, err := c.popWrapped(ctx, te)
	if err != nil {
		return nil, err
	}
	body := string(w.Body)
	clear(w.Body)
	return &logical.Response{Data: map[string]any{"response": body}}, nil
}

// wrappingPaths serve sys/wrapping: lookup (without a token), unwrap,
// wrap and rewrap.
func (s *systemBackend) wrappingPaths() []*framework.Path {
	tokenField := map[string]*framework.FieldSchema{"token": {Type: framework.TypeString, Description: "the wrapping token"}}
	return []*framework.Path{
		{
			Pattern: "wrapping/lookup",
			Fields:  tokenField,
			// POST only, as in Vault: a token in a query string would
			// land in access logs.
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: sysOp(s.wrappingLookup, "Look up a wrapping token's properties."),
			},
			HelpSynopsis: "The creation path, time and TTL of a wrapping token, without using it.",
		},
		{
			Pattern: "wrapping/unwrap",
			Fields:  tokenField,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: sysOp(s.wrappingUnwrap, "Unwrap a wrapped response."),
			},
			HelpSynopsis: "Return the response a wrapping token holds, once: the token given, or the caller's own.",
		},
		{
			Pattern: "wrapping/wrap",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: sysOp(s.wrappingWrap, "Wrap the request's data."),
			},
			HelpSynopsis: "Wrap arbitrary data in a wrapping token (the wrap TTL is required).",
		},
		{
			Pattern: "wrapping/rewrap",
			Fields:  tokenField,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: sysOp(s.wrappingRewrap, "Move a wrapped response to a new wrapping token."),
			},
			HelpSynopsis: "Move a wrapped response to a new wrapping token with the same TTL, revoking the old one.",
		},
	}
}

func (s *systemBackend) wrappingLookup(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	tok := d.String("token")
	if tok == "" {
		return nil, logical.BadRequest("missing token")
	}
	te, err := s.c.wrappingTokenOf(ctx, tok)
	if err != nil {
		return nil, err
	}
	w, err := s.c.loadWrapped(ctx, te)
	if err != nil {
		return nil, err
	}
	clear(w.Body)
	return &logical.Response{Data: map[string]any{
		"creation_path": w.CreationPath,
		"creation_time": w.CreationTime.UTC().Format(time.RFC3339Nano),
		"creation_ttl":  w.TTL,
	}}, nil
}

// wrappingUnwrap returns the wrapped response as it was rendered; the
// audit log records its contents, HMAC'd, as the response's data.
func (s *systemBackend) wrappingUnwrap(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	var w *wrapped
	var err error
	if tok := d.String("token"); tok != "" {
		w, err = s.c.takeWrapped(ctx, tok)
	} else {
		// The caller's token is the wrapping token: the pipeline used
		// its only use, and revokes it once this request is served.
		te := callerOf(ctx)
		if !isWrappingToken(te) {
			return nil, errBadWrappingToken
		}
		w, err = s.c.popWrapped(ctx, te)
	}
	if err != nil {
		return nil, err
	}
	var audited map[string]any
	if err := json.Unmarshal(w.Body, &audited); err != nil {
		return nil, fmt.Errorf("core: decode wrapped response: %w", err)
	}
	return &logical.Response{
		Raw:  &logical.RawBody{ContentType: "application/json", Body: w.Body},
		Data: audited,
	}, nil
}

func (s *systemBackend) wrappingWrap(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	o := overrideOf(ctx)
	if o == nil || o.ttl <= 0 {
		return nil, logical.BadRequest("a wrap TTL must be given to wrap data (X-Vault-Wrap-TTL)")
	}
	if len(req.Data) == 0 {
		return nil, logical.BadRequest("no data to wrap")
	}
	return &logical.Response{Data: req.Data}, nil
}

func (s *systemBackend) wrappingRewrap(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	tok := d.String("token")
	if tok == "" {
		return nil, logical.BadRequest("missing token")
	}
	w, err := s.c.takeWrapped(ctx, tok)
	if err != nil {
		return nil, err
	}
	o := overrideOf(ctx)
	if o == nil {
		return nil, errors.New("core: rewrap outside the pipeline")
	}
	o.ttl, o.creationPath = time.Duration(w.TTL)*time.Second, w.CreationPath
	return &logical.Response{Raw: &logical.RawBody{ContentType: "application/json", Body: w.Body}}, nil
}
