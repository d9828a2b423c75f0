package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/storage"
)

// Liveness bounds. They are generous: a test fails on them only if
// something never happens, not if it is slow.
const (
	eventually = 20 * time.Second
	// quickTTL is the lock TTL of tests that wait for an expiry.
	quickTTL = time.Second
	// longTTL is the lock TTL of tests that must see a takeover happen
	// without any expiry.
	longTTL = 60 * time.Second
)

func openHA(t *testing.T, url string, ttl time.Duration) *Backend {
	t.Helper()
	return open(t, url, Options{HAEnabled: true, LockTTL: ttl, RetryInterval: 50 * time.Millisecond, MaxParallel: 8})
}

// campaign wins the lock for id or fails the test.
func campaign(t *testing.T, b *Backend, id string) storage.Leadership {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), eventually)
	defer cancel()
	l, err := b.Campaign(ctx, id, "https://"+id+":8200")
	if err != nil {
		t.Fatalf("Campaign(%s): %v", id, err)
	}
	return l
}

// campaignAsync starts a Campaign and returns where its result arrives.
func campaignAsync(t *testing.T, b *Backend, id string) <-chan storage.Leadership {
	t.Helper()
	ch := make(chan storage.Leadership, 1)
	go func() {
		l, err := b.Campaign(t.Context(), id, "https://"+id+":8200")
		if err != nil {
			if t.Context().Err() == nil {
				t.Errorf("Campaign(%s): %v", id, err)
			}
			close(ch)
			return
		}
		ch <- l
	}()
	return ch
}

// await waits for a campaign started by campaignAsync to win.
func await(t *testing.T, ch <-chan storage.Leadership, within time.Duration, what string) storage.Leadership {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the campaign failed", what)
		}
		return l
	case <-time.After(within):
		t.Fatalf("%s: no takeover within %s", what, within)
	}
	return nil
}

func waitLost(t *testing.T, l storage.Leadership, what string) {
	t.Helper()
	select {
	case <-l.Lost():
	case <-time.After(eventually):
		t.Fatalf("%s: Lost was not closed", what)
	}
}

func notLost(t *testing.T, l storage.Leadership, what string) {
	t.Helper()
	select {
	case <-l.Lost():
		t.Fatalf("%s: Lost is closed", what)
	default:
	}
}

func wantLeader(t *testing.T, b *Backend, id string) {
	t.Helper()
	h, ok, err := b.Leader(t.Context())
	if err != nil {
		t.Fatalf("Leader: %v", err)
	}
	switch {
	case id == "" && ok:
		t.Fatalf("Leader = %+v, want none", h)
	case id != "" && (!ok || h.ID != id || h.Addr != "https://"+id+":8200"):
		t.Fatalf("Leader = %+v, %v; want %s", h, ok, id)
	}
}

// fencedWrites tries every kind of write through b and checks that each
// fails with ErrFenced and that the content (read through check) did not
// change.
func fencedWrites(t *testing.T, b *Backend, check *Backend, what string) {
	t.Helper()
	ctx := t.Context()
	before := contents(t, check)
	errs := map[string]error{
		"Put":         b.Put(ctx, "k", []byte("from the old leader")),
		"Put new":     b.Put(ctx, "new", []byte("from the old leader")),
		"Delete":      b.Delete(ctx, "k"),
		"Transaction": b.Transaction(ctx, []storage.Op{{Key: "k", Delete: true}, {Key: "t", Value: []byte("x")}}),
		"Restore":     b.Restore(ctx, entries(map[string]string{"r": "x"})),
	}
	for op, err := range errs {
		if !errors.Is(err, storage.ErrFenced) {
			t.Errorf("%s: %s = %v, want ErrFenced", what, op, err)
		}
	}
	if after := contents(t, check); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("%s: refused writes changed the content from %v to %v", what, before, after)
	}
}

func TestHADisabled(t *testing.T) {
	b := open(t, pgtest.New(t).AdminURL(), Options{})
	if b.HAEnabled() {
		t.Fatal("HAEnabled")
	}
	if _, err := b.Campaign(t.Context(), "a", "x"); !errors.Is(err, ErrHADisabled) {
		t.Errorf("Campaign = %v", err)
	}
	if _, _, err := b.Leader(t.Context()); !errors.Is(err, ErrHADisabled) {
		t.Errorf("Leader = %v", err)
	}
}

