package lease

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
)

type runState int

const (
	stateNew runState = iota
	stateRunning
	stateStopped
)

// Manager owns the leases of an unsealed server. It is safe for concurrent
// use. Build it with [New], then [Manager.Start] it; every other method
// returns [ErrStopped] before Start and after [Manager.Stop].
type Manager struct {
	cfg     Config
	st      logical.Storage
	tx      logical.TransactionalStorage // nil when st has no transactions
	clk     clock.Clock
	log     *slog.Logger
	revoker Revoker
	renewer Renewer
	seed    maphash.Seed // jitter; per manager, never shared

	// claims serialises the operations on one lease (see acquire).
	cmu    sync.Mutex
	claims map[string]*claim

	// mu guards everything below.
	mu     sync.Mutex
	state  runState
	life   context.Context // the lifecycle context Start creates
	cancel context.CancelFunc
	// table holds the leases the scheduler knows: those scheduled, those
	// handed to workers (active) and the irrevocable ones.
	table table
	timer clock.Timer
	// wakeAt is when the dispatcher will next run: zero when nothing is
	// scheduled, at or before now while it is running or about to.
	wakeAt      time.Time
	active      int // entries popped from the heap and not finished
	bucket      bucket
	irrevocable int // entries flagged irrevocable
	restoring   bool
	restoredN   int
	// tombstones are the ids deleted while the restore runs, so that it
	// does not bring back a lease it read just before it was revoked.
	tombstones map[string]struct{}

	// expired counts the leases revoked because they expired;
	// revokeFailures the failed attempts to revoke one.
	expired        atomic.Uint64
	revokeFailures atomic.Uint64

	wake     chan struct{} // dispatcher wake-up, capacity 1
	queue    chan ticket   // dispatcher → workers, bounded
	restored chan struct{} // closed when the restore ends
	wg       sync.WaitGroup
}

// New returns a manager for cfg. It starts nothing.
func New(cfg Config) (*Manager, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:      cfg,
		st:       cfg.Storage,
		clk:      cfg.Clock,
		log:      cfg.Logger,
		revoker:  cfg.Revoker,
		renewer:  cfg.Renewer,
		seed:     maphash.MakeSeed(),
		claims:   map[string]*claim{},
		table:    newTable(),
		bucket:   bucket{rate: cfg.RevokeRate, burst: float64(max(cfg.RevokeBurst, 1))},
		wake:     make(chan struct{}, 1),
		queue:    make(chan ticket, max(cfg.QueueSize, 1)),
		restored: make(chan struct{}),
	}
	if tx, ok := cfg.Storage.(logical.TransactionalStorage); ok {
		m.tx = tx
	}
	return m, nil
}

// Start starts the scheduler, the revocation workers and the background
// restore of the persisted leases, and returns without waiting for the
// restore ([Manager.Restored] tells when it is done). Its goroutines live
// until Stop or until ctx is cancelled. A manager starts once.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case stateRunning:
		return errors.New("lease: manager already started")
	case stateStopped:
		return ErrStopped
	}
	m.life, m.cancel = context.WithCancel(ctx)
	m.state = stateRunning
	m.restoring = true
	m.tombstones = map[string]struct{}{}
	m.wg.Add(2 + m.cfg.RevokeWorkers)
	go m.dispatch(m.life)
	for range m.cfg.RevokeWorkers {
		go m.work(m.life)
	}
	go m.restore(m.life)
	return nil
}

// Stop cancels every goroutine of the manager, including calls in flight
// (they return a context error), and waits for them until ctx is done.
// Leases queued for revocation stay in storage: the next manager restores
// them. Stopping twice, or a manager never started, is not an error.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	if m.state != stateRunning {
		m.state = stateStopped
		m.mu.Unlock()
		return nil
	}
	m.state = stateStopped
	m.cancel()
	if m.timer != nil {
		m.timer.Stop()
	}
	m.mu.Unlock()

	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("lease: stop: %w", ctx.Err())
	}
}

// Restored returns a channel closed when the restore of persisted leases
// has finished, or has been abandoned because the manager stopped.
func (m *Manager) Restored() <-chan struct{} { return m.restored }

