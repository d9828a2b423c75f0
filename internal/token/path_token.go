package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// The lookup, renew, revoke, accessors and tidy paths.

func tokenField(what string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeString, Sensitive: true, Description: what}
}

func accessorField(what string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeString, Description: what}
}

func incrementField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeDurationSecond,
		Description: "The TTL to renew the token for, counted from now; 0 means its original TTL."}
}

func updateOp(h framework.OperationFunc, summary string) map[logical.Operation]framework.OperationHandler {
	return map[logical.Operation]framework.OperationHandler{logical.UpdateOperation: {Handler: h, Summary: summary}}
}

var (
	errMissingToken    = logical.BadRequest("missing token ID")
	errMissingAccessor = logical.BadRequest("missing accessor")
	errBadAccessor     = logical.BadRequest("invalid accessor")
	errBadToken        = &logical.CodedError{Status: 403, Msg: "bad token"}
)

func (b *backend) pathLookup() *framework.Path {
	return &framework.Path{
		Pattern: "lookup",
		Fields:  map[string]*framework.FieldSchema{"token": tokenField("The token to look up; the caller's when empty.")},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleLookup, Summary: "Look up a token."},
			logical.UpdateOperation: {Handler: b.handleLookup, Summary: "Look up a token."},
		},
		HelpSynopsis: "Look up a token's properties.",
	}
}

func (b *backend) handleLookup(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	tok := d.String("token")
	if tok == "" {
		return b.lookupSelf(ctx)
	}
	e, err := b.st.Lookup(ctx, secret.NewString(tok))
	if errors.Is(err, ErrInvalid) {
		return nil, errBadToken
	}
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: lookupData(e, tok, b.st.now())}, nil
}

func (b *backend) pathLookupSelf() *framework.Path {
	h := func(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
		return b.lookupSelf(ctx)
	}
	return &framework.Path{
		Pattern: "lookup-self",
		Fields:  map[string]*framework.FieldSchema{"token": tokenField("Ignored: the caller's token is looked up.")},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: h, Summary: "Look up the caller's token."},
			logical.UpdateOperation: {Handler: h, Summary: "Look up the caller's token."},
		},
		HelpSynopsis: "Look up the calling token's properties.",
	}
}

func (b *backend) lookupSelf(ctx context.Context) (*logical.Response, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: lookupData(c.Entry, c.Token.Reveal(), b.st.now())}, nil
}

func (b *backend) pathLookupAccessor() *framework.Path {
	return &framework.Path{
		Pattern: "lookup-accessor",
		Fields:  map[string]*framework.FieldSchema{"accessor": accessorField("The accessor of the token to look up.")},
		Operations: updateOp(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			e, err := b.byAccessor(ctx, d)
			if err != nil {
				return nil, err
			}
			return &logical.Response{Data: lookupData(e, "", b.st.now())}, nil
		}, "Look up a token by its accessor."),
		HelpSynopsis: "Look up a token's properties by its accessor; the token itself is not shown.",
	}
}

// byAccessor returns the usable token behind the request's accessor.
func (b *backend) byAccessor(ctx context.Context, d *framework.FieldData) (*Entry, error) {
	a := d.String("accessor")
	if a == "" {
		return nil, errMissingAccessor
	}
	e, err := b.st.LookupAccessor(ctx, a)
	if errors.Is(err, ErrInvalid) {
		return nil, errBadAccessor
	}
	return e, err
}

func (b *backend) pathRenew() *framework.Path {
	return &framework.Path{
		Pattern: "renew",
		Fields: map[string]*framework.FieldSchema{
			"token":     tokenField("The token to renew."),
			"increment": incrementField(),
		},
		Operations: updateOp(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			tok := d.String("token")
			if tok == "" {
				return nil, errMissingToken
			}
			e, err := b.st.Lookup(ctx, secret.NewString(tok))
			if errors.Is(err, ErrInvalid) {
				return nil, logical.BadRequest("token not found")
			}
			if err != nil {
				return nil, err
			}
			return b.renew(ctx, e, tok, d.Duration("increment"))
		}, "Renew a token."),
		HelpSynopsis: "Renew a token, extending its TTL from now.",
	}
}

func (b *backend) pathRenewSelf() *framework.Path {
	return &framework.Path{
		Pattern: "renew-self",
		Fields: map[string]*framework.FieldSchema{
			"token":     tokenField("Ignored: the caller's token is renewed."),
			"increment": incrementField(),
		},
		Operations: updateOp(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			c, err := caller(ctx)
			if err != nil {
				return nil, err
			}
			return b.renew(ctx, c.Entry, c.Token.Reveal(), d.Duration("increment"))
		}, "Renew the caller's token."),
		HelpSynopsis: "Renew the calling token.",
	}
}

func (b *backend) pathRenewAccessor() *framework.Path {
	return &framework.Path{
		Pattern: "renew-accessor",
		Fields: map[string]*framework.FieldSchema{
			"accessor":  accessorField("The accessor of the token to renew."),
			"increment": incrementField(),
		},
		Operations: updateOp(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			e, err := b.byAccessor(ctx, d)
			if err != nil {
				return nil, err
			}
			return b.renew(ctx, e, "", d.Duration("increment"))
		}, "Renew a token by its accessor."),
		HelpSynopsis: "Renew a token by its accessor; the answer does not show the token.",
	}
}

