package lease

import (
	"context"
	"errors"
	"math"
	"time"
)

// bucket is a token bucket on the manager's clock: rate tokens per second,
// at most burst saved up.
type bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

// take takes one token at now, or returns how long until one is there.
func (b *bucket) take(now time.Time) time.Duration {
	if b.rate < 0 {
		return 0
	}
	if b.last.IsZero() {
		b.tokens, b.last = b.burst, now
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
	// The epsilon absorbs float rounding, so that waiting exactly the
	// returned time always yields a token.
	if b.tokens >= 1-1e-9 {
		b.tokens--
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) / b.rate * 1e9))
}

// placement is what trackLocked needs to place a lease in the scheduler.
type placement struct {
	id          string
	due         time.Time // zero: never expires, nothing to schedule
	irrevocable bool
}

func placementOf(l *Lease, due time.Time) placement {
	return placement{id: l.ID, due: due, irrevocable: l.Irrevocable}
}

// trackLocked records what is now true of a lease and (re)places it. A
// lease handed to a worker is left alone: the worker re-reads the record
// when it is done with it.
func (m *Manager) trackLocked(p placement) {
	if m.state != stateRunning {
		return
	}
	delete(m.tombstones, p.id)
	t := &m.table
	i := t.lookup(p.id)
	if i < 0 {
		if p.due.IsZero() && !p.irrevocable {
			return
		}
		i = t.add(p.id)
	}
	s := &t.slots[i]
	if s.irrevocable != p.irrevocable {
		s.irrevocable = p.irrevocable
		if p.irrevocable {
			m.irrevocable++
		} else {
			m.irrevocable--
		}
	}
	if s.active {
		return
	}
	if p.irrevocable || p.due.IsZero() {
		if p.irrevocable {
			t.unschedule(i)
		} else {
			t.remove(i)
		}
		return
	}
	t.schedule(i, unixNano(p.due))
	m.armLocked(p.due)
}

// unixNano is t in Unix nanoseconds, saturated for times after 2262
// (UnixNano's range).
func unixNano(t time.Time) int64 {
	if t.After(time.Unix(0, math.MaxInt64)) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// forgetLocked drops a deleted lease from the scheduler.
func (m *Manager) forgetLocked(id string) {
	if m.tombstones != nil {
		m.tombstones[id] = struct{}{}
	}
	i := m.table.lookup(id)
	if i < 0 {
		return
	}
	if m.table.slots[i].irrevocable {
		m.irrevocable--
	}
	// An active lease is dropped too: its worker finds the record gone,
	// and finish ignores a ticket whose slot no longer holds it.
	m.table.remove(i)
}

// armLocked makes sure the dispatcher runs no later than t.
func (m *Manager) armLocked(t time.Time) {
	if m.state != stateRunning {
		return
	}
	if !m.wakeAt.IsZero() && !m.wakeAt.After(t) {
		return // it runs at or before t already (or is running)
	}
	m.wakeAt = t
	now := m.now()
	if !t.After(now) {
		m.kick()
		return
	}
	if m.timer == nil {
		m.timer = m.clk.AfterFunc(t.Sub(now), m.kick)
	} else {
		m.timer.Reset(t.Sub(now))
	}
}

// kick wakes the dispatcher; it never blocks.
func (m *Manager) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// nextLocked takes the next lease the dispatcher may hand out now, or
// arms the timer for when there will be one and reports false.
func (m *Manager) nextLocked() (ticket, bool) {
	if m.state != stateRunning {
		return ticket{}, false
	}
	m.wakeAt = time.Time{}
	top := m.table.first()
	if top < 0 {
		if m.timer != nil {
			m.timer.Stop()
		}
		return ticket{}, false
	}
	now := m.now()
	if due := time.Unix(0, m.table.slots[top].due); due.After(now) {
		m.armLocked(due)
		return ticket{}, false
	}
	if wait := m.bucket.take(now); wait > 0 {
		m.armLocked(now.Add(wait))
		return ticket{}, false
	}
	tk := m.table.take()
	m.active++
	// Until it finds nothing to do, the dispatcher is running: say so,
	// so that new due entries do not re-arm the timer.
	m.wakeAt = now
	return tk, true
}

// dispatch moves due leases, at the bucket's rate, into the bounded queue.
func (m *Manager) dispatch(ctx context.Context) {
	defer m.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		}
		for {
			m.mu.Lock()
			tk, ok := m.nextLocked()
			m.mu.Unlock()
			if !ok {
				break
			}
			select {
			case m.queue <- tk:
			case <-ctx.Done():
				return
			}
		}
	}
}

