// Package core is Vigil's server core: the seal state machine (init,
// unseal, seal), the request pipeline (token check, routing, existence
// check, mount call) and the lifecycle of the subsystems that run while the
// server is unsealed.
//
// It composes the lower packages (barrier, seal, mount, token) through their
// APIs and receives engine factories as a value; it imports no engine, no
// HTTP package and no auth method. Mapping its errors to HTTP statuses is the
// HTTP layer's job.
//
// Security invariants upheld here:
//   - While sealed, HandleRequest answers ErrSealed and nothing else runs.
//   - Every mount sees only its own barrier view; everything stored goes
//     through the barrier, except the seal record (see package seal).
//   - Deny by default: a request without a valid token is refused.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/internal/audit"
	"github.com/vigil-secrets/vigil/internal/barrier"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/events"
	"github.com/vigil-secrets/vigil/internal/identity"
	"github.com/vigil-secrets/vigil/internal/jobs"
	"github.com/vigil-secrets/vigil/internal/lease"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/token"
)

// Sentinel errors. The HTTP layer maps them to statuses and messages.
var (
	// ErrSealed: the server is sealed (or not initialized) and serves
	// nothing but the seal endpoints.
	ErrSealed = errors.New("core: sealed")
	// ErrNotInitialized: the operation needs an initialized server.
	ErrNotInitialized = errors.New("core: not initialized")
	// ErrAlreadyInitialized: init on an initialized server.
	ErrAlreadyInitialized = errors.New("core: already initialized")
	// ErrAlreadyUnsealed: an unseal reset on an unsealed server.
	ErrAlreadyUnsealed = errors.New("core: already unsealed")
	// ErrNoRoute: no mount owns the path.
	ErrNoRoute = errors.New("core: no handler for route")
	// ErrStandby: the server is an HA standby (or lost the leader lock
	// during the request); the active server serves the request.
	ErrStandby = errors.New("core: node is not active")
	// ErrCannotSealStandby: sys/seal on an HA standby, which cannot check
	// the token (stop its process instead).
	ErrCannotSealStandby = errors.New("core: a standby cannot be sealed through the API; stop its process instead")
	// ErrNoLeader: an HA standby knows no active server to forward to.
	ErrNoLeader = errors.New("core: no active node")
	// ErrSealMismatch: the stored seal is not of the configured type
	// (seals are not migrated).
	ErrSealMismatch = errors.New("core: the configured seal does not match the stored one")
)

// Storage keys of the core's own records (all behind the barrier except
// sealKey, which package seal documents).
const (
	sealKey    = "core/seal"
	mountsKey  = "core/mounts"
	authKey    = "core/auth"
	clusterKey = "core/cluster"
	tokenView  = "sys/token/"
	// recoveryKeyPath holds the hash of an auto seal's recovery key.
	recoveryKeyPath = "core/recovery-key"
)

// Version is reported by sys/health and sys/seal-status.
const Version = "0.1.0"

// Config is what New needs.
type Config struct {
	// Storage is the physical backend (ciphertext only).
	Storage storage.Backend
	// StorageType names it for sys/seal-status ("bolt", "inmem").
	StorageType string
	// Seal is the auto seal that wraps the root key (static, pkcs11);
	// nil means the Shamir seal.
	Seal seal.Wrapper
	// Factories maps engine type names to factories.
	Factories map[string]logical.Factory
	// AuthFactories maps auth method type names to factories.
	AuthFactories map[string]logical.Factory
	// AuditFactories maps audit device type names to sink factories.
	AuditFactories map[string]audit.Factory
	// AuditDevices are the devices of the server configuration.
	AuditDevices []AuditDevice
	Logger       *slog.Logger
	Clock        clock.Clock
	// DefaultLeaseTTL and MaxLeaseTTL are the system TTL defaults (768h
	// when zero).
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
	// ClusterName is used at init; a name is generated when empty.
	ClusterName string
	// LoginRate and LoginBurst limit login attempts per client address
	// (per second, and at once); zero means the defaults (50 and 100).
	LoginRate  float64
	LoginBurst int
	// Metrics counts logins and renders sys/metrics; nil means none.
	Metrics Metrics
	// HA, when set, makes this server one of several sharing the storage
	// (Storage must write through HA, which fences the writes): once
	// unsealed it is a standby until it wins HA's leader lock, and only
	// the active server runs the subsystems. nil means a single server.
	HA storage.HABackend
	// NodeID names this server in the leader lock; one is generated when
	// empty.
	NodeID string
	// APIAddr is the address the standbys forward clients to while this
	// server is active (api_addr).
	APIAddr string
	// StepDownWait is how long a server that stepped down waits for
	// another to take over before it campaigns again (10 s when zero).
	StepDownWait time.Duration
	// EventBuffer is the length of each event subscription's queue
	// (events.DefaultBuffer when zero): a subscriber that falls further
	// behind loses its subscription (ErrEventsLost).
	EventBuffer int
	// MaxEventSubscribers bounds the event subscriptions open at once
	// (events.DefaultMaxSubscribers when zero).
	MaxEventSubscribers int
	// EventRecheckInterval is how often a subscriber's token is checked
	// again (DefaultEventRecheckInterval when zero); see events.go.
	EventRecheckInterval time.Duration
}