// renew renews e and answers with its auth object; tok is shown as
// client_token.
func (b *backend) renew(ctx context.Context, e *Entry, tok string, increment time.Duration) (*logical.Response, error) {
	next, warnings, err := b.st.Renew(ctx, e, increment, b.defaults())
	switch {
	case errors.Is(err, ErrBatch):
		return nil, logical.BadRequest("batch tokens cannot be renewed")
	case errors.Is(err, ErrNotRenewable):
		return nil, logical.BadRequest("lease is not renewable")
	case errors.Is(err, ErrPastMaxTTL):
		return nil, logical.BadRequest("past the max TTL, cannot renew")
	case errors.Is(err, ErrInvalid):
		return nil, logical.BadRequest("token not found")
	case err != nil:
		return nil, err
	}
	return &logical.Response{Auth: authFor(next, tok, b.st.now()), Warnings: warnings}, nil
}

func (b *backend) pathRevoke() *framework.Path {
	return &framework.Path{
		Pattern: "revoke",
		Fields:  map[string]*framework.FieldSchema{"token": tokenField("The token to revoke.")},
		Operations: updateOp(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			tok := d.String("token")
			if tok == "" {
				return nil, errMissingToken
			}
			s := secret.NewString(tok)
			if IsBatchToken(s) {
				if _, err := b.st.Lookup(ctx, s); err == nil {
					return nil, logical.BadRequest("batch tokens cannot be revoked")
				}
				return nil, nil
			}
			// Expired tokens are revoked too: their leases go with them.
			return nil, b.st.Revoke(ctx, s)
		}, "Revoke a token and its descendants."),
		HelpSynopsis: "Revoke a token, all its descendants and their leases.",
	}
}

func (b *backend) pathRevokeSelf() *framework.Path {
	return &framework.Path{
		Pattern: "revoke-self",
		Operations: updateOp(func(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
			c, err := caller(ctx)
			if err != nil {
				return nil, err
			}
			if c.Entry.IsBatch() {
				return nil, logical.BadRequest("batch tokens cannot be revoked")
			}
			return nil, b.st.RevokeTree(ctx, c.Entry.HashedID)
		}, "Revoke the caller's token and its descendants."),
		HelpSynopsis: "Revoke the calling token, all its descendants and their leases.",
	}
}

func (b *backend) pathRevokeAccessor() *framework.Path {
	return &framework.Path{
		Pattern: "revoke-accessor",
		Fields:  map[string]*framework.FieldSchema{"accessor": accessorField("The accessor of the token to revoke.")},
		Operations: updateOp(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			a := d.String("accessor")
			if a == "" {
				return nil, errMissingAccessor
			}
			hd, err := b.st.accessorTarget(ctx, a)
			if errors.Is(err, ErrInvalid) {
				return &logical.Response{Warnings: []string{"No token found with this accessor"}}, nil
			}
			if err != nil {
				return nil, err
			}
			return nil, b.st.revokeTree(ctx, hd)
		}, "Revoke a token and its descendants by its accessor."),
		HelpSynopsis: "Revoke a token, all its descendants and their leases, by the token's accessor.",
	}
}

func (b *backend) pathRevokeOrphan() *framework.Path {
	return &framework.Path{
		Pattern: "revoke-orphan",
		Fields:  map[string]*framework.FieldSchema{"token": tokenField("The token to revoke.")},
		Operations: updateOp(func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			c, err := caller(ctx)
			if err != nil {
				return nil, err
			}
			if !isSudo(c, fullPath(req)) {
				return nil, logical.BadRequest("root or sudo privileges required to revoke and orphan")
			}
			tok := d.String("token")
			if tok == "" {
				return nil, errMissingToken
			}
			e, err := b.st.Lookup(ctx, secret.NewString(tok))
			if errors.Is(err, ErrInvalid) {
				return nil, logical.BadRequest("token to revoke not found")
			}
			if err != nil {
				return nil, err
			}
			if e.IsBatch() {
				return nil, logical.BadRequest("batch tokens cannot be revoked")
			}
			return nil, b.st.RevokeOrphan(ctx, e.HashedID)
		}, "Revoke a token alone; its children become orphans (sudo)."),
		HelpSynopsis: "Revoke a token and its leases but not its children, which become orphans.",
	}
}

func (b *backend) pathAccessors() *framework.Path {
	return &framework.Path{
		Pattern: "accessors/?",
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: {Handler: func(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
				keys, err := b.st.ListAccessors(ctx)
				if err != nil {
					return nil, err
				}
				if len(keys) == 0 {
					return nil, logical.ErrNotFound
				}
				return &logical.Response{Data: map[string]any{"keys": keys}}, nil
			}, Summary: "List the accessors of every token (sudo)."},
		},
		HelpSynopsis: "List token accessors.",
	}
}

func (b *backend) pathTidy() *framework.Path {
	return &framework.Path{
		Pattern: "tidy",
		Operations: updateOp(func(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
			stats, err := b.st.Tidy(ctx)
			if errors.Is(err, ErrTidyRunning) {
				return &logical.Response{Warnings: []string{"Tidy operation already in progress."}}, nil
			}
			if err != nil {
				b.cfg.Logger.Error("token tidy failed", "error", err)
				return nil, fmt.Errorf("token: tidy: %w", err)
			}
			return &logical.Response{
				Data: map[string]any{
					"revoked_tokens":        stats.Revoked,
					"orphaned_tokens":       stats.Orphaned,
					"removed_index_entries": stats.IndexEntries,
				},
				Warnings: []string{"Tidy operation successfully completed."},
			}, nil
		}, "Remove expired tokens and stale index entries."),
		HelpSynopsis: "Revoke expired tokens and remove index entries that name tokens that no longer exist.",
	}
}