// work revokes the leases the dispatcher hands out.
func (m *Manager) work(ctx context.Context) {
	defer m.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case tk := <-m.queue:
			m.expire(ctx, tk)
		}
	}
}

// finish ends a worker's hold on tk: the lease is gone, or is placed
// again as p says.
func (m *Manager) finish(tk ticket, p placement, gone bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active--
	i := m.table.holder(tk)
	if i < 0 {
		return // forgotten (revoked elsewhere) while the worker held it
	}
	m.table.slots[i].active = false
	if gone {
		m.forgetLocked(tk.id)
		return
	}
	m.trackLocked(p)
}

// expire revokes one due lease, or re-places it. The claim is released
// only after finish, so that an operation waiting for it sees the
// scheduler already updated.
func (m *Manager) expire(ctx context.Context, tk ticket) {
	release, _, err := m.acquire(ctx, tk.id, claimRevoke)
	if err != nil {
		m.finish(tk, placement{id: tk.id, due: time.Unix(0, tk.due), irrevocable: tk.irrevocable}, false)
		return
	}
	defer release()
	p, gone := m.revokeDue(ctx, tk.id)
	m.finish(tk, p, gone)
}

// revokeDue revokes the lease id through the Revoker if it is (still)
// expired and handles the outcome: delete, retry later, or irrevocable.
func (m *Manager) revokeDue(ctx context.Context, id string) (placement, bool) {
	retry := func() placement {
		return placement{id: id, due: m.now().Add(m.backoff(id, 1))}
	}
	l, err := m.load(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return placement{}, true
	case err != nil:
		if ctx.Err() == nil {
			// Storage trouble is not the mount's failure: retry without
			// counting an attempt.
			m.log.Error("cannot read lease to revoke", "lease_id", id, "error", err)
		}
		return retry(), false
	}
	now := m.now()
	if l.Irrevocable || !l.Expired(now) {
		// Renewed (or made irrevocable) since it was queued.
		return placementOf(l, m.dueFor(id, l.ExpireTime, now)), false
	}
	rerr := m.revoker.Revoke(ctx, l)
	if rerr == nil {
		if err := m.erase(ctx, l); err != nil {
			if ctx.Err() != nil {
				return retry(), false
			}
			// Revoked but still recorded: try again (Revoke is idempotent).
			rerr = err
		} else {
			m.expired.Add(1)
			m.log.Debug("lease revoked", "lease_id", id)
			return placement{}, true
		}
	}
	if ctx.Err() != nil {
		// Stopping: the failure is ours, not the mount's. The next
		// manager restores the lease and tries again.
		return placementOf(l, now), false
	}
	m.revokeFailures.Add(1)
	l.RevokeAttempts++
	l.RevokeError = truncate(rerr.Error())
	due := time.Time{}
	if l.RevokeAttempts >= m.cfg.MaxAttempts {
		l.Irrevocable = true
		m.log.Error("lease is irrevocable", "lease_id", id, "attempts", l.RevokeAttempts, "error", l.RevokeError)
	} else {
		delay := m.backoff(id, l.RevokeAttempts)
		due = now.Add(delay)
		m.log.Warn("lease revocation failed; will retry", "lease_id", id,
			"attempts", l.RevokeAttempts, "retry_in", delay, "error", l.RevokeError)
	}
	if err := m.save(ctx, l, false); err != nil {
		m.log.Error("cannot record failed revocation", "lease_id", id, "error", err)
		if l.Irrevocable {
			// Not recorded: keep retrying rather than lose the lease.
			l.Irrevocable = false
			due = now.Add(m.cfg.RetryMax)
		}
	}
	return placementOf(l, due), false
}

// maxErrorLen bounds the revocation error kept with a lease.
const maxErrorLen = 240

func truncate(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	// Cut on a rune boundary.
	for i := maxErrorLen; i > 0; i-- {
		if s[i]&0xC0 != 0x80 {
			return s[:i] + "…"
		}
	}
	return ""
}
