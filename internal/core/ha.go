package core

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
)

// High availability: several servers share one HA storage backend. Each
// unseals on its own (auto seal or operators) and becomes a standby; an HA
// loop campaigns for the backend's leader lock, and the winner becomes
// active: it reloads the keyring and starts the subsystems (audit, tokens,
// mounts, leases, jobs), exactly as a single server does at unseal. When it
// loses the lock (expired, taken over) or steps down, it stops them and
// stands by again. The backend fences a former leader's writes, so a
// server paused past its lock cannot change anything when it resumes.
//
// Standbys serve nothing themselves: the HTTP layer forwards their clients
// to the active server's api_addr, signing the client's address with a key
// derived from the root key (ForwardMAC), which only unsealed members of
// the cluster know.

// haRun is one HA loop, from unseal to seal.
type haRun struct {
	cancel   context.CancelFunc
	done     chan struct{}
	stepDown chan struct{} // buffered: a step-down request
}

// leaderEntry caches the active server's identity for forwarding.
type leaderEntry struct {
	holder storage.Holder
	ok     bool
	at     time.Time
}

// leaderCacheTTL bounds how long a standby forwards to the address it
// last read without asking the backend again.
const leaderCacheTTL = 500 * time.Millisecond

// stepDownPoll paces the wait for another server to take over after a
// step-down.
const stepDownPoll = 50 * time.Millisecond

// haRetry paces the HA loop after a failed campaign or activation.
const haRetry = time.Second

// forwardingPurpose names the key derived for signing forwarded requests.
const forwardingPurpose = "request forwarding"

// LeaderStatus is what sys/leader reports.
type LeaderStatus struct {
	HAEnabled bool
	// IsSelf is true on the active server.
	IsSelf bool
	// ActiveTime is when the active server became active (on the active
	// server only).
	ActiveTime time.Time
	// LeaderAddress is the active server's api_addr, "" when none is
	// known.
	LeaderAddress string
}

// HAEnabled reports whether this server is one of several sharing HA
// storage.
func (c *Core) HAEnabled() bool { return c.cfg.HA != nil }

// Standby reports whether the server is an unsealed HA standby: its
// clients are to be forwarded to the active server.
func (c *Core) Standby() bool { return c.standby.Load() }

// NodeID is the name this server campaigns under.
func (c *Core) NodeID() string { return c.cfg.NodeID }

// startHA enters standby and starts the HA loop. The caller holds stateMu
// for writing and has opened the barrier.
func (c *Core) startHA(ctx context.Context) error {
	if err := c.loadCluster(ctx); err != nil {
		return fmt.Errorf("core: %w", err)
	}
	key, err := c.barrier.DeriveKey(forwardingPurpose)
	if err != nil {
		return fmt.Errorf("core: derive forwarding key: %w", err)
	}
	c.fwdKey.Store(&key)
	c.standby.Store(true)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &haRun{cancel: cancel, done: make(chan struct{}), stepDown: make(chan struct{}, 1)}
	c.haMu.Lock()
	c.ha = h
	c.haMu.Unlock()
	go c.runHA(runCtx, h)
	return nil
}

// stopHA ends the HA loop and waits for it; an active server stops its
// subsystems and releases the lock first. The caller must not hold
// stateMu (the loop takes it to stand down).
func (c *Core) stopHA() {
	c.haMu.Lock()
	h := c.ha
	c.ha = nil
	c.haMu.Unlock()
	if h == nil {
		return
	}
	h.cancel()
	<-h.done
}

// runHA campaigns for the leader lock until ctx ends, serving as the
// active server whenever it holds it.
func (c *Core) runHA(ctx context.Context, h *haRun) {
	defer close(h.done)
	var wait time.Duration
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		wait = haRetry
		lead, err := c.cfg.HA.Campaign(ctx, c.cfg.NodeID, c.cfg.APIAddr)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Error("campaign for the leader lock failed", "error", err)
			continue
		}
		if err := c.activate(ctx, lead); err != nil {
			c.release(lead)
			if ctx.Err() != nil {
				return
			}
			c.log.Error("could not become active; standing by", "error", err)
			continue
		}
		wait = 0
		select {
		case <-ctx.Done():
			c.deactivate("sealing")
			c.release(lead)
			return
		case <-lead.Lost():
			c.deactivate("lost the leader lock")
		case <-h.stepDown:
			c.deactivate("stepped down")
			c.release(lead)
			if !c.awaitOtherLeader(ctx) {
				return
			}
			wait = 0
		}
	}
}

