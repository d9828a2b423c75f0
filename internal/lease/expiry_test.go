package lease

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestExpiryRevokesOnTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	l := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Minute, TokenKey: "tok"})
	never := f.register(RegisterRequest{Path: "db/creds/ro"})
	f.advance(time.Minute - time.Nanosecond)
	if f.rv.count(l.ID) != 0 || !f.exists(l.ID) {
		t.Fatal("revoked before its expiry")
	}
	if ids := f.m.IDs(); !slices.Equal(ids, []string{l.ID}) {
		t.Errorf("IDs() = %q, want the one lease that expires", ids)
	}
	f.advance(time.Nanosecond)
	if got := f.rv.ok[l.ID]; !got.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("revoked at %v, want %v", got, epoch.Add(time.Minute))
	}
	if f.exists(l.ID) || len(f.keys("token/")) != 0 {
		t.Fatalf("expired lease left %q", f.mem.Keys())
	}
	if s := f.m.Stats(); s.Expired != 1 || s.RevokeFailures != 0 || len(f.m.IDs()) != 0 {
		t.Errorf("after expiry: Stats = %+v, IDs = %q", s, f.m.IDs())
	}
	f.advance(1000 * time.Hour)
	if f.rv.count(never.ID) != 0 || !f.exists(never.ID) {
		t.Fatal("a lease without expiry was revoked")
	}
	if n := f.clk.Pending(); n > 1 {
		t.Errorf("%d clock timers pending; the manager uses one", n)
	}
}

func TestExpirySpreadWindow(t *testing.T) {
	t.Parallel()
	const n, window = 2000, 10 * time.Second
	f := newFixture(t, func(c *Config) { c.SpreadWindow = window })
	for range n {
		f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Minute})
	}
	if n := f.clk.Pending(); n != 1 {
		t.Fatalf("%d timers for %d leases; want one", n, n)
	}
	expire := epoch.Add(time.Minute)
	f.advance(time.Minute - time.Nanosecond)
	for f.clk.Now().Before(expire.Add(window)) {
		f.advance(100 * time.Millisecond)
	}
	if got := f.rv.total(); got != n {
		t.Fatalf("%d revoked within the window, want %d", got, n)
	}
	// The jitter spreads the revocations over the window: each second
	// gets about n/10 of them, none gets a burst.
	perSecond := map[int]int{}
	for _, at := range f.rv.times {
		if at.Before(expire) || !at.Before(expire.Add(window)) {
			t.Fatalf("revoked at %v, outside [%v, %v)", at, expire, expire.Add(window))
		}
		perSecond[int(at.Sub(expire)/time.Second)]++
	}
	for s := range 10 {
		if c := perSecond[s]; c < n/10/2 || c > n/10*2 {
			t.Errorf("second %d: %d revocations, want about %d", s, c, n/10)
		}
	}
}

// TestMassExpirySpread: 10,000 leases expiring at the same instant are
// revoked at the configured rate, never in one burst, with at most
// RevokeWorkers revocations in flight.
func TestMassExpirySpread(t *testing.T) {
	t.Parallel()
	const (
		n       = 10_000
		rate    = 100 // per second
		burst   = 10
		workers = 4
		window  = 5 * time.Second
		step    = 100 * time.Millisecond
	)
	f := newFixture(t, func(c *Config) {
		c.RevokeRate, c.RevokeBurst, c.RevokeWorkers, c.SpreadWindow = rate, burst, workers, window
	})
	for range n {
		f.register(RegisterRequest{Path: "ci/creds/job", TTL: time.Hour})
	}
	expire := epoch.Add(time.Hour)
	f.advance(time.Hour)
	steps := 0
	for f.rv.total() < n {
		if steps++; steps > 2*n/rate*int(time.Second/step) {
			t.Fatalf("only %d of %d revoked after %d steps", f.rv.total(), n, steps)
		}
		f.advance(step)
	}
	times := slices.Clone(f.rv.times)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	first, last := times[0], times[len(times)-1]
	if first.Before(expire) {
		t.Fatalf("first revocation at %v, before the expiry %v", first, expire)
	}
	// Any one-second window holds at most burst + rate revocations.
	for i, j := 0, 0; i < len(times); i++ {
		for j < len(times) && times[j].Before(times[i].Add(time.Second)) {
			j++
		}
		if c := j - i; c > burst+rate {
			t.Fatalf("%d revocations in the second from %v; limit %d", c, times[i].Sub(expire), burst+rate)
		}
	}
	// The whole run takes (n - burst) / rate seconds, give or take the
	// window and a step.
	span := last.Sub(expire)
	minSpan := time.Duration(n-burst) * time.Second / rate
	if span < minSpan-step || span > minSpan+window+step {
		t.Errorf("revocations spread over %v, want about %v", span, minSpan)
	}
	if f.rv.maxIn > workers {
		t.Errorf("%d revocations in flight at once; limit %d", f.rv.maxIn, workers)
	}
	t.Logf("%d leases revoked over %v; at most %d in flight", n, span, f.rv.maxIn)
}

