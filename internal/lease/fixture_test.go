package lease

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// epoch is the fake clock's start.
var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeRevoker stands for core: it records every call and fails as told.
type fakeRevoker struct {
	clk *clock.Fake

	mu       sync.Mutex
	calls    map[string]int       // revoke calls per lease id
	ok       map[string]time.Time // successful revocations
	times    []time.Time          // clock time of each successful call
	attempts map[string][]time.Time
	inflight int
	maxIn    int
	fail     func(l *Lease) error
	// hook runs inside Revoke, before fail (nested calls).
	hook func(ctx context.Context, l *Lease) error
}

func newFakeRevoker(clk *clock.Fake) *fakeRevoker {
	return &fakeRevoker{clk: clk, calls: map[string]int{}, ok: map[string]time.Time{}, attempts: map[string][]time.Time{}}
}

func (r *fakeRevoker) Revoke(ctx context.Context, l *Lease) error {
	r.mu.Lock()
	r.inflight++
	r.maxIn = max(r.maxIn, r.inflight)
	r.calls[l.ID]++
	now := r.clk.Now()
	r.attempts[l.ID] = append(r.attempts[l.ID], now)
	fail, hook := r.fail, r.hook
	r.mu.Unlock()
	// Let other workers in, so that concurrency shows.
	runtime.Gosched()
	var err error
	if hook != nil {
		err = hook(ctx, l)
	}
	if err == nil && fail != nil {
		err = fail(l)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight--
	if err == nil {
		r.ok[l.ID] = now
		r.times = append(r.times, now)
	}
	return err
}

func (r *fakeRevoker) setFail(f func(l *Lease) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = f
}

func (r *fakeRevoker) setHook(h func(ctx context.Context, l *Lease) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = h
}

func (r *fakeRevoker) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

func (r *fakeRevoker) revoked(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ok[id]
	return ok
}

func (r *fakeRevoker) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.times)
}

// fakeRenewer grants the increment, or def for zero.
type fakeRenewer struct {
	def time.Duration
	mu  sync.Mutex
	got []time.Duration
	err error
}

func (r *fakeRenewer) Renew(_ context.Context, _ *Lease, inc time.Duration) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, inc)
	if r.err != nil {
		return 0, r.err
	}
	if inc == 0 {
		return r.def, nil
	}
	return inc, nil
}

// fixture is a manager over in-memory storage and a fake clock.
type fixture struct {
	t    testing.TB
	clk  *clock.Fake
	st   logical.Storage
	mem  *logicaltest.Storage
	rv   *fakeRevoker
	rn   *fakeRenewer
	cfg  Config
	m    *Manager
	logs *testlog.Buffer
}

// newFixture returns a started manager. Tests get, unless they change it,
// no spread jitter and no rate limit, so that expiry happens exactly on
// time; tune changes the config.
func newFixture(t testing.TB, tune func(*Config)) *fixture {
	t.Helper()
	clk := clock.NewFake(epoch)
	mem := logicaltest.New()
	f := &fixture{t: t, clk: clk, mem: mem, st: mem, rv: newFakeRevoker(clk), rn: &fakeRenewer{def: time.Hour}, logs: &testlog.Buffer{}}
	f.cfg = Config{
		Storage:       mem,
		Clock:         clk,
		Revoker:       f.rv,
		Renewer:       f.rn,
		Logger:        slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RevokeWorkers: 4,
		RevokeRate:    -1,
		SpreadWindow:  -1,
	}
	if tune != nil {
		tune(&f.cfg)
	}
	f.st = f.cfg.Storage
	f.start()
	return f
}

// start builds and starts a manager over the fixture's storage and waits
// for its restore.
func (f *fixture) start() {
	f.t.Helper()
	m, err := New(f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = m.Stop(context.Background()) })
	f.m = m
	<-m.Restored()
	waitIdle(f.t, m)
}

// restart stops the manager and starts a new one over the same storage,
// as an unseal after a seal does.
func (f *fixture) restart() {
	f.t.Helper()
	if err := f.m.Stop(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.start()
}

// advance moves the clock and waits until the manager has done all it
// had to do up to the new time.
func (f *fixture) advance(d time.Duration) {
	f.t.Helper()
	f.clk.Advance(d)
	waitIdle(f.t, f.m)
}

func (f *fixture) register(req RegisterRequest) *Lease {
	f.t.Helper()
	if req.Kind == "" {
		req.Kind = KindSecret
	}
	l, err := f.m.Register(context.Background(), req)
	if err != nil {
		f.t.Fatalf("Register(%+v): %v", req, err)
	}
	return l
}

func (f *fixture) exists(id string) bool {
	f.t.Helper()
	_, err := f.m.Lookup(context.Background(), id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		f.t.Fatal(err)
	}
	return err == nil
}

// keys returns the stored keys under prefix.
func (f *fixture) keys(prefix string) []string {
	var out []string
	for _, k := range f.mem.Keys() {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// idle reports whether the scheduler has nothing left to do at the
// current time: no lease with a worker, and the dispatcher asleep until a
// later time (or for good).
func (m *Manager) idle() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active == 0 && len(m.wake) == 0 && (m.wakeAt.IsZero() || m.wakeAt.After(m.now()))
}

// waitIdle waits until the manager is idle at the current fake time. It
// yields instead of sleeping; the deadline only turns a hang into a
// failure.
func waitIdle(t testing.TB, m *Manager) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; !m.idle(); i++ {
		if i%1024 == 0 && time.Now().After(deadline) {
			t.Fatalf("manager not idle: %+v", m.Stats())
		}
		runtime.Gosched()
	}
}

// waitFor waits until cond holds, yielding in between.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; !cond(); i++ {
		if i%1024 == 0 && time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		runtime.Gosched()
	}
}

// leaseGoroutines counts goroutines running code of this package's
// manager.
func leaseGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "internal/lease.(*Manager)") {
			count++
		}
	}
	return count
}

// plainStorage hides the transactions of the storage it wraps, so that
// the manager's ordered writes are exercised.
type plainStorage struct{ logical.Storage }

// countingStorage records the List prefixes and Get keys it serves.
type countingStorage struct {
	logical.Storage
	mu    sync.Mutex
	lists []string
	gets  []string
}

func (c *countingStorage) Get(ctx context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	c.gets = append(c.gets, key)
	c.mu.Unlock()
	return c.Storage.Get(ctx, key)
}

func (c *countingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	c.mu.Lock()
	c.lists = append(c.lists, prefix)
	c.mu.Unlock()
	return c.Storage.List(ctx, prefix)
}

func (c *countingStorage) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lists, c.gets = nil, nil
}

// gatedStorage blocks the restore's first List until the gate opens.
type gatedStorage struct {
	logical.Storage
	gate chan struct{}
}

func (g *gatedStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if prefix == recordPrefix {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Storage.List(ctx, prefix)
}