// TestHACampaignAndRelease: A wins, B waits and sees A as the leader;
// A releases and B takes over at once; A is fenced from then on.
func TestHACampaignAndRelease(t *testing.T) {
	url := pgtest.New(t).AdminURL()
	a, b := openHA(t, url, longTTL), openHA(t, url, longTTL)
	ctx := t.Context()

	// Before any Campaign, nothing is fenced and nobody leads.
	mustPut(t, a, "k", []byte("init"))
	mustPut(t, b, "k2", []byte("init"))
	wantLeader(t, a, "")

	la := campaign(t, a, "a")
	wantLeader(t, a, "a")
	wantLeader(t, b, "a")
	mustPut(t, a, "k", []byte("a1"))

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := b.Campaign(short, "b", "https://b:8200")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("B's Campaign while A leads = %v, want it to block until its context ends", err)
	}
	if _, err := a.Campaign(ctx, "a", "x"); err == nil {
		t.Fatal("a second Campaign of the leader succeeded")
	}

	ch := campaignAsync(t, b, "b")
	if err := la.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	waitLost(t, la, "A after Release")
	// The TTL is a minute: only the release explains a quick takeover.
	lb := await(t, ch, eventually, "B after A's release")
	wantLeader(t, a, "b")
	notLost(t, lb, "B")
	mustPut(t, b, "k", []byte("b1"))
	fencedWrites(t, a, b, "A after its release")
	if err := la.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}

	// A can campaign again once B lets go, and writes again.
	ch = campaignAsync(t, a, "a")
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	await(t, ch, eventually, "A again")
	mustPut(t, a, "k", []byte("a2"))
	fencedWrites(t, b, a, "B after its release")
}

// TestHAKill: the leader's lock connection ends abruptly, as when its
// process is killed: a standby takes over long before the TTL, and the
// old leader, which still believes it leads (its lease has a minute
// left), has its writes refused by the database. It runs as an ordinary
// role, to show pg_stat_activity tells it enough.
func TestHAKill(t *testing.T) {
	db := pgtest.New(t)
	url := roleURL(t, db)
	a, b := openHA(t, url, longTTL), openHA(t, url, longTTL)
	la := campaign(t, a, "a")
	mustPut(t, a, "k", []byte("a"))
	ch := campaignAsync(t, b, "b")

	// A dies: no more renewals, its connection gone.
	a.hooks.pauseRenewals.Store(true)
	start := time.Now()
	db.Exec(t, "SELECT pg_terminate_backend(holder_pid, 10000) FROM vigil_ha_locks")
	lb := await(t, ch, longTTL/3, "B after A's death")
	t.Logf("B took over %s after A's connection ended (TTL %s)", time.Since(start).Round(time.Millisecond), longTTL)
	wantLeader(t, b, "b")

	if !la.(*leadership).valid() {
		t.Fatal("A's local lease ended: the test would not show the database's check")
	}
	fencedWrites(t, a, b, "A after the takeover")
	// The refusal told A it lost.
	waitLost(t, la, "A after a refused write")
	notLost(t, lb, "B")
	mustPut(t, b, "k", []byte("b"))
}

// TestHAFreeze: the leader stops renewing, as a frozen process would.
// After the TTL a standby takes over; the old leader notices (Lost) and
// its writes fail, both on its own check and, when that is skipped as by
// a process that resumed without noticing, on the database's.
func TestHAFreeze(t *testing.T) {
	url := pgtest.New(t).AdminURL()
	a, b := openHA(t, url, quickTTL), openHA(t, url, quickTTL)
	ctx := t.Context()
	la := campaign(t, a, "a")
	mustPut(t, a, "k", []byte("a"))
	ch := campaignAsync(t, b, "b")

	// A writes all along, as a paused process that wakes up and goes on
	// would, with only the database to stop it.
	a.hooks.pauseRenewals.Store(true)
	a.hooks.skipLocalFence.Store(true)
	stop := make(chan struct{})
	var refused atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := a.Put(ctx, "k", []byte(fmt.Sprintf("a%d", i)))
			switch {
			case errors.Is(err, storage.ErrFenced):
				refused.Add(1)
			case err != nil:
				t.Errorf("A's Put: %v", err)
				return
			}
		}
	})

	lb := await(t, ch, eventually, "B after A froze")
	waitLost(t, la, "A after its lease ran out")
	mustPut(t, b, "k", []byte("b"))
	// Let A's writes go on until some more were refused after B's.
	n := refused.Load()
	deadline := time.Now().Add(eventually)
	for refused.Load() < n+20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if refused.Load() < n+20 {
		t.Fatal("A's writes stopped being attempted")
	}
	// No write of A's landed after B's takeover: B's write is there.
	if got := mustGet(t, b, "k"); string(got) != "b" {
		t.Fatalf("k = %q after B's takeover and write: A wrote after losing the lock", got)
	}

	a.hooks.skipLocalFence.Store(false)
	fencedWrites(t, a, b, "A, knowing it lost")
	a.hooks.skipLocalFence.Store(true)
	fencedWrites(t, a, b, "A, believing it leads")
	notLost(t, lb, "B")
}