func TestRetryBackoffThenIrrevocable(t *testing.T) {
	t.Parallel()
	const initial, maxDelay, attempts = 10 * time.Second, 40 * time.Second, 5
	f := newFixture(t, func(c *Config) {
		c.RetryInitial, c.RetryMax, c.MaxAttempts = initial, maxDelay, attempts
	})
	ctx := t.Context()
	secretText := "p4ssw0rd-value"
	l := f.register(RegisterRequest{Path: "database/creds/ro", TTL: time.Minute, TokenKey: "tok",
		Data: map[string]any{"password": secretText}})
	other := f.register(RegisterRequest{Path: "database/creds/ro", TTL: time.Hour})
	f.rv.setFail(func(x *Lease) error {
		if x.ID != l.ID {
			return nil
		}
		return errors.New("dial tcp 10.0.0.5:5432: connection refused " + strings.Repeat("x", 300))
	})

	f.advance(time.Minute)
	for range 600 { // 10 minutes of fake time, 1s at a time
		f.advance(time.Second)
	}
	got := f.rv.attempts[l.ID]
	if len(got) != attempts {
		t.Fatalf("%d attempts, want %d: %v", len(got), attempts, got)
	}
	for i := 1; i < len(got); i++ {
		d := min(initial<<(i-1), maxDelay)
		if gap := got[i].Sub(got[i-1]); gap < d/2-time.Second || gap > d+time.Second {
			t.Errorf("retry %d after %v, want within [%v, %v]", i, gap, d/2, d)
		}
	}
	check := func(stage string) {
		t.Helper()
		lease, err := f.m.Lookup(ctx, l.ID)
		if err != nil {
			t.Fatalf("%s: irrevocable lease lost: %v", stage, err)
		}
		if !lease.Irrevocable || lease.RevokeAttempts != attempts || !strings.Contains(lease.RevokeError, "connection refused") || len(lease.RevokeError) > maxErrorLen+len("…") {
			t.Errorf("%s: lease = irrevocable %v attempts %d error %q", stage, lease.Irrevocable, lease.RevokeAttempts, lease.RevokeError)
		}
		list, err := f.m.Irrevocable(ctx)
		if err != nil || len(list) != 1 || list[0].ID != l.ID {
			t.Errorf("%s: Irrevocable() = %v, %v", stage, list, err)
		}
		if n, err := f.m.IrrevocableCount(ctx); err != nil || n != 1 {
			t.Errorf("%s: IrrevocableCount = %d, %v", stage, n, err)
		}
		if s := f.m.Stats(); s.Irrevocable != 1 || s.Expired != 0 {
			t.Errorf("%s: Stats = %+v", stage, s)
		}
		// Not retried on its own.
		before := f.rv.count(l.ID)
		f.advance(24 * time.Hour)
		if f.rv.count(l.ID) != before {
			t.Errorf("%s: irrevocable lease retried", stage)
		}
	}
	if s := f.m.Stats(); s.RevokeFailures != attempts {
		t.Errorf("RevokeFailures = %d, want %d", s.RevokeFailures, attempts)
	}
	check("before restart")
	f.restart()
	check("after restart")
	if logs := f.logs.String(); strings.Contains(logs, secretText) || !strings.Contains(logs, "lease is irrevocable") {
		t.Errorf("log: irrevocable not logged, or a secret logged:\n%s", logs)
	}
	if !f.rv.revoked(other.ID) || f.exists(other.ID) {
		t.Error("another lease expired meanwhile and was not revoked")
	}

	// The operator's ways out: a plain revoke fails again, force works.
	if err := f.m.Revoke(ctx, l.ID, false); err == nil {
		t.Fatal("Revoke of an irrevocable lease with a failing mount succeeded")
	}
	if err := f.m.Revoke(ctx, l.ID, true); err != nil {
		t.Fatal(err)
	}
	if n, err := f.m.IrrevocableCount(ctx); err != nil || n != 0 || len(f.mem.Keys()) != 0 {
		t.Fatalf("after revoke-force: count %d %v, keys %q", n, err, f.mem.Keys())
	}
}

