// Package watch tells `vigil run` and the agent, within a moment, that a
// secret they read may have changed: it subscribes to the server's change
// events (sys/events/subscribe, a WebSocket opened by the api client) and
// turns each event about a watched path into a hint, as the
// [secretenv.Watcher] contract describes. It runs beside a
// [secretenv.Poller], which stays the fallback: an event tells what
// changed, never the value, and the caller reads the secret again.
//
// Events are not kept while no subscription is open: a stream that breaks
// (the server restarted or could not be reached, the subscriber fell
// behind, the token was replaced) is opened again with backoff, and every
// subscription that opens is followed by a hint "" ("look at everything
// again"), the first one too, since a change made before it opened would
// otherwise go unseen until the next poll.
//
// A subscription the server refuses (403: the token's policy lacks read on
// sys/events/subscribe/<type>) is tried again a few times, since the token
// may have just been replaced, and then Watch returns a [*RefusedError]
// that names the policy rule the token needs; the caller logs it and goes
// on polling. Nothing here logs or returns a token or a value: events
// carry none, and the token is read from the client at each subscription.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/clock"
)

// DefaultRefusals is how many refused subscriptions in a row end Watch
// when Events.Refusals is 0.
const DefaultRefusals = 4

// stableAfter is how long a stream must have lasted for its end to start
// a new backoff streak; streams that end sooner keep backing off, so that
// a server that closes every stream at once is not asked in a tight loop.
const stableAfter = time.Minute

// ErrRefused matches (errors.Is) the error Watch returns when the server
// refused the subscription Events.Refusals times in a row.
var ErrRefused = errors.New("watch: the server refused the event subscription")

// RefusedError is the error Watch returns once the server has refused a
// subscription too many times in a row. It matches [ErrRefused] and the
// last refusal (an [*api.ResponseError]).
type RefusedError struct {
	// EventType is the event type pattern subscribed to ("*").
	EventType string
	// Attempts is how many subscriptions in a row were refused.
	Attempts int
	// Err is the last refusal.
	Err error
}

// Error says what was refused and, for a 403, which policy rule the token
// needs. It holds the server's messages, never the token.
func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "watch: the server refused the subscription to %q change events %d times in a row", e.EventType, e.Attempts)
	var re *api.ResponseError
	if errors.As(e.Err, &re) {
		fmt.Fprintf(&b, " (%d", re.StatusCode)
		if len(re.Errors) > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(re.Errors, "; "))
		}
		b.WriteString(")")
		if re.StatusCode != http.StatusForbidden {
			return b.String()
		}
	} else if e.Err != nil {
		fmt.Fprintf(&b, " (%v)", e.Err)
	}
	fmt.Fprintf(&b, "; the token's policy needs %s", e.PolicyRule())
	return b.String()
}

// Unwrap returns [ErrRefused] and the last refusal.
func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, e.Err} }

// PolicyRule returns the policy rule that lets a token subscribe to the
// event type: read on sys/events/subscribe/<type>. (Each event is then
// delivered if the token may read its data path, which a watcher of that
// path may already.)
func (e *RefusedError) PolicyRule() string {
	return fmt.Sprintf(`path "sys/events/subscribe/%s" { capabilities = ["read"] }`, e.EventType)
}

// Events is a [secretenv.Watcher] fed by the server's change events. Its
// fields are read only; one Events may run several Watch calls.
type Events struct {
	// Client subscribes. Its token is read at each subscription, so a
	// caller whose token is replaced (auto-auth) calls SetToken on it and
	// the next subscription uses the new one.
	Client *api.Client
	// Types are the event type patterns to subscribe to, one stream each
	// ("kv-v2/*", "database/rotate"); empty is one stream of "*", every
	// event the token may see (the server checks each against the token's
	// policies).
	Types []string
	// Backoff spaces subscriptions after a failure or a broken stream.
	Backoff lifetime.Backoff
	// Refusals is how many refused subscriptions in a row (a 403 or any
	// other answer that is not [lifetime.Temporary]) end Watch with a
	// [*RefusedError]; 0 is [DefaultRefusals].
	Refusals int
	// Clock times the waits; nil is the wall clock.
	Clock clock.Clock
	// Logger receives the package's messages; nil discards them.
	Logger *slog.Logger
}

