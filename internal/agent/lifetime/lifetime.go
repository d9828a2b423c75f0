// Package lifetime keeps short-lived things alive for the agent and
// `vigil run`: it renews a token or a lease at about two thirds of its
// remaining TTL, as Vault's LifetimeWatcher does, and says when renewing no
// longer helps (the max TTL is near, the server refused, or the TTL ran out
// while the server could not be reached), so that the caller logs in again
// or reads new credentials. It also holds the exponential backoff with
// jitter used between failed attempts, and the rule that tells a failure
// worth retrying (the server could not be reached, 5xx, 429) from a refusal
// (other 4xx).
//
// The package knows nothing of what it renews: callers pass a function. It
// holds no secret and logs nothing; callers log from the OnError hook.
package lifetime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/clock"
)

// Sentinel errors of [Keep] and [Retry]. Each is returned wrapped with the
// last failure when there was one.
var (
	// ErrExpiring means renewing no longer extends the lifetime (the max
	// TTL is near) or the thing is not renewable, and its TTL is now
	// within the grace period: get a new one.
	ErrExpiring = errors.New("lifetime: the TTL cannot be extended further")
	// ErrExpired means renewals failed until the TTL ran out.
	ErrExpired = errors.New("lifetime: expired while it could not be renewed")
	// ErrRetriesExhausted means the configured number of consecutive
	// attempts all failed.
	ErrRetriesExhausted = errors.New("lifetime: retries exhausted")
	// ErrPermanent marks a failure that no retry can mend (a token that
	// cannot be replaced): [Retry] returns an error wrapping it at once,
	// even with RetryRefusals.
	ErrPermanent = errors.New("permanent failure")
)

// Backoff is an exponential backoff with jitter: the n-th consecutive
// failure waits Min·2^(n-1), at most Max, less up to a quarter at random so
// that many clients do not retry in step.
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a number in [0, 1); nil uses math/rand/v2.
	Rand func() float64
}

// Vault Agent's auto-auth defaults: 1s doubling to 5m.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// Delay returns the wait after the attempt-th consecutive failure (1 is
// the first).
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	hi = max(hi, lo)
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return d - time.Duration(0.25*r()*float64(d))
}

// Temporary reports whether err is worth retrying: the server could not be
// reached or answered 5xx, 429 (rate limited) or 412 (a standby not yet up
// to date), or the request timed out. Any other answer (403, 400 "lease
// not found"...) is a refusal that asking again will not change, and a
// cancelled context is not temporary either. (Retry and Keep check their
// own context before asking.)
func Temporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusPreconditionFailed
	}
	return true
}

// Sleep waits d on clk, or until ctx ends (returning its error).
func Sleep(ctx context.Context, clk clock.Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	done := make(chan struct{})
	t := clk.AfterFunc(d, func() { close(done) })
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return nil
	}
}

// RetryOptions says how [Retry] and [Keep] retry.
type RetryOptions struct {
	// Clock times the waits; nil is the wall clock.
	Clock clock.Clock
	// Backoff spaces consecutive failures.
	Backoff Backoff
	// Retries bounds consecutive failed attempts; 0 retries forever (or,
	// in Keep, until the TTL runs out).
	Retries int
	// OnError, when set, is called after each failed attempt that will be
	// retried, with the attempt number and the wait before the next.
	OnError func(err error, attempt int, wait time.Duration)
	// RetryRefusals makes Retry retry errors that are not [Temporary]
	// too: a login refused now may succeed once its credentials file is
	// replaced.
	RetryRefusals bool
}

func (o RetryOptions) clock() clock.Clock {
	if o.Clock == nil {
		return clock.Real{}
	}
	return o.Clock
}

