package httpapi

import (
	"context"
	"sync"
	"time"
)

// deadlineCtx is context.WithDeadline for requests, without its cost on
// the requests that never wait. context.WithDeadline arms a runtime timer
// and registers itself with its parent on creation, and undoes both on
// cancel: about a tenth of the server's own work on a KV read, which never
// selects on Done. A deadlineCtx arms its timer and its link to the parent
// only when Done or AfterFunc is first called (a queued storage write, a
// forwarded request, an SQL query); until then Err compares the clock with
// the deadline and asks the parent. The observable behaviour is a
// WithDeadline's: Err turns non-nil once, at the deadline, on the parent's
// end or on cancel, and stays; Done is closed exactly when Err is
// non-nil; contexts derived from it end with it.
type deadlineCtx struct {
	context.Context // the parent
	deadline        time.Time

	mu     sync.Mutex
	done   chan struct{} // nil until armed
	err    error         // non-nil once ended (set under mu, before done closes)
	timer  *time.Timer   // set when armed
	stop   func() bool   // unlinks from the parent; set when armed
	afters []*afterFunc  // AfterFunc callbacks still to run
}

// afterFunc is one callback registered with deadlineCtx.AfterFunc.
type afterFunc struct{ f func() }

// start makes c, a zero deadlineCtx the caller allocated (as part of a
// request's state), end at d, when parent ends, or when the caller calls
// c.end(context.Canceled) once the work is done, whichever comes first,
// and returns it.
func (c *deadlineCtx) start(parent context.Context, d time.Time) context.Context {
	c.Context, c.deadline = parent, d
	return c
}

// Deadline returns the earlier of the parent's deadline and its own.
func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if pd, ok := c.Context.Deadline(); ok && pd.Before(c.deadline) {
		return pd, true
	}
	return c.deadline, true
}

// Err reports why the context ended, or nil while it has not.
func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	err, armed := c.err, c.done != nil
	c.mu.Unlock()
	if err != nil || armed {
		// Armed, the timer and the parent link end it: reporting the
		// end before Done is closed would break the contract.
		return err
	}
	return c.lapsed()
}

// lapsed is the error the context ends with if its parent has ended or its
// deadline has passed, otherwise nil.
func (c *deadlineCtx) lapsed() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	// Until reads only the monotonic clock, half the cost of Now.
	if time.Until(c.deadline) <= 0 {
		return context.DeadlineExceeded
	}
	return nil
}

// Done returns a channel closed when the context ends.
func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	c.armLocked()
	done := c.done
	c.mu.Unlock()
	return done
}

// AfterFunc runs f in its own goroutine once the context ends, unless
// stop is called first; it is what context.AfterFunc and the contexts
// derived from this one use, so that deriving a context does not cost a
// goroutine.
func (c *deadlineCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	c.armLocked()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.afters = append(c.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.afters {
			if x == a {
				c.afters = append(c.afters[:i], c.afters[i+1:]...)
				return true
			}
		}
		return false
	}
}

// armLocked creates the done channel and, unless the context has already
// ended, the timer and the link to the parent that will end it.
func (c *deadlineCtx) armLocked() {
	if c.done != nil {
		return
	}
	c.done = make(chan struct{})
	if c.err == nil {
		c.err = c.lapsed()
	}
	if c.err != nil {
		close(c.done)
		return
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
	c.stop = context.AfterFunc(c.Context, func() { c.end(c.Context.Err()) })
}

// end ends the context with err, unless it has ended already. A context
// whose deadline passed or whose parent ended before anyone armed it ends
// with that reason, not err, so that Err never changes its answer.
func (c *deadlineCtx) end(err error) {
	c.mu.Lock()
	if c.err != nil {
		// Ended already; an armed context closed done then.
		c.mu.Unlock()
		return
	}
	if lapsed := c.lapsed(); lapsed != nil {
		err = lapsed
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stop != nil {
		c.stop()
	}
	afters := c.afters
	c.afters = nil
	c.mu.Unlock()
	for _, a := range afters {
		go a.f()
	}
}