// Core is one server's core. Create it with New.
type Core struct {
	cfg     Config
	log     *slog.Logger
	clk     clock.Clock
	barrier *barrier.Barrier
	router  *mount.Router

	// stateMu is held for reading by every request and for writing by
	// seal and unseal, so that sealing waits for in-flight requests.
	stateMu sync.RWMutex
	sealed  atomic.Bool
	// standby is set while an HA server is unsealed but not active: it
	// runs no subsystem, and the HTTP layer forwards its clients.
	standby atomic.Bool
	// ha is the HA loop while unsealed with HA; guarded by haMu.
	haMu sync.Mutex
	ha   *haRun
	// activeSince is when this server last became active (stateMu).
	activeSince time.Time
	// leaderCache remembers the active server's address for forwarding.
	leaderCache atomic.Pointer[leaderEntry]
	// fwdKey signs forwarded requests; set while unsealed with HA.
	fwdKey   atomic.Pointer[[]byte]
	unsealer *seal.Unsealer // guarded by stateMu (write)

	// Valid only while unsealed (set under stateMu write lock).
	tokens   *token.Store
	policies *policyStore
	identity *identity.Store // set with the mounts
	leases   *lease.Manager
	// leaseStats is leases for Stats, which reads it without stateMu.
	leaseStats atomic.Pointer[lease.Manager]
	// sched runs the mounts' periodic work; set while unsealed (read
	// without stateMu by mounts' Wake and by syncJobs).
	sched   atomic.Pointer[jobs.Scheduler]
	cluster clusterInfo
	running []subsystem // started subsystems, in start order
	stopCtx context.CancelFunc

	logins *loginLimiter

	// genMu guards gen, the root token generation in progress.
	genMu sync.Mutex
	gen   *generateRoot

	// passwordPolicies is read through the barrier, which refuses it
	// while sealed.
	passwordPolicies *passwordPolicies

	// events delivers change events to subscribers (events.go).
	events *events.Bus

	// audit records requests; its devices are opened at unseal.
	audit      *audit.Broker
	auditState *auditState // set while unsealed
	// auditRecords recycles the records of audited requests (about 1 KB
	// each): on a server with a large heap, every byte a request
	// allocates costs garbage-collection work in proportion.
	auditRecords sync.Pool
	// auditHeaders are the request headers the audit log records; nil
	// while sealed.
	auditHeaders atomic.Pointer[auditHeaderSet]
	// cubbyholePrefix is the barrier prefix of the cubbyhole mount's
	// view while the mounts are up, nil otherwise.
	cubbyholePrefix atomic.Pointer[string]

	// mountsMu serializes changes to the mount tables.
	mountsMu sync.Mutex
	mounts   *mount.Table // secrets engines
	auth     *mount.Table // auth methods, paths under authPrefix
	sys      logical.Backend
}