var _ secretenv.Watcher = Events{}

// Watch implements [secretenv.Watcher]: it calls hint with the path of
// each event whose data path is one of paths (as given in paths), or with
// the data path of every event that has one when paths is empty, and
// with "" once each subscription is open and when the server says events
// were lost. It returns ctx's error when ctx ends, or a [*RefusedError]
// when a subscription was refused Refusals times in a row (the other
// streams, with several Types, then end too). It calls hint from its own
// goroutines, never after it has returned.
func (e Events) Watch(ctx context.Context, paths []string, hint func(path string)) error {
	if e.Client == nil {
		return errors.New("watch: no client")
	}
	types := e.Types
	if len(types) == 0 {
		types = []string{"*"}
	}
	var want map[string]string
	if len(paths) > 0 {
		want = make(map[string]string, len(paths))
		for _, p := range paths {
			want[strings.Trim(p, "/")] = p
		}
	}
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := e.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	refusals := e.Refusals
	if refusals <= 0 {
		refusals = DefaultRefusals
	}

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, typ := range types {
		s := &stream{
			e: e, eventType: typ, want: want, hint: hint, clk: clk, refusals: refusals,
			log: log.With("event_type", typ),
		}
		wg.Go(func() {
			if err := s.run(sctx); err != nil && sctx.Err() == nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.Cause(sctx)
}

// stream keeps one subscription open: one event type of one Watch.
type stream struct {
	e         Events
	eventType string
	want      map[string]string // normalized path → path as given; nil: all
	hint      func(string)
	clk       clock.Clock
	refusals  int
	log       *slog.Logger
}

// run subscribes, reads, and subscribes again until ctx ends or the
// subscription is refused s.refusals times in a row.
func (s *stream) run(ctx context.Context) error {
	// streak counts failed subscriptions and streams that ended within
	// stableAfter, since the last stream that lasted; it sizes the wait.
	streak, refused := 0, 0
	warned, opened := false, false
	for {
		st, err := s.e.Client.Sys().SubscribeEvents(ctx, s.eventType, api.SubscribeEventsOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			streak++
			if !lifetime.Temporary(err) {
				refused++
				if refused >= s.refusals {
					return &RefusedError{EventType: s.eventType, Attempts: refused, Err: err}
				}
			}
			wait := s.e.Backoff.Delay(streak)
			if !warned {
				s.log.Warn("could not subscribe to change events; retrying", "error", err, "wait", wait)
				warned = true
			} else {
				s.log.Debug("could not subscribe to change events; retrying", "error", err, "attempt", streak, "wait", wait)
			}
			if err := lifetime.Sleep(ctx, s.clk, wait); err != nil {
				return err
			}
			continue
		}
		switch {
		case warned:
			s.log.Info("subscribed to change events again")
		case opened:
			s.log.Debug("subscribed to change events again")
		default:
			s.log.Debug("subscribed to change events")
		}
		warned, opened, refused = false, true, 0
		// Whatever changed while no stream was open was not told: look
		// at everything again.
		s.hint("")

		start := s.clk.Now()
		err = s.read(ctx, st)
		st.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, api.ErrEventsLost) {
			s.hint("")
		}
		if s.clk.Now().Sub(start) >= stableAfter {
			streak = 0
		}
		streak++
		wait := s.e.Backoff.Delay(streak)
		s.log.Info("the change event stream ended; subscribing again", "reason", err, "wait", wait)
		if err := lifetime.Sleep(ctx, s.clk, wait); err != nil {
			return err
		}
	}
}

// read hints the paths of st's events until it ends, and returns why.
func (s *stream) read(ctx context.Context, st *api.EventStream) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-st.Events():
			if !ok {
				return st.Err()
			}
			dp := strings.Trim(ev.DataPath(), "/")
			if dp == "" {
				continue
			}
			p := dp
			if s.want != nil {
				given, ok := s.want[dp]
				if !ok {
					continue
				}
				p = given
			}
			s.log.Debug("change event", "type", ev.EventType(), "data_path", dp)
			s.hint(p)
		}
	}
}
