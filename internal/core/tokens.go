package core

import (
	"context"
	"errors"
	"fmt"
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
	_ token.LeaseHooks  = tokenHooks{}
	_ token.AuthRenewer = tokenHooks{}
)

// TokenCreated registers the lease of a token that expires: the
// expiration manager revokes the token (and everything it owns) on time.
func (h tokenHooks) TokenCreated(ctx context.Context, e *token.Entry) error {
	if e.ExpireTime.IsZero() {
		return nil // root and other non-expiring tokens own leases but have none
	}
	if h.c.leases == nil {
		return errors.New("core: no expiration manager to give an expiring token its lease")
	}
	ttl := e.ExpireTime.Sub(h.c.clk.Now())
	if ttl <= 0 {
		ttl = time.Nanosecond
	}
	_, err := h.c.leases.Register(ctx, lease.RegisterRequest{
		Kind:      lease.KindToken,
		ID:        e.LeaseID(),
		Path:      e.Path,
		TTL:       ttl,
		Renewable: e.Renewable,
		TokenKey:  e.HashedID,
	})
	return err
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
	if h.c.leases == nil {
		return nil
	}
	return h.c.leases.RevokeByToken(ctx, e.HashedID)
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