// Stats is a snapshot of the scheduler, for metrics.
type Stats struct {
	// Scheduled counts leases waiting for their expiry (or retry) time.
	Scheduled int
	// Active counts leases handed to the revocation workers.
	Active int
	// Irrevocable counts irrevocable leases known in memory (all of them
	// once the restore is done).
	Irrevocable int
	// Restoring reports whether the restore is still running; Restored
	// counts the leases it has handed to the scheduler so far.
	Restoring bool
	Restored  int
	// Expired counts the leases revoked on expiry by this manager, and
	// RevokeFailures its failed revocation attempts (each retry counts).
	Expired        uint64
	RevokeFailures uint64
}

// Stats returns a snapshot of the scheduler.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{
		Scheduled:   m.table.scheduled(),
		Active:      m.active,
		Irrevocable: m.irrevocable,
		Restoring:   m.restoring,
		Restored:    m.restoredN,

		Expired:        m.expired.Load(),
		RevokeFailures: m.revokeFailures.Load(),
	}
}

// IDs returns the ids of the leases the scheduler knows: every lease with
// an expiry, and every irrevocable one (all of them once the restore is
// done). The order is unspecified.
func (m *Manager) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.AppendSeq(make([]string, 0, m.table.known), m.table.ids())
}

// begin admits an API call: it fails with ErrStopped unless the manager
// runs, and otherwise counts the call in the wait group and returns a
// context cancelled when either ctx or the manager's life ends.
func (m *Manager) begin(ctx context.Context) (context.Context, func(), error) {
	m.mu.Lock()
	if m.state != stateRunning {
		m.mu.Unlock()
		return nil, nil, ErrStopped
	}
	m.wg.Add(1)
	life := m.life
	m.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(life, cancel)
	return ctx, func() {
		stop()
		cancel()
		m.wg.Done()
	}, nil
}

// enter is begin without a context of its own: it admits a call that the
// manager's Stop waits for but does not cancel.
func (m *Manager) enter() (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateRunning {
		return nil, ErrStopped
	}
	m.wg.Add(1)
	return m.wg.Done, nil
}

// claim marks a lease as being worked on; done is closed on release.
type claim struct {
	done     chan struct{}
	revoking bool
}

// claimMode says what acquire does.
type claimMode int

const (
	// claimChange: the holder may change the lease.
	claimChange claimMode = iota
	// claimRevoke: the holder is revoking the lease.
	claimRevoke
	// claimUnlessRevoking: like claimChange, but give up (skipped) when
	// the lease is being revoked.
	claimUnlessRevoking
)

// acquire waits until no one else holds the lease's claim and takes it.
// release must be called exactly once.
func (m *Manager) acquire(ctx context.Context, id string, mode claimMode) (release func(), skipped bool, err error) {
	for {
		m.cmu.Lock()
		c, held := m.claims[id]
		if !held {
			c = &claim{done: make(chan struct{}), revoking: mode == claimRevoke}
			m.claims[id] = c
			m.cmu.Unlock()
			return func() {
				m.cmu.Lock()
				delete(m.claims, id)
				m.cmu.Unlock()
				close(c.done)
			}, false, nil
		}
		m.cmu.Unlock()
		if mode == claimUnlessRevoking && c.revoking {
			return nil, true, nil
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// now is the clock's time in UTC, without a monotonic reading, so that it
// compares the same before and after a trip through storage.
func (m *Manager) now() time.Time { return m.clk.Now().UTC() }

// jitter returns a duration in [0, window) derived from id and salt: the
// same lease gets the same offset, different leases different ones.
func (m *Manager) jitter(id string, salt uint64, window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(id)
	var b [8]byte
	for i := range b {
		b[i] = byte(salt >> (8 * i))
	}
	h.Write(b[:])
	return time.Duration(h.Sum64() % uint64(window))
}

// dueFor is when the scheduler should act on a lease expiring at expire:
// the expire time (or now, if it has passed) plus the lease's spread
// jitter. Zero for a lease that never expires.
func (m *Manager) dueFor(id string, expire, now time.Time) time.Time {
	if expire.IsZero() {
		return time.Time{}
	}
	if expire.Before(now) {
		expire = now
	}
	return expire.Add(m.jitter(id, 0, m.cfg.SpreadWindow))
}

// backoff is the delay before retrying a revocation that failed attempts
// times: exponential from RetryInitial, capped at RetryMax, with the upper
// half jittered.
func (m *Manager) backoff(id string, attempts int) time.Duration {
	d := m.cfg.RetryInitial
	for i := 1; i < attempts && d < m.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, m.cfg.RetryMax)
	half := d / 2
	return half + m.jitter(id, uint64(attempts), d-half+1)
}
