package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-secrets/vigil/internal/lease"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
	"github.com/vigil-secrets/vigil/internal/token"
)

// leaseView is where the expiration manager keeps its records.
const leaseView = "sys/expire/"

// leaseBridge is how the expiration manager reaches the mounts: it
// satisfies lease.Revoker and lease.Renewer by sending the mount that
// handed out a lease a RevokeOperation or RenewOperation.
type leaseBridge struct{ c *Core }

var (
	_ lease.Revoker = leaseBridge{}
	_ lease.Renewer = leaseBridge{}
)

// leaseRequest builds the request a lease's mount gets, or reports that
// the mount is gone.
func (b leaseBridge) leaseRequest(l *lease.Lease, op logical.Operation) (*mount.Route, *logical.Request, bool) {
	route, rest, ok := b.c.router.Match(l.Path)
	if !ok {
		return nil, nil, false
	}
	return route, &logical.Request{
		Operation:     op,
		Path:          rest,
		Storage:       route.Storage,
		MountPoint:    route.Entry.Path,
		MountType:     route.Entry.Type,
		MountAccessor: route.Entry.Accessor,
		Secret: &logical.Secret{
			Renewable:    l.Renewable,
			InternalData: l.InternalData,
			LeaseID:      l.ID,
			IssueTime:    l.IssueTime,
		},
	}, true
}

// Revoke implements lease.Revoker.
func (b leaseBridge) Revoke(ctx context.Context, l *lease.Lease) error {
	if l.Kind == lease.KindToken {
		// The token, its children and everything they own.
		return b.c.tokens.RevokeTree(ctx, l.TokenKey)
	}
	route, req, ok := b.leaseRequest(l, logical.RevokeOperation)
	if !ok {
		// The mount was disabled (which revokes its leases first) or
		// never restored: nothing is left to undo through it.
		b.c.log.Warn("lease of a mount that no longer exists", "lease_path", l.Path)
		return nil
	}
	_, err := route.Backend.HandleRequest(ctx, req)
	return err
}

// Renew implements lease.Renewer: the mount computes the new TTL, which
// the mount's maximum caps (the manager also caps it at the lease's
// MaxTTL from issue).
func (b leaseBridge) Renew(ctx context.Context, l *lease.Lease, increment time.Duration) (time.Duration, error) {
	route, req, ok := b.leaseRequest(l, logical.RenewOperation)
	if !ok {
		return 0, lease.ErrNotFound
	}
	req.Data = map[string]any{"increment": int64(increment.Seconds())}
	resp, err := route.Backend.HandleRequest(ctx, req)
	if err != nil {
		return 0, err
	}
	if resp == nil || resp.Secret == nil {
		return 0, lease.ErrNotRenewable
	}
	def, max := b.c.EffectiveTTLs(route.Entry.Config)
	ttl := resp.Secret.TTL
	if ttl <= 0 {
		ttl = def
	}
	return min(ttl, max), nil
}

func (c *Core) startLeases(ctx context.Context) error {
	bridge := leaseBridge{c: c}
	m, err := lease.New(lease.Config{
		Storage: c.barrier.View(leaseView),
		Revoker: bridge,
		Renewer: bridge,
		Clock:   c.clk,
		Logger:  c.cfg.Logger.With("component", "lease"),
	})
	if err != nil {
		return err
	}
	// Set before Start: restored leases already due are revoked at once,
	// by workers that reach the manager through c.leases (tokenHooks).
	c.leases = m
	if err := m.Start(ctx); err != nil {
		c.leases = nil
		return err
	}
	c.leaseStats.Store(m)
	return nil
}

func (c *Core) stopLeases(ctx context.Context) {
	if c.leases == nil {
		return
	}
	c.leaseStats.Store(nil)
	if err := c.leases.Stop(ctx); err != nil {
		c.log.Warn("stopping the lease manager", "error", err)
	}
	c.leases = nil
}

