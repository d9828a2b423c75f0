package lifetime

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/clock"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	noJitter := Backoff{Min: time.Second, Max: 10 * time.Second, Rand: func() float64 { return 0 }}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		if got := noJitter.Delay(attempt); got != want {
			t.Errorf("Delay(%d) = %v, want %v", attempt, got, want)
		}
	}
	fullJitter := noJitter
	fullJitter.Rand = func() float64 { return 0.999 }
	if got := fullJitter.Delay(2); got < 1500*time.Millisecond || got > 2*time.Second {
		t.Errorf("jittered Delay(2) = %v, want in [1.5s, 2s]", got)
	}
	if got := (Backoff{}).Delay(100); got > DefaultMaxBackoff || got < DefaultMaxBackoff*3/4 {
		t.Errorf("default Delay(100) = %v", got)
	}
}

func TestTemporary(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused connection", &netError{syscall.ECONNREFUSED}, true},
		{"sealed", &api.ResponseError{StatusCode: http.StatusServiceUnavailable}, true},
		{"rate limited", &api.ResponseError{StatusCode: http.StatusTooManyRequests}, true},
		{"internal", &api.ResponseError{StatusCode: 500}, true},
		{"denied", &api.ResponseError{StatusCode: http.StatusForbidden}, false},
		{"lease not found", &api.ResponseError{StatusCode: http.StatusBadRequest}, false},
		{"canceled", context.Canceled, false},
		{"timed out", context.DeadlineExceeded, true},
		{"nil", nil, false},
	} {
		if got := Temporary(tt.err); got != tt.want {
			t.Errorf("%s: Temporary = %v, want %v", tt.name, got, tt.want)
		}
	}
}

type netError struct{ err error }

func (e *netError) Error() string { return "dial: " + e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// waitTimers waits until clk has n pending timers: the code under test is
// then asleep on it.
func waitTimers(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for clk.Pending() < n {
		if time.Now().After(deadline) {
			t.Fatalf("no timer after 10s (want %d, have %d)", n, clk.Pending())
		}
		runtime.Gosched()
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(0, 0))
	o := RetryOptions{Clock: clk, Backoff: Backoff{Min: time.Second, Max: time.Minute, Rand: func() float64 { return 0 }}, Retries: 3}
	var waits []time.Duration
	o.OnError = func(_ error, _ int, wait time.Duration) { waits = append(waits, wait) }
	unreachable := &netError{syscall.ECONNREFUSED}

	calls := 0
	done := make(chan error, 1)
	go func() {
		done <- Retry(t.Context(), o, func(context.Context) error { calls++; return unreachable })
	}()
	for range 2 {
		waitTimers(t, clk, 1)
		clk.Advance(time.Minute)
	}
	err := <-done
	if !errors.Is(err, ErrRetriesExhausted) || !errors.Is(err, syscall.ECONNREFUSED) || calls != 3 {
		t.Errorf("err %v after %d calls", err, calls)
	}
	if len(waits) != 2 || waits[0] != time.Second || waits[1] != 2*time.Second {
		t.Errorf("waits %v", waits)
	}

	// A refusal is returned at once; success ends the retries.
	denied := &api.ResponseError{StatusCode: http.StatusForbidden}
	if err := Retry(t.Context(), o, func(context.Context) error { return denied }); err != denied {
		t.Errorf("refusal: %v", err)
	}
	n := 0
	go func() {
		done <- Retry(t.Context(), RetryOptions{Clock: clk}, func(context.Context) error {
			n++
			if n < 3 {
				return unreachable
			}
			return nil
		})
	}()
	for range 2 {
		waitTimers(t, clk, 1)
		clk.Advance(time.Hour)
	}
	if err := <-done; err != nil || n != 3 {
		t.Errorf("forever: %v after %d", err, n)
	}
}

// renewer is a RenewFunc whose answers the test scripts.
type renewer struct {
	mu      sync.Mutex
	clk     *clock.Fake
	answers []answer
	at      []time.Duration // times of the calls, from the start
	start   time.Time
}

type answer struct {
	ttl       time.Duration
	renewable bool
	err       error
}

func (r *renewer) renew(context.Context) (time.Duration, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at = append(r.at, r.clk.Now().Sub(r.start))
	a := r.answers[0]
	if len(r.answers) > 1 {
		r.answers = r.answers[1:]
	}
	return a.ttl, a.renewable, a.err
}

func (r *renewer) calls() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.at...)
}

