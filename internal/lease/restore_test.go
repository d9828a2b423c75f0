package lease

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestRestoreReschedules(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	l1 := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Minute})
	l2 := f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/h", TTL: 2 * time.Minute, TokenKey: "h"})
	never := f.register(RegisterRequest{Path: "kv/x"})

	f.restart() // a new manager over the same storage
	if s := f.m.Stats(); s.Scheduled != 2 || s.Restored != 3 || s.Restoring {
		t.Fatalf("after restore: %+v, want 2 scheduled of 3 restored", s)
	}
	f.advance(time.Minute)
	if !f.rv.revoked(l1.ID) || f.rv.count(l2.ID) != 0 {
		t.Fatal("first lease not revoked on time after restore")
	}
	f.advance(time.Minute)
	if !f.rv.revoked(l2.ID) || f.rv.count(never.ID) != 0 || !f.exists(never.ID) {
		t.Fatal("second lease not revoked on time after restore")
	}
}

// TestRestoreExpiredLeasesSpread: leases that expired while the server
// was sealed are revoked after the restore, spread over the window and
// within the rate.
func TestRestoreExpiredLeasesSpread(t *testing.T) {
	t.Parallel()
	const n, window, rate, burst = 500, 10 * time.Second, 100, 10
	f := newFixture(t, nil)
	for range n {
		f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Minute})
	}
	if err := f.m.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(24 * time.Hour) // sealed for a day
	f.cfg.SpreadWindow, f.cfg.RevokeRate, f.cfg.RevokeBurst = window, rate, burst
	f.start()
	unsealed := f.clk.Now()
	for f.rv.total() < n {
		if f.clk.Now().After(unsealed.Add(time.Minute)) {
			t.Fatalf("%d of %d revoked a minute after the restore", f.rv.total(), n)
		}
		f.advance(100 * time.Millisecond)
	}
	perSecond := map[int]int{}
	for _, at := range f.rv.times {
		perSecond[int(at.Sub(unsealed)/time.Second)]++
	}
	for s, c := range perSecond {
		if c > rate+burst {
			t.Errorf("second %d after the restore: %d revocations, limit %d", s, c, rate+burst)
		}
	}
	if len(perSecond) < n/(rate+burst) {
		t.Errorf("revocations fell in %d seconds only: %v", len(perSecond), perSecond)
	}
}

// TestOperationsDuringRestore: while the restore has not loaded anything,
// every operation works from storage, and the restore does not undo them.
func TestOperationsDuringRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	renewed := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Minute, Renewable: true})
	revoked := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Minute})
	queued := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Hour})
	plain := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Minute})
	if err := f.m.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	gate := make(chan struct{})
	cfg := f.cfg
	cfg.Storage = &gatedStorage{Storage: f.mem, gate: gate}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	f.m = m
	if s := m.Stats(); !s.Restoring || s.Scheduled != 0 {
		t.Fatalf("restore not blocked: %+v", s)
	}

	if l, err := m.Lookup(ctx, plain.ID); err != nil || l.ID != plain.ID {
		t.Fatalf("Lookup during restore = %v, %v", l, err)
	}
	if _, err := m.Renew(ctx, renewed.ID, time.Hour); err != nil {
		t.Fatalf("Renew during restore: %v", err)
	}
	if err := m.Revoke(ctx, revoked.ID, false); err != nil {
		t.Fatalf("Revoke during restore: %v", err)
	}
	if err := m.RevokeAsync(ctx, queued.ID); err != nil {
		t.Fatalf("RevokeAsync during restore: %v", err)
	}
	fresh, err := m.Register(ctx, RegisterRequest{Kind: KindSecret, Path: "db/creds/rw", TTL: time.Minute})
	if err != nil {
		t.Fatalf("Register during restore: %v", err)
	}
	waitIdle(t, m)
	if !f.rv.revoked(queued.ID) {
		t.Fatal("queued lease not revoked during restore")
	}

	close(gate)
	<-m.Restored()
	waitIdle(t, m)
	m.mu.Lock()
	resurrected := m.table.lookup(revoked.ID) >= 0
	m.mu.Unlock()
	if resurrected {
		t.Error("the restore brought back a lease revoked during it")
	}
	f.advance(time.Minute)
	if !f.rv.revoked(plain.ID) || !f.rv.revoked(fresh.ID) {
		t.Error("leases restored or registered during the restore not revoked on time")
	}
	if f.rv.count(renewed.ID) != 0 {
		t.Error("the restore scheduled a renewed lease at its old expiry")
	}
	f.advance(time.Hour)
	for _, id := range []string{renewed.ID, revoked.ID, queued.ID, plain.ID, fresh.ID} {
		if c := f.rv.count(id); c != 1 {
			t.Errorf("%s revoked %d times, want once", id, c)
		}
	}
}

// flakyStorage fails the restore's first List.
type flakyStorage struct {
	logical.Storage
	once sync.Once
}

func (s *flakyStorage) List(ctx context.Context, prefix string) ([]string, error) {
	fail := false
	if prefix == recordPrefix {
		s.once.Do(func() { fail = true })
	}
	if fail {
		return nil, errors.New("storage unavailable")
	}
	return s.Storage.List(ctx, prefix)
}

func TestRestoreRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	l := f.register(RegisterRequest{Path: "p", TTL: time.Hour})
	if err := f.m.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	// One unreadable record is logged and skipped.
	if err := f.mem.Put(t.Context(), recordKey("p/junk"), []byte("{")); err != nil {
		t.Fatal(err)
	}
	cfg := f.cfg
	cfg.Storage = &flakyStorage{Storage: f.mem}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	f.m = m
	// The restore fails and sleeps RetryInitial on the clock.
	waitFor(t, func() bool { return f.clk.Pending() == 1 })
	select {
	case <-m.Restored():
		t.Fatal("restore finished despite the storage failure")
	default:
	}
	f.clk.Advance(DefaultRetryInitial)
	<-m.Restored()
	if s := m.Stats(); s.Restored != 1 || s.Scheduled != 1 {
		t.Fatalf("after the retry: %+v", s)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "lease restore failed") || !strings.Contains(logs, "unreadable lease record") {
		t.Errorf("log lacks the failure or the unreadable record:\n%s", logs)
	}
	f.advance(time.Hour)
	if !f.rv.revoked(l.ID) {
		t.Error("restored lease not revoked")
	}
}