// TestHAExpiredWithoutTakeover: with no standby to take over, a leader
// whose lease expired in the database still cannot write.
func TestHAExpiredWithoutTakeover(t *testing.T) {
	url := pgtest.New(t).AdminURL()
	a := openHA(t, url, quickTTL)
	la := campaign(t, a, "a")
	mustPut(t, a, "k", []byte("a"))
	a.hooks.pauseRenewals.Store(true)
	waitLost(t, la, "A")
	// The database's lease ends a little after A's own count.
	deadline := time.Now().Add(eventually)
	for {
		if _, ok, err := a.Leader(t.Context()); err != nil {
			t.Fatal(err)
		} else if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.hooks.skipLocalFence.Store(true)
	fencedWrites(t, a, a, "A after expiry")
}

// TestHARenewalConnectionReplaced: the leader's lock connection breaks
// while the leader lives (no standby around): it renews over a new
// connection and keeps the lock.
func TestHARenewalConnectionReplaced(t *testing.T) {
	db := pgtest.New(t)
	a := openHA(t, db.AdminURL(), 3*time.Second)
	la := campaign(t, a, "a")
	pid := db.QueryString(t, "SELECT holder_pid::text FROM vigil_ha_locks")
	db.Exec(t, "SELECT pg_terminate_backend(holder_pid, 10000) FROM vigil_ha_locks")
	deadline := time.Now().Add(eventually)
	for db.QueryString(t, "SELECT holder_pid::text FROM vigil_ha_locks") == pid {
		if time.Now().After(deadline) {
			t.Fatal("the lock was not renewed over a new connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	notLost(t, la, "A")
	mustPut(t, a, "k", []byte("still leading"))
	wantLeader(t, a, "a")
}

// TestHACloseReleases: closing the leader's backend hands the lock over
// at once.
func TestHACloseReleases(t *testing.T) {
	url := pgtest.New(t).AdminURL()
	a, b := openHA(t, url, longTTL), openHA(t, url, longTTL)
	la := campaign(t, a, "a")
	ch := campaignAsync(t, b, "b")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitLost(t, la, "A after Close")
	await(t, ch, eventually, "B after A closed")
	if _, err := a.Campaign(t.Context(), "a", "x"); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Campaign after Close = %v", err)
	}
}

// TestHACloseStopsCampaign: Close ends a waiting Campaign.
func TestHACloseStopsCampaign(t *testing.T) {
	url := pgtest.New(t).AdminURL()
	a, b := openHA(t, url, longTTL), openHA(t, url, longTTL)
	campaign(t, a, "a")
	errc := make(chan error, 1)
	go func() {
		_, err := b.Campaign(t.Context(), "b", "x")
		errc <- err
	}()
	// Let it start polling, then close under it.
	deadline := time.Now().Add(eventually)
	for b.campaignMu.TryLock() {
		b.campaignMu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("Campaign did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("Campaign = %v, want ErrClosed", err)
		}
	case <-time.After(eventually):
		t.Fatal("Campaign did not end on Close")
	}
}

// TestHAMutualExclusion: several nodes campaign at once, over and over;
// each winner writes fenced, checks it is the only one, and releases.
// Epochs grow with every takeover.
func TestHAMutualExclusion(t *testing.T) {
	url := pgtest.New(t).AdminURL()
	const nodes, rounds = 4, 5
	var (
		holding atomic.Int32
		mu      sync.Mutex
		epochs  []int64
	)
	var wg sync.WaitGroup
	for n := range nodes {
		b := openHA(t, url, longTTL)
		id := fmt.Sprintf("n%d", n)
		wg.Go(func() {
			ctx := t.Context()
			for r := range rounds {
				l, err := b.Campaign(ctx, id, "https://"+id+":8200")
				if err != nil {
					t.Errorf("%s: Campaign: %v", id, err)
					return
				}
				if holding.Add(1) != 1 {
					t.Errorf("%s: two nodes hold the lock", id)
				}
				lead := l.(*leadership)
				mu.Lock()
				epochs = append(epochs, lead.epoch)
				mu.Unlock()
				if err := b.Put(ctx, "owner", []byte(fmt.Sprintf("%s-%d", id, r))); err != nil {
					t.Errorf("%s: Put: %v", id, err)
				}
				if h, ok, err := b.Leader(ctx); err != nil || !ok || h.ID != id {
					t.Errorf("%s: Leader = %+v, %v, %v", id, h, ok, err)
				}
				holding.Add(-1)
				if err := l.Release(ctx); err != nil {
					t.Errorf("%s: Release: %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	if len(epochs) != nodes*rounds {
		t.Fatalf("%d leaderships, want %d", len(epochs), nodes*rounds)
	}
	for i := 1; i < len(epochs); i++ {
		if epochs[i] <= epochs[i-1] {
			t.Fatalf("epochs do not grow: %v", epochs)
		}
	}
}