// undoTimeout bounds the revocation of a secret whose lease could not be
// stored or confirmed. It runs even when the client has gone (its
// request's context is cancelled): the secret must not outlive the
// request that failed.
const undoTimeout = 30 * time.Second

// registerLease puts the secret a mount handed out under a lease: TTL
// from the mount's defaults and maximum, owned by the caller's token, and
// tells the mount the lease is stored (logical.LeaseConfirmer) through
// lreq, the request that produced the secret.
//
// If the lease cannot be stored, the secret is revoked at once through
// its mount, so that nothing outlives its record; if the mount cannot
// take note of the lease, the lease is revoked at once. Either way the
// request fails. A crash in between leaves the mount's intent record
// (package framework), from which the mount undoes the secret on its own.
func (c *Core) registerLease(ctx context.Context, route *mount.Route, lreq *logical.Request, path string, te *token.Entry, s *logical.Secret) error {
	def, max := c.EffectiveTTLs(route.Entry.Config)
	ttl := s.TTL
	if ttl <= 0 {
		ttl = def
	}
	ttl = min(ttl, max)
	maxTTL := s.MaxTTL
	if maxTTL <= 0 || maxTTL > max {
		maxTTL = max
	}
	var owner string
	if te != nil {
		owner = te.HashedID
	}
	l, err := c.leases.Register(ctx, lease.RegisterRequest{
		Kind:         lease.KindSecret,
		Path:         path,
		TTL:          ttl,
		MaxTTL:       maxTTL,
		Renewable:    s.Renewable,
		TokenKey:     owner,
		InternalData: s.InternalData,
	})
	if err != nil {
		// Undo the secret: the lease that would have revoked it is lost.
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		orphan := &lease.Lease{ID: path, Path: path, Kind: lease.KindSecret, InternalData: s.InternalData}
		if rerr := (leaseBridge{c: c}).Revoke(undo, orphan); rerr != nil {
			c.log.Error("a secret whose lease could not be stored could not be revoked either; its mount undoes it later if it can",
				"path", path, "error", rerr)
		}
		return fmt.Errorf("core: register lease: %w", err)
	}
	s.LeaseID, s.TTL = l.ID, ttl
	if lc, ok := route.Backend.(logical.LeaseConfirmer); ok {
		if err := lc.SecretRegistered(ctx, lreq, s); err != nil {
			c.revokeUnconfirmed(ctx, l.ID)
			return fmt.Errorf("core: confirm lease %q: %w", l.ID, err)
		}
	}
	return nil
}

// revokeUnconfirmed revokes a lease its mount could not take note of: at
// once if it can, else queued for the lease manager's retries.
func (c *Core) revokeUnconfirmed(ctx context.Context, id string) {
	undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	err := c.leases.Revoke(undo, id, false)
	if err == nil {
		return
	}
	if qerr := c.leases.RevokeAsync(undo, id); qerr != nil {
		c.log.Error("a lease its mount could not confirm could not be revoked or queued; it is revoked when it expires",
			"lease_id", id, "error", errors.Join(err, qerr))
		return
	}
	c.log.Warn("a lease its mount could not confirm is queued for revocation", "lease_id", id, "error", err)
}

// leaseError turns the expiration manager's sentinel errors into the 400s
// clients expect (spec §3.11).
func leaseError(err error) error {
	switch {
	case errors.Is(err, lease.ErrNotFound):
		return logical.BadRequest("lease not found")
	case errors.Is(err, lease.ErrExpired):
		return logical.BadRequest("lease expired")
	case errors.Is(err, lease.ErrNotRenewable):
		return logical.BadRequest("lease is not renewable")
	case errors.Is(err, lease.ErrTokenLease):
		return logical.BadRequest("tokens cannot be renewed through this endpoint")
	case errors.Is(err, lease.ErrInvalid):
		return logical.BadRequest("%v", err)
	}
	return err
}