// Retry calls fn until it succeeds, it fails with an error that is not
// [Temporary] (returned as is, unless RetryRefusals), ctx ends, or Retries
// consecutive attempts failed ([ErrRetriesExhausted], wrapping the last
// failure).
func Retry(ctx context.Context, o RetryOptions, fn func(ctx context.Context) error) error {
	clk := o.clock()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrPermanent) || !Temporary(err) && !o.RetryRefusals {
			return err
		}
		if o.Retries > 0 && attempt >= o.Retries {
			return fmt.Errorf("%w after %d attempts: %w", ErrRetriesExhausted, attempt, err)
		}
		wait := o.Backoff.Delay(attempt)
		if o.OnError != nil {
			o.OnError(err, attempt, wait)
		}
		if err := Sleep(ctx, clk, wait); err != nil {
			return err
		}
	}
}

// RenewFunc renews once and returns the new TTL and whether it may be
// renewed again.
type RenewFunc func(ctx context.Context) (ttl time.Duration, renewable bool, err error)

// KeepOptions configures [Keep].
type KeepOptions struct {
	RetryOptions
	// Rand returns a number in [0, 1) for the grace period; nil uses
	// math/rand/v2.
	Rand func() float64
}

// Keep keeps something whose TTL is ttl now (measured from the call)
// alive by calling renew, until ctx ends or renewing stops helping.
//
// It sleeps about two thirds of the remaining TTL between renewals (plus a
// third of a grace period of 10 to 20% of the TTL, which spreads clients
// out), as Vault's LifetimeWatcher does. A renewal that fails with a
// [Temporary] error is retried with backoff while the TTL lasts.
//
// It returns:
//   - [ErrExpiring] once the remaining TTL is within the grace period and
//     renewing does not extend it: the max TTL is near, or the thing is not
//     renewable (then Keep first waits until the grace period begins);
//   - the renewal's error when the server refused it (not [Temporary]):
//     the token or lease was revoked, or has expired;
//   - [ErrExpired] (wrapping the last failure) when renewals failed until
//     the TTL ran out;
//   - [ErrRetriesExhausted] when Retries consecutive renewals failed;
//   - ctx's error when it ends.
//
// A ttl of 0 means "never expires" (a root token): Keep waits for ctx.
func Keep(ctx context.Context, ttl time.Duration, renewable bool, renew RenewFunc, o KeepOptions) error {
	clk := o.clock()
	r := rand.Float64
	if o.Rand != nil {
		r = o.Rand
	}
	if ttl <= 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	grace := graceFor(ttl, r)
	prior := ttl
	deadline := clk.Now().Add(ttl)
	for {
		remaining := deadline.Sub(clk.Now())
		if !renewable {
			if err := Sleep(ctx, clk, remaining-grace); err != nil {
				return err
			}
			return ErrExpiring
		}
		sleep := remaining*2/3 + grace/3
		if remaining <= grace || remaining-sleep <= grace {
			return ErrExpiring
		}
		if err := Sleep(ctx, clk, sleep); err != nil {
			return err
		}
		var newTTL time.Duration
		for attempt := 1; ; attempt++ {
			var err error
			newTTL, renewable, err = renew(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !Temporary(err) {
				return err
			}
			if o.Retries > 0 && attempt >= o.Retries {
				return fmt.Errorf("%w after %d attempts: %w", ErrRetriesExhausted, attempt, err)
			}
			wait := o.Backoff.Delay(attempt)
			left := deadline.Sub(clk.Now())
			if wait >= left {
				if err := Sleep(ctx, clk, left); err != nil {
					return err
				}
				return fmt.Errorf("%w: %w", ErrExpired, err)
			}
			if o.OnError != nil {
				o.OnError(err, attempt, wait)
			}
			if err := Sleep(ctx, clk, wait); err != nil {
				return err
			}
		}
		if newTTL <= 0 {
			// The server says it no longer expires.
			<-ctx.Done()
			return ctx.Err()
		}
		// A new grace period while renewals still extend the lifetime;
		// once they stop (max TTL), the last one stands.
		if newTTL > prior {
			grace = graceFor(newTTL, r)
		}
		prior = newTTL
		deadline = clk.Now().Add(newTTL)
	}
}

// graceFor returns a grace period of 10 to 20% of ttl.
func graceFor(ttl time.Duration, r func() float64) time.Duration {
	return time.Duration((0.1 + 0.1*r()) * float64(ttl))
}
