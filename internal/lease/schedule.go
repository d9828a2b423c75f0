package lease

import (
	"container/heap"
	"context"
	"errors"
	"math"
	"time"
)

// entry is what the scheduler keeps of one lease. Everything else lives in
// storage and is re-read when the lease is acted on.
type entry struct {
	id          string
	due         time.Time // when to act: expiry plus jitter, or a retry
	idx         int       // index in the heap, -1 when not in it
	active      bool      // popped and handed to a worker
	irrevocable bool
}

// entryHeap is a min-heap of entries by due time.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}

func (h *entryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.idx = -1
	*h = old[:n-1]
	return e
}

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
	e := m.pending[p.id]
	if e == nil {
		if p.due.IsZero() && !p.irrevocable {
			return
		}
		e = &entry{id: p.id, idx: -1}
		m.pending[p.id] = e
	}
	if e.irrevocable != p.irrevocable {
		e.irrevocable = p.irrevocable
		if p.irrevocable {
			m.irrevocable++
		} else {
			m.irrevocable--
		}
	}
	if e.active {
		return
	}
	if p.irrevocable || p.due.IsZero() {
		if e.idx >= 0 {
			heap.Remove(&m.heap, e.idx)
		}
		if !p.irrevocable {
			delete(m.pending, p.id)
		}
		return
	}
	e.due = p.due
	if e.idx >= 0 {
		heap.Fix(&m.heap, e.idx)
	} else {
		heap.Push(&m.heap, e)
	}
	m.armLocked(p.due)
}

// forgetLocked drops a deleted lease from the scheduler.
func (m *Manager) forgetLocked(id string) {
	if m.tombstones != nil {
		m.tombstones[id] = struct{}{}
	}
	e := m.pending[id]
	if e == nil {
		return
	}
	if e.idx >= 0 {
		heap.Remove(&m.heap, e.idx)
	}
	if e.irrevocable {
		m.irrevocable--
	}
	// An active entry is dropped too: its worker finds the record gone
	// and finish ignores an entry no longer in pending.
	delete(m.pending, id)
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

// nextLocked pops the next entry the dispatcher may hand out now, or arms
// the timer for when there will be one and returns nil.
func (m *Manager) nextLocked() *entry {
	if m.state != stateRunning {
		return nil
	}
	m.wakeAt = time.Time{}
	if len(m.heap) == 0 {
		if m.timer != nil {
			m.timer.Stop()
		}
		return nil
	}
	now := m.now()
	top := m.heap[0]
	if top.due.After(now) {
		m.armLocked(top.due)
		return nil
	}
	if wait := m.bucket.take(now); wait > 0 {
		m.armLocked(now.Add(wait))
		return nil
	}
	heap.Pop(&m.heap)
	top.active = true
	m.active++
	// Until it finds nothing to do, the dispatcher is running: say so,
	// so that new due entries do not re-arm the timer.
	m.wakeAt = now
	return top
}

// dispatch moves due entries, at the bucket's rate, into the bounded queue.
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
			e := m.nextLocked()
			m.mu.Unlock()
			if e == nil {
				break
			}
			select {
			case m.queue <- e:
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
		case e := <-m.queue:
			m.expire(ctx, e)
		}
	}
}

// finish ends a worker's hold on e: the lease is gone, or is placed again
// as p says.
func (m *Manager) finish(e *entry, p placement, gone bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e.active = false
	m.active--
	if m.pending[e.id] != e {
		return // forgotten (revoked elsewhere) while the worker held it
	}
	if gone {
		m.forgetLocked(e.id)
		return
	}
	m.trackLocked(p)
}

// expire revokes one due lease, or re-places it. The claim is released
// only after finish, so that an operation waiting for it sees the
// scheduler already updated.
func (m *Manager) expire(ctx context.Context, e *entry) {
	release, _, err := m.acquire(ctx, e.id, claimRevoke)
	if err != nil {
		m.finish(e, placement{id: e.id, due: e.due, irrevocable: e.irrevocable}, false)
		return
	}
	defer release()
	p, gone := m.revokeDue(ctx, e.id)
	m.finish(e, p, gone)
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
