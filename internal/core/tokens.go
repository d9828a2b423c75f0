package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/identity"
	"github.com/vigil-secrets/vigil/internal/lease"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
	"github.com/vigil-secrets/vigil/internal/token"
)

// typeToken is the token store's mount type, always mounted at
// auth/token/.
const typeToken = "token"

// tokenMountPath is where the token store is served.
const tokenMountPath = authPrefix + "token/"

// tokenHooks connect the token store to the expiration manager and to the
// auth mounts: they satisfy token.LeaseHooks and token.AuthRenewer. The
// store calls them with a token's lock held, so they never call back into
// the store's revoking, renewing or creating methods.
type tokenHooks struct{ c *Core }

var (
	_ token.LeaseHooks     = tokenHooks{}
	_ token.LeaseCommitter = tokenHooks{}
	_ token.AuthRenewer    = tokenHooks{}
)

// TokenCreated registers the lease of a token that expires: the
// expiration manager revokes the token (and everything it owns) on time.
// The store calls it only when its storage is not shared with the
// manager's (CommitToken is the usual path).
func (h tokenHooks) TokenCreated(ctx context.Context, e *token.Entry) error {
	if e.ExpireTime.IsZero() {
		return nil // root and other non-expiring tokens own leases but have none
	}
	if h.c.leases == nil {
		return errNoLeases
	}
	_, err := h.c.leases.Register(ctx, h.tokenLease(e, false))
	return err
}

var errNoLeases = errors.New("core: no expiration manager to give an expiring token its lease")

// tokenLease is the registration of the lease of the expiring token e.
func (h tokenHooks) tokenLease(e *token.Entry, newID bool) lease.RegisterRequest {
	ttl := e.ExpireTime.Sub(h.c.clk.Now())
	if ttl <= 0 {
		ttl = time.Nanosecond
	}
	return lease.RegisterRequest{
		Kind:      lease.KindToken,
		ID:        e.LeaseID(),
		Path:      e.Path,
		TTL:       ttl,
		Renewable: e.Renewable,
		TokenKey:  e.HashedID,
		NewID:     newID,
	}
}

// CommitToken stores a new expiring token's records, ops, and its lease
// in one barrier transaction, so that a login or a token creation waits
// for one storage commit, not two, and a crash can leave neither a token
// without its lease nor a lease without its token. The lease's records
// come first, for storage without transactions: a lease whose token is
// missing is revoked harmlessly, a token whose lease is missing would
// never be revoked.
//
// The store calls it only for a token it generated at random: its lease
// id is new, and the manager need not read storage to check it is free.
func (h tokenHooks) CommitToken(ctx context.Context, e *token.Entry, ops []logical.StorageOp) error {
	if h.c.leases == nil {
		return errNoLeases
	}
	p, err := h.c.leases.Prepare(ctx, h.tokenLease(e, true))
	if err != nil {
		return err
	}
	all := prefixOps(p.Ops(), leaseView, ops, tokenView)
	if err := h.c.barrier.Transaction(ctx, all); err != nil {
		p.Abort()
		return err
	}
	p.Commit()
	return nil
}

