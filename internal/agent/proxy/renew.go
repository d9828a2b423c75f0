package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
)

// renewLocked starts keeping e alive in the background with the token
// that obtained it, and evicts e when that stops working.
func (c *leaseCache) renewLocked(e *entry) {
	ctx, cancel := context.WithCancel(c.base)
	e.cancel = cancel
	renew := c.renewFunc(e)
	ttl, path := e.ttl, e.path
	opts := lifetime.KeepOptions{RetryOptions: lifetime.RetryOptions{
		Clock: c.clk,
		OnError: func(err error, attempt int, wait time.Duration) {
			c.log.Warn("cache: renewal failed, retrying", "path", path, "attempt", attempt, "wait", wait, "error", err)
		},
	}}
	c.renewals.Add(1)
	go func() {
		defer c.renewals.Done()
		defer cancel()
		err := lifetime.Keep(ctx, ttl, true, renew, opts)
		if ctx.Err() != nil {
			return // evicted already, or the proxy is stopping
		}
		reason := "renewal refused"
		switch {
		case errors.Is(err, lifetime.ErrExpiring):
			reason = "max TTL reached"
		case errors.Is(err, lifetime.ErrExpired):
			reason = "expired while the server could not be reached"
		}
		c.log.Info("cache: evicting an entry that can no longer be renewed", "path", path, "reason", reason, "error", err)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.evictLocked(e, reason)
	}()
}

// renewFunc renews e once: a lease through sys/leases/renew with its
// owner's token, a token through auth/token/renew-self with itself. Each
// asks for the TTL first issued, and moves e's expiry.
func (c *leaseCache) renewFunc(e *entry) lifetime.RenewFunc {
	increment := e.ttl
	if e.kind == kindToken {
		tok := e.node.token
		return func(ctx context.Context) (time.Duration, bool, error) {
			s, err := c.client.WithToken(tok.Reveal()).TokenAuth().RenewSelf(ctx, increment)
			if err != nil {
				return 0, false, err
			}
			if s == nil || s.Auth == nil {
				return 0, false, errors.New("proxy: token renewal answered without auth")
			}
			return c.renewed(e, seconds(int64(s.Auth.LeaseDuration))), s.Auth.Renewable, nil
		}
	}
	tok, leaseID := e.owner.token, e.leaseID
	return func(ctx context.Context) (time.Duration, bool, error) {
		s, err := c.client.WithToken(tok.Reveal()).Sys().LeaseRenew(ctx, leaseID, increment)
		if err != nil {
			return 0, false, err
		}
		if s == nil {
			return 0, false, fmt.Errorf("proxy: renewal of lease %s answered nothing", leaseID)
		}
		return c.renewed(e, seconds(int64(s.LeaseDuration))), s.Renewable, nil
	}
}

// renewed records a renewal's new TTL as e's expiry.
func (c *leaseCache) renewed(e *entry, ttl time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.expires = c.clk.Now().Add(ttl)
	c.log.Debug("cache: renewed", "path", e.path, "lease_id", e.leaseID, "ttl", ttl)
	return ttl
}
