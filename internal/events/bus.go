// Package events is the server's bus of change events: the request
// pipeline (and the mounts' periodic work) publishes what changed, and each
// subscriber (a WebSocket client of sys/events/subscribe) receives the
// events whose type matches its pattern.
//
// The bus decides nothing about who may see what: it matches event types
// and delivers. Access (the subscriber's policies, its token's validity) is
// checked by the core on each event a subscriber reads, and the wire form
// is Vault's CloudEvents JSON ([Event.JSON]).
//
// # Delivery
//
// Publishing never blocks and never fails: a write is never slowed by a
// subscriber. Each subscription has a bounded queue; when an event finds
// it full, the subscription ends with [ErrOverflow] and the subscriber
// learns that it lost events (the HTTP layer closes its WebSocket). It
// must then reconnect and read again what it watches: delivery is best
// effort, as Vault's, and polling stays the fallback. Memory is bounded by
// the number of subscriptions ([Config.MaxSubscribers]) times the queue
// length ([Config.Buffer]); queued events are shared, not copied.
//
// Events carry paths, versions and operation names, never values or
// tokens (see logical.Event). The package holds no package-level state and
// imports the glob matcher only.
package events

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/vigil-secrets/vigil/internal/glob"
)

// Defaults of [Config].
const (
	DefaultBuffer         = 256
	DefaultMaxSubscribers = 1024
)

// Errors a subscription ends with, or Subscribe fails with.
var (
	// ErrOverflow: the subscriber did not keep up and events it should
	// have received were dropped.
	ErrOverflow = errors.New("events: subscriber too slow, events were lost")
	// ErrEnded: the bus ended every subscription (the server sealed or
	// stopped being the active server).
	ErrEnded = errors.New("events: the server ended the subscription")
	// ErrClosed: the subscriber closed the subscription.
	ErrClosed = errors.New("events: subscription closed")
	// ErrTooManySubscribers: Subscribe beyond Config.MaxSubscribers.
	ErrTooManySubscribers = errors.New("events: too many subscriptions")
)

// Config sizes a [Bus].
type Config struct {
	// Buffer is the length of each subscription's queue, in events;
	// DefaultBuffer when zero.
	Buffer int
	// MaxSubscribers bounds the subscriptions open at once;
	// DefaultMaxSubscribers when zero.
	MaxSubscribers int
}

// Bus delivers published events to subscriptions. Its zero value is not
// usable; create one with [New]. It is safe for concurrent use.
type Bus struct {
	buffer, max int

	mu   sync.RWMutex
	subs map[*Subscription]struct{}
	// n is len(subs), read without the lock by Publish and Active.
	n atomic.Int64
}

// New returns an empty bus.
func New(cfg Config) *Bus {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.MaxSubscribers <= 0 {
		cfg.MaxSubscribers = DefaultMaxSubscribers
	}
	return &Bus{buffer: cfg.Buffer, max: cfg.MaxSubscribers, subs: map[*Subscription]struct{}{}}
}

// Active reports whether anyone is subscribed: a publisher may skip
// building events when no one is.
func (b *Bus) Active() bool { return b.n.Load() > 0 }

// Subscribers returns the number of open subscriptions.
func (b *Bus) Subscribers() int { return int(b.n.Load()) }

// Publish hands ev to every open subscription whose pattern matches its
// type, without waiting: a subscription whose queue is full ends with
// [ErrOverflow] instead. ev must not be changed afterwards; subscribers
// share it.
func (b *Bus) Publish(ev *Event) {
	if b.n.Load() == 0 {
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		if s.ended.Load() || !glob.Match(s.pattern, ev.Type) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.end(ErrOverflow)
		}
	}
}

// Subscribe opens a subscription to the events whose type matches
// pattern: Vault's globs, where '*' stands for any run of characters
// ("kv-v2/*", "*"). The caller must Close it.
func (b *Bus) Subscribe(pattern string) (*Subscription, error) {
	s := &Subscription{bus: b, pattern: pattern, ch: make(chan *Event, b.buffer), done: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) >= b.max {
		return nil, ErrTooManySubscribers
	}
	b.subs[s] = struct{}{}
	b.n.Store(int64(len(b.subs)))
	return s, nil
}

// EndAll ends every open subscription with err ([ErrEnded] when nil).
// Subscriptions opened afterwards are served as usual.
func (b *Bus) EndAll(err error) {
	if err == nil {
		err = ErrEnded
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.end(err)
		delete(b.subs, s)
	}
	b.n.Store(0)
}

func (b *Bus) remove(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
	b.n.Store(int64(len(b.subs)))
}

// Subscription is one subscriber's queue of events. Read events from
// [Subscription.Events] until [Subscription.Done] is closed; then
// [Subscription.Err] says why it ended.
type Subscription struct {
	bus     *Bus
	pattern string
	ch      chan *Event
	done    chan struct{}
	once    sync.Once
	ended   atomic.Bool
	err     error // set before done is closed
}

// Events returns the subscription's queue. It is never closed: select on
// Done as well.
func (s *Subscription) Events() <-chan *Event { return s.ch }

// Done is closed when the subscription ends.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended ([ErrOverflow], [ErrEnded],
// [ErrClosed] or EndAll's error), nil while it is open.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Pattern returns the event type pattern of the subscription.
func (s *Subscription) Pattern() string { return s.pattern }

// Close ends the subscription and removes it from the bus. It is safe to
// call more than once, and after the subscription ended.
func (s *Subscription) Close() {
	s.end(ErrClosed)
	s.bus.remove(s)
}

// end records why the subscription ends, once.
func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		s.ended.Store(true)
		close(s.done)
	})
}