// prefixOps returns a's ops with their keys under prefix pa, then b's
// under pb: the writes of two barrier views as one barrier transaction.
// The keys are cut from one string, one allocation for all of them.
func prefixOps(a []logical.StorageOp, pa string, b []logical.StorageOp, pb string) []logical.StorageOp {
	n := len(a)*len(pa) + len(b)*len(pb)
	for _, op := range a {
		n += len(op.Key)
	}
	for _, op := range b {
		n += len(op.Key)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, op := range a {
		sb.WriteString(pa)
		sb.WriteString(op.Key)
	}
	for _, op := range b {
		sb.WriteString(pb)
		sb.WriteString(op.Key)
	}
	keys := sb.String()
	all := make([]logical.StorageOp, 0, len(a)+len(b))
	cut := func(op logical.StorageOp, prefix string) {
		kl := len(prefix) + len(op.Key)
		op.Key, keys = keys[:kl], keys[kl:]
		all = append(all, op)
	}
	for _, op := range a {
		cut(op, pa)
	}
	for _, op := range b {
		cut(op, pb)
	}
	return all
}

// TokenRenewed moves the token's lease to its new expiry.
func (h tokenHooks) TokenRenewed(ctx context.Context, e *token.Entry) error {
	if e.ExpireTime.IsZero() || h.c.leases == nil {
		return nil
	}
	_, err := h.c.leases.Extend(ctx, e.LeaseID(), e.ExpireTime)
	return err
}

// RevokeLeases revokes every lease the token owns, and its own.
func (h tokenHooks) RevokeLeases(ctx context.Context, e *token.Entry) error {
	if isWrappingToken(e) {
		// Its wrapped response goes with it.
		if err := h.c.forgetWrapped(ctx, e.HashedID); err != nil {
			return err
		}
	}
	// And so does its cubbyhole.
	if err := h.c.destroyCubbyhole(ctx, e.HashedID); err != nil {
		return err
	}
	if h.c.leases == nil {
		return nil
	}
	own := ""
	if !e.ExpireTime.IsZero() {
		own = e.LeaseID()
	}
	return h.c.leases.RevokeByToken(ctx, e.HashedID, own)
}

// revokeTokensUnder revokes, each with its subtree, every token issued
// under prefix (an auth mount's path): those that expire through their
// lease records, which index them by creation path (revoking at once even
// when revoke-prefix only queued the leases), and the others, with the
// tokens of earlier versions, through the token store's path index. Every
// token is created under auth/ (a login, auth/token/create), so the lease
// records of any other prefix hold no token's and are not read.
func (c *Core) revokeTokensUnder(ctx context.Context, prefix string) error {
	var errs []error
	if c.leases != nil && isAuthPath(strings.TrimSuffix(prefix, "/")+"/") {
		err := c.leases.TokenKeys(ctx, prefix, func(key string) error {
			return c.tokens.RevokeTree(ctx, key)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.tokens.RevokeByPathPrefix(ctx, prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// RenewAuth asks the auth mount whose login created the token whether it
// may be renewed, and with what (spec §6: a role deleted since the login
// refuses the renewal).
func (h tokenHooks) RenewAuth(ctx context.Context, e *token.Entry, a *logical.Auth) (*logical.Auth, token.TTLDefaults, error) {
	route, rest, ok := h.c.router.Match(e.MountPath)
	if !ok {
		return nil, token.TTLDefaults{}, logical.BadRequest("the auth method that issued this token is no longer mounted")
	}
	resp, err := route.Backend.HandleRequest(ctx, &logical.Request{
		Operation:     logical.RenewOperation,
		Path:          rest,
		Storage:       route.Storage,
		MountPoint:    route.Entry.Path,
		MountType:     route.Entry.Type,
		MountAccessor: route.Entry.Accessor,
		Auth:          a,
	})
	if err != nil {
		return nil, token.TTLDefaults{}, err
	}
	if resp == nil || resp.Auth == nil {
		return nil, token.TTLDefaults{}, logical.BadRequest("the auth method refused to renew the token")
	}
	return resp.Auth, h.c.tokenDefaults(route.Entry), nil
}

// tokenDefaults are the TTL defaults of tokens a mount issues.
func (c *Core) tokenDefaults(e *mount.Entry) token.TTLDefaults {
	def, max := c.EffectiveTTLs(e.Config)
	return token.TTLDefaults{DefaultTTL: def, MaxTTL: max}
}

// tokenBackend builds the auth/token mount's backend over the store.
func (c *Core) tokenBackend(sv logical.SystemView) (logical.Backend, error) {
	return token.NewBackend(c.tokens, token.BackendConfig{
		System: sv,
		PolicyExists: func(ctx context.Context, name string) (bool, error) {
			if name == "root" {
				return true, nil
			}
			p, err := c.policies.parsedPolicy(ctx, name)
			return p != nil, err
		},
		Logger: c.cfg.Logger.With("component", "mount", "mount_path", tokenMountPath, "mount_type", typeToken),
	})
}

// issueLoginToken creates the token a login asked for in resp.Auth, on the
// auth mount of route, and fills resp.Auth with it.
func (c *Core) issueLoginToken(ctx context.Context, route *mount.Route, path string, resp *logical.Response) error {
	if al := resp.Auth.Alias; al != nil && al.Name != "" && c.identity != nil {
		ent, err := c.identity.ForLogin(ctx, identity.Login{
			MountAccessor: route.Entry.Accessor,
			MountPath:     route.Entry.Path,
			MountType:     route.Entry.Type,
			Name:          al.Name,
			Metadata:      al.Metadata,
		})
		if errors.Is(err, identity.ErrInvalidLogin) {
			return logical.BadRequest("%v", err)
		}
		if err != nil {
			return fmt.Errorf("core: record the login's identity: %w", err)
		}
		if ent.Disabled {
			return logical.ErrPermissionDenied
		}
		resp.Auth.EntityID = ent.ID
	}
	_, _, warnings, err := c.tokens.CreateForLogin(ctx, token.Login{
		MountPath: route.Entry.Path,
		Path:      path,
		TokenType: route.Entry.Config.TokenType,
		Defaults:  c.tokenDefaults(route.Entry),
	}, resp.Auth)
	if err != nil {
		return fmt.Errorf("core: create the login's token: %w", err)
	}
	resp.Warnings = append(resp.Warnings, warnings...)
	return nil
}
