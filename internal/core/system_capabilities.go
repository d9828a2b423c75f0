package core

import (
	"context"
	"errors"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/token"
)

// capabilityPaths answer which capabilities a token has on paths: the
// caller's own (capabilities-self, allowed by the default policy), another
// token's, or the token behind an accessor.
func (s *systemBackend) capabilityPaths() []*framework.Path {
	paths := &framework.FieldSchema{Type: framework.TypeCommaStringSlice, Description: "paths to check"}
	legacyPath := &framework.FieldSchema{Type: framework.TypeCommaStringSlice, Description: "a path to check (legacy: use paths)"}
	update := func(f framework.OperationFunc) map[logical.Operation]framework.OperationHandler {
		return map[logical.Operation]framework.OperationHandler{logical.UpdateOperation: {Handler: f}}
	}
	return []*framework.Path{
		{
			Pattern: "capabilities-self",
			// The Go client sends the caller's own token as "token";
			// it is ignored here.
			Fields: map[string]*framework.FieldSchema{"paths": paths, "path": legacyPath, "token": {Type: framework.TypeString}},
			Operations: update(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
				te := callerOf(ctx)
				if te == nil {
					return nil, logical.ErrPermissionDenied
				}
				return s.capabilities(ctx, te, d)
			}),
			HelpSynopsis: "The caller's capabilities on paths.",
		},
		{
			Pattern: "capabilities",
			Fields:  map[string]*framework.FieldSchema{"paths": paths, "path": legacyPath, "token": {Type: framework.TypeString, Required: true}},
			Operations: update(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
				te, err := s.c.tokens.Lookup(ctx, secret.NewString(d.String("token")))
				if err != nil {
					return nil, tokenArgError(err)
				}
				return s.capabilities(ctx, te, d)
			}),
			HelpSynopsis: "A token's capabilities on paths.",
		},
		{
			Pattern: "capabilities-accessor",
			Fields:  map[string]*framework.FieldSchema{"paths": paths, "path": legacyPath, "accessor": {Type: framework.TypeString, Required: true}},
			Operations: update(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
				te, err := s.c.tokens.LookupAccessor(ctx, d.String("accessor"))
				if err != nil {
					return nil, tokenArgError(err)
				}
				return s.capabilities(ctx, te, d)
			}),
			HelpSynopsis: "The capabilities on paths of the token behind an accessor.",
		},
	}
}

// tokenArgError answers a token or accessor given as a parameter that
// does not name a valid token: 400, as Vault does, without echoing it.
func tokenArgError(err error) error {
	if errors.Is(err, token.ErrInvalid) {
		return logical.BadRequest("invalid token")
	}
	return err
}

// capabilities answers one key per requested path with the sorted
// capability names, and "capabilities" with those of the first path for
// older clients.
func (s *systemBackend) capabilities(ctx context.Context, te *token.Entry, d *framework.FieldData) (*logical.Response, error) {
	paths := d.StringSlice("paths")
	if len(paths) == 0 {
		paths = d.StringSlice("path")
	}
	if len(paths) == 0 {
		return nil, logical.BadRequest("missing paths")
	}
	acl, err := s.c.tokenACL(ctx, te)
	if err != nil {
		return nil, err
	}
	data := make(map[string]any, len(paths)+1)
	for _, p := range paths {
		data[p] = acl.Capabilities(p)
	}
	data["capabilities"] = data[paths[0]]
	return &logical.Response{Data: data}, nil
}
