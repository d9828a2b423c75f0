// Package clock abstracts time so that code with timers, TTLs and schedules
// can be tested deterministically. Production code takes a [Clock] and is
// given [Real]; tests give it a [Fake] and move time by hand.
//
// Fake is the one fake that lives next to its interface (DESIGN.md §4).
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d and returns a Timer
	// that can stop it.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTicker returns a ticker that sends the time on C every d.
	NewTicker(d time.Duration) Ticker
}

// Timer is a stoppable one-shot timer.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
	// Reset changes the timer to fire after d; it reports whether the
	// timer was active.
	Reset(d time.Duration) bool
}

// Ticker delivers ticks on C until stopped.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the wall clock.
type Real struct{}

var _ Clock = Real{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// NewTicker wraps time.NewTicker.
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Fake is a manually advanced clock. Its zero value is not usable; call
// [NewFake].
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake set to now.
func NewFake(now time.Time) *Fake { return &Fake{now: now} }

type fakeWaiter struct {
	clk    *Fake
	at     time.Time
	f      func()         // AfterFunc
	ch     chan time.Time // ticker channel
	period time.Duration  // ticker period; 0 for one-shot
	active bool
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and fires every timer and ticker
// that falls due, in time order.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	for {
		sort.SliceStable(c.waiters, func(i, j int) bool { return c.waiters[i].at.Before(c.waiters[j].at) })
		if len(c.waiters) == 0 || c.waiters[0].at.After(target) {
			break
		}
		w := c.waiters[0]
		c.now = w.at
		if w.period > 0 {
			w.at = w.at.Add(w.period)
			select {
			case w.ch <- c.now:
			default: // like time.Ticker, drop ticks a slow reader misses
			}
			continue
		}
		c.waiters = c.waiters[1:]
		w.active = false
		f := w.f
		c.mu.Unlock()
		go f()
		c.mu.Lock()
	}
	c.now = target
	c.mu.Unlock()
}

// Set moves the clock to t (forward only) as Advance does.
func (c *Fake) Set(t time.Time) {
	c.Advance(t.Sub(c.Now()))
}

// Pending returns how many timers and tickers are waiting.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// AfterFunc schedules f at Now()+d.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &fakeWaiter{clk: c, at: c.now.Add(d), f: f, active: true}
	c.waiters = append(c.waiters, w)
	return w
}

// NewTicker returns a ticker driven by Advance.
func (c *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &fakeWaiter{clk: c, at: c.now.Add(d), ch: make(chan time.Time, 1), period: d, active: true}
	c.waiters = append(c.waiters, w)
	return fakeTicker{w}
}

func (w *fakeWaiter) remove() bool {
	for i, o := range w.clk.waiters {
		if o == w {
			w.clk.waiters = append(w.clk.waiters[:i], w.clk.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// Stop implements Timer.
func (w *fakeWaiter) Stop() bool {
	w.clk.mu.Lock()
	defer w.clk.mu.Unlock()
	was := w.active
	w.active = false
	w.remove()
	return was
}

// Reset implements Timer.
func (w *fakeWaiter) Reset(d time.Duration) bool {
	w.clk.mu.Lock()
	defer w.clk.mu.Unlock()
	was := w.active
	w.remove()
	w.at = w.clk.now.Add(d)
	w.active = true
	w.clk.waiters = append(w.clk.waiters, w)
	return was
}

// fakeTicker adapts a waiter to Ticker, whose Stop returns nothing.
type fakeTicker struct{ w *fakeWaiter }

func (t fakeTicker) C() <-chan time.Time { return t.w.ch }
func (t fakeTicker) Stop()               { t.w.Stop() }

var _ Timer = (*fakeWaiter)(nil)