// keep runs Keep in a goroutine and advances the clock a step at a time
// until it returns.
func keep(t *testing.T, ttl time.Duration, renewable bool, r *renewer, o KeepOptions) error {
	t.Helper()
	clk := r.clk
	o.Clock = clk
	o.Rand = func() float64 { return 0 } // grace = 10% of the TTL
	done := make(chan error, 1)
	go func() { done <- Keep(t.Context(), ttl, renewable, r.renew, o) }()
	for {
		select {
		case err := <-done:
			return err
		default:
		}
		if clk.Pending() > 0 {
			clk.Advance(time.Second)
		} else {
			runtime.Gosched()
		}
	}
}

func TestKeepRenewsAtTwoThirds(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(0, 0))
	// Two renewals extend the TTL to 90s again; then the max TTL caps
	// it: 30s, then 6s, which is within the grace period (9s).
	r := &renewer{clk: clk, start: clk.Now(), answers: []answer{
		{90 * time.Second, true, nil}, {90 * time.Second, true, nil}, {30 * time.Second, true, nil}, {6 * time.Second, true, nil},
	}}
	err := keep(t, 90*time.Second, true, r, KeepOptions{})
	if !errors.Is(err, ErrExpiring) {
		t.Fatalf("Keep = %v, want ErrExpiring", err)
	}
	// 2/3 of 90s plus a third of the 9s grace: 63s between renewals.
	want := []time.Duration{63 * time.Second, 126 * time.Second, 189 * time.Second}
	got := r.calls()
	if len(got) < 3 {
		t.Fatalf("renewals at %v", got)
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("renewal %d at %v, want %v (all: %v)", i+1, got[i], w, got)
		}
	}
}

func TestKeepStopsOnRefusal(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(0, 0))
	denied := &api.ResponseError{StatusCode: http.StatusForbidden}
	r := &renewer{clk: clk, start: clk.Now(), answers: []answer{{err: denied}}}
	if err := keep(t, time.Minute, true, r, KeepOptions{}); !errors.As(err, new(*api.ResponseError)) {
		t.Errorf("Keep = %v, want the refusal", err)
	}
}

func TestKeepRetriesUntilExpiry(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(0, 0))
	r := &renewer{clk: clk, start: clk.Now(), answers: []answer{{err: &netError{syscall.ECONNREFUSED}}}}
	var retries int
	o := KeepOptions{RetryOptions: RetryOptions{Backoff: Backoff{Min: time.Second, Max: 4 * time.Second}, OnError: func(error, int, time.Duration) { retries++ }}}
	err := keep(t, time.Minute, true, r, o)
	if !errors.Is(err, ErrExpired) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Keep = %v, want ErrExpired", err)
	}
	if clk.Now().Sub(r.start) < time.Minute || retries < 3 {
		t.Errorf("gave up at %v after %d retries", clk.Now().Sub(r.start), retries)
	}

	// With a retry budget, the budget ends it first.
	clk = clock.NewFake(time.Unix(0, 0))
	r = &renewer{clk: clk, start: clk.Now(), answers: []answer{{err: &netError{syscall.ECONNREFUSED}}}}
	o.Retries = 2
	if err := keep(t, time.Hour, true, r, o); !errors.Is(err, ErrRetriesExhausted) || len(r.calls()) != 2 {
		t.Errorf("Keep = %v after %d renewals, want ErrRetriesExhausted after 2", err, len(r.calls()))
	}

	// An outage shorter than the TTL is ridden out.
	clk = clock.NewFake(time.Unix(0, 0))
	down := answer{err: &netError{syscall.ECONNREFUSED}}
	r = &renewer{clk: clk, start: clk.Now(), answers: []answer{down, down, {time.Minute, false, nil}}}
	if err := keep(t, time.Minute, true, r, KeepOptions{}); !errors.Is(err, ErrExpiring) || len(r.calls()) != 3 {
		t.Errorf("Keep = %v after %d renewals", err, len(r.calls()))
	}
}

func TestKeepNotRenewableAndForever(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(0, 0))
	r := &renewer{clk: clk, start: clk.Now(), answers: []answer{{err: errors.New("must not be called")}}}
	if err := keep(t, 100*time.Second, false, r, KeepOptions{}); !errors.Is(err, ErrExpiring) {
		t.Errorf("Keep = %v", err)
	}
	if d := clk.Now().Sub(r.start); d < 90*time.Second || d > 91*time.Second || len(r.calls()) != 0 {
		t.Errorf("not renewable: returned at %v after %d renewals; want at 90s (the grace period), none", d, len(r.calls()))
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Keep(ctx, 0, true, r.renew, KeepOptions{}) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("ttl 0: %v", err)
	}
}