type clusterInfo struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// New returns a sealed core over cfg.Storage.
func New(cfg Config) (*Core, error) {
	if cfg.Storage == nil {
		return nil, errors.New("core: no storage backend")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.DefaultLeaseTTL == 0 {
		cfg.DefaultLeaseTTL = 768 * time.Hour
	}
	if cfg.MaxLeaseTTL == 0 {
		cfg.MaxLeaseTTL = 768 * time.Hour
	}
	if cfg.StepDownWait == 0 {
		cfg.StepDownWait = 10 * time.Second
	}
	if cfg.NodeID == "" {
		cfg.NodeID = secret.UUID()
	}
	if cfg.DefaultLeaseTTL > cfg.MaxLeaseTTL {
		return nil, fmt.Errorf("core: default lease ttl %s exceeds max lease ttl %s", cfg.DefaultLeaseTTL, cfg.MaxLeaseTTL)
	}
	c := &Core{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "core"),
		clk:     cfg.Clock,
		barrier: barrier.New(cfg.Storage, cfg.Clock),
		router:  mount.NewRouter(),
		logins:  newLoginLimiter(cfg.LoginRate, cfg.LoginBurst),
		audit:   audit.NewBroker(),
		events:  events.New(events.Config{Buffer: cfg.EventBuffer, MaxSubscribers: cfg.MaxEventSubscribers}),
	}
	c.passwordPolicies = &passwordPolicies{view: c.barrier.View(passwordPolicyView)}
	c.sealed.Store(true)
	c.sys = newSystemBackend(c)
	return c, nil
}

// Sealed reports whether the core is sealed.
func (c *Core) Sealed() bool { return c.sealed.Load() }

// subsystem is one piece started on unseal and stopped on seal, in reverse.
type subsystem struct {
	name  string
	start func(ctx context.Context) error
	stop  func(ctx context.Context)
}

// subsystems lists, in start order, what runs while unsealed.
func (c *Core) subsystems() []subsystem {
	return []subsystem{
		{name: "cluster", start: c.loadCluster, stop: func(context.Context) {}},
		// Early, and so stopped last: it records until the end.
		{name: "audit", start: c.startAudit, stop: c.stopAudit},
		{name: "tokens", start: c.startTokens, stop: c.stopTokens},
		{name: "policies", start: c.startPolicies, stop: func(context.Context) { c.policies = nil }},
		{name: "mounts", start: c.startMounts, stop: c.stopMounts},
		// After the mounts: revoking a lease goes through its mount.
		{name: "leases", start: c.startLeases, stop: c.stopLeases},
		// Last, and so stopped first: the mounts' periodic work runs
		// only while everything it may need is up.
		{name: "jobs", start: c.startJobs, stop: c.stopJobs},
		// Stopped first of all: subscribers learn at once that this
		// server no longer publishes (sealed, or standing by).
		{name: "events", start: func(context.Context) error { return nil }, stop: c.stopEvents},
	}
}

// startAll starts the subsystems in order; on failure it stops the ones
// already started, in reverse, and returns the error.
func (c *Core) startAll(ctx context.Context) error {
	for _, s := range c.subsystems() {
		if err := s.start(ctx); err != nil {
			c.stopAll(ctx)
			return fmt.Errorf("core: start %s: %w", s.name, err)
		}
		c.running = append(c.running, s)
	}
	return nil
}

// stopAll stops the running subsystems in reverse start order.
func (c *Core) stopAll(ctx context.Context) {
	for i := len(c.running) - 1; i >= 0; i-- {
		c.running[i].stop(ctx)
	}
	c.running = nil
}

func (c *Core) startTokens(ctx context.Context) error {
	hooks := tokenHooks{c: c}
	st, err := token.OpenWith(ctx, c.barrier.View(tokenView), token.Config{
		Now:         c.clk.Now,
		Leases:      hooks,
		AuthRenewer: hooks,
		Logger:      c.cfg.Logger.With("component", "token"),
	})
	if err != nil {
		return err
	}
	c.tokens = st
	return nil
}

func (c *Core) startPolicies(ctx context.Context) error {
	ps := newPolicyStore(c.barrier.View(policyView), c.clk.Now)
	if err := ps.ensureDefault(ctx); err != nil {
		return err
	}
	c.policies = ps
	return nil
}

func (c *Core) stopTokens(context.Context) {
	if c.tokens != nil {
		c.tokens.Close()
		c.tokens = nil
	}
}