// awaitOtherLeader waits, after a step-down, until another server holds
// the lock or StepDownWait has passed, so that this one does not win it
// straight back, yet campaigns again at once should the new active die.
// It returns false when ctx ends.
func (c *Core) awaitOtherLeader(ctx context.Context) bool {
	deadline := time.Now().Add(c.cfg.StepDownWait)
	for time.Now().Before(deadline) {
		if h, ok, err := c.cfg.HA.Leader(ctx); err == nil && ok && h.ID != c.cfg.NodeID {
			return true
		}
		t := time.NewTimer(stepDownPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	return ctx.Err() == nil
}

// activate makes this server the active one: it reads the keyring again
// (the previous active may have rotated it) and starts the subsystems.
func (c *Core) activate(ctx context.Context, lead storage.Leadership) error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-lead.Lost():
		return errors.New("core: the leader lock was lost while becoming active")
	default:
	}
	if err := c.barrier.Reload(ctx); err != nil {
		return fmt.Errorf("core: reload keyring: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := c.startAll(runCtx); err != nil {
		cancel()
		return err
	}
	c.stopCtx = cancel
	c.activeSince = c.clk.Now()
	c.leaderCache.Store(nil)
	c.standby.Store(false)
	c.log.Info("active: holding the leader lock", "node_id", c.cfg.NodeID, "api_addr", c.cfg.APIAddr)
	return nil
}

// deactivate stops the subsystems and returns to standby.
func (c *Core) deactivate(why string) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.standby.Store(true)
	c.stopRunning(context.Background())
	c.leaderCache.Store(nil)
	c.log.Info("standing by", "reason", why, "node_id", c.cfg.NodeID)
}

// release gives the lock up, logging a failure (the lock then expires).
func (c *Core) release(lead storage.Leadership) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lead.Release(ctx); err != nil {
		c.log.Warn("release the leader lock", "error", err)
	}
}

// StepDown makes the active server give up the leader lock, so that a
// standby takes over; it campaigns again after StepDownWait. The token
// must have update and sudo on sys/step-down. A server without HA has
// nothing to step down from: the call succeeds and changes nothing, as in
// Vault. The step-down happens in the background: the call returns once
// it is requested.
func (c *Core) StepDown(ctx context.Context, tok secret.String, conn *logical.Connection) error {
	c.stateMu.RLock()
	switch {
	case c.sealed.Load():
		c.stateMu.RUnlock()
		return ErrSealed
	case c.standby.Load():
		c.stateMu.RUnlock()
		return ErrStandby
	}
	err := c.authorizeSys(ctx, tok, conn, "sys/step-down", logical.UpdateOperation)
	c.stateMu.RUnlock()
	if err != nil {
		return err
	}
	c.haMu.Lock()
	h := c.ha
	c.haMu.Unlock()
	if h != nil {
		select {
		case h.stepDown <- struct{}{}:
		default:
		}
	}
	return nil
}

// Leader reports the HA state for sys/leader.
func (c *Core) Leader(ctx context.Context) (LeaderStatus, error) {
	if c.cfg.HA == nil {
		return LeaderStatus{}, nil
	}
	if c.sealed.Load() {
		return LeaderStatus{}, ErrSealed
	}
	if !c.standby.Load() {
		c.stateMu.RLock()
		at := c.activeSince
		c.stateMu.RUnlock()
		return LeaderStatus{HAEnabled: true, IsSelf: true, ActiveTime: at, LeaderAddress: c.cfg.APIAddr}, nil
	}
	h, ok, err := c.currentLeader(ctx)
	if err != nil {
		return LeaderStatus{}, err
	}
	st := LeaderStatus{HAEnabled: true}
	if ok {
		st.LeaderAddress = h.Addr
	}
	return st, nil
}

// ActiveAddress is the address a standby forwards its clients to. It
// fails with ErrNoLeader when no server holds the lock, or when the
// holder is this server (which is then between states).
func (c *Core) ActiveAddress(ctx context.Context) (string, error) {
	h, ok, err := c.currentLeader(ctx)
	if err != nil {
		return "", err
	}
	if !ok || h.Addr == "" || h.ID == c.cfg.NodeID {
		return "", ErrNoLeader
	}
	return h.Addr, nil
}

// ForgetLeader drops the cached active address: forwarding to it failed.
func (c *Core) ForgetLeader() { c.leaderCache.Store(nil) }

// currentLeader returns the lock's holder, cached briefly.
func (c *Core) currentLeader(ctx context.Context) (storage.Holder, bool, error) {
	if e := c.leaderCache.Load(); e != nil && time.Since(e.at) < leaderCacheTTL {
		return e.holder, e.ok, nil
	}
	h, ok, err := c.cfg.HA.Leader(ctx)
	if err != nil {
		return storage.Holder{}, false, fmt.Errorf("core: read the leader lock: %w", err)
	}
	c.leaderCache.Store(&leaderEntry{holder: h, ok: ok, at: time.Now()})
	return h, ok, nil
}

// ForwardMAC authenticates msg, a description of a forwarded request, for
// the active server: an HMAC-SHA256 under a key derived from the root key.
// ok is false while the server is sealed or not part of an HA cluster.
func (c *Core) ForwardMAC(msg []byte) (mac []byte, ok bool) {
	k := c.fwdKey.Load()
	if k == nil {
		return nil, false
	}
	m := hmac.New(sha256.New, *k)
	m.Write(msg)
	return m.Sum(nil), true
}

// CheckForwardMAC reports, in constant time, whether mac authenticates
// msg (see ForwardMAC).
func (c *Core) CheckForwardMAC(msg, mac []byte) bool {
	want, ok := c.ForwardMAC(msg)
	return ok && hmac.Equal(want, mac)
}