func TestRevokeAsyncRequeuesIrrevocable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.MaxAttempts = 1 })
	f.rv.setFail(func(*Lease) error { return errors.New("down") })
	l := f.register(RegisterRequest{Path: "p", TTL: time.Minute})
	f.advance(time.Minute)
	if got, _ := f.m.Lookup(t.Context(), l.ID); got == nil || !got.Irrevocable {
		t.Fatal("lease not irrevocable after one failure")
	}
	f.rv.setFail(nil)
	if err := f.m.RevokeAsync(t.Context(), l.ID); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, f.m)
	if f.exists(l.ID) || len(f.mem.Keys()) != 0 || f.m.Stats().Irrevocable != 0 {
		t.Fatalf("requeued irrevocable lease not revoked: %q %+v", f.mem.Keys(), f.m.Stats())
	}
}

// TestConcurrentRenewRevokeExpiry races renewals, a sync revoke, an async
// revoke and the expiry of the same leases: each is revoked exactly once.
func TestConcurrentRenewRevokeExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	ok := func(err error) bool {
		return err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExpired)
	}
	for round := range 50 {
		var ids []string
		for range 4 {
			ids = append(ids, f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Second, Renewable: true}).ID)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for _, id := range ids {
			wg.Go(func() {
				for range 3 {
					if _, err := f.m.Renew(ctx, id, time.Second); !ok(err) {
						errs <- fmt.Errorf("renew: %w", err)
					}
				}
			})
			wg.Go(func() {
				if err := f.m.Revoke(ctx, id, false); !ok(err) {
					errs <- fmt.Errorf("revoke: %w", err)
				}
			})
			wg.Go(func() {
				if err := f.m.RevokeAsync(ctx, id); !ok(err) {
					errs <- fmt.Errorf("revoke async: %w", err)
				}
			})
		}
		wg.Go(func() { f.clk.Advance(time.Second) })
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		waitIdle(t, f.m)
		for _, id := range ids {
			if c := f.rv.count(id); c != 1 || f.exists(id) {
				t.Fatalf("round %d: %s revoked %d times, exists %v", round, id, c, f.exists(id))
			}
		}
	}
	if s := f.m.Stats(); s.Scheduled != 0 || s.Active != 0 {
		t.Errorf("stats after everything was revoked: %+v", s)
	}
}

func TestStopLeavesNoGoroutine(t *testing.T) {
	// Not parallel: it counts the goroutines of every manager.
	f := newFixture(t, func(c *Config) { c.RevokeWorkers = 8 })
	ctx := t.Context()
	for range 100 {
		f.register(RegisterRequest{Path: "p", TTL: time.Minute})
	}
	// A revocation in flight when Stop comes: it must be cancelled.
	started := make(chan struct{}, 1)
	f.rv.setHook(func(ctx context.Context, l *Lease) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
	f.clk.Advance(time.Minute)
	<-started
	if leaseGoroutines() == 0 {
		t.Fatal("no manager goroutine seen while running")
	}
	if err := f.m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Stop waited for every goroutine; one may still be unwinding.
	deadline := time.Now().Add(10 * time.Second)
	for leaseGoroutines() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d manager goroutines outlived Stop", leaseGoroutines())
		}
		runtime.Gosched()
	}
	// The interrupted revocations are not counted as failures.
	var ids []string
	for _, k := range f.keys(recordPrefix) {
		ids = append(ids, strings.TrimPrefix(k, recordPrefix))
	}
	if len(ids) == 0 {
		t.Fatal("every lease revoked despite the blocked revoker")
	}
	for _, k := range ids {
		b, _ := f.mem.Get(ctx, recordKey(k))
		l, err := decode(k, b)
		if err != nil || l.RevokeAttempts != 0 {
			t.Fatalf("%s after Stop: %+v %v", k, l, err)
		}
	}
}
