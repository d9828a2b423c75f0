package lease

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// restore loads the persisted leases into the scheduler, in batches,
// retrying with backoff after a storage failure. Requests are served
// meanwhile: they read records from storage, and the tombstones keep the
// restore from bringing back a lease revoked under its feet.
func (m *Manager) restore(ctx context.Context) {
	defer m.wg.Done()
	defer close(m.restored)
	defer func() {
		m.mu.Lock()
		m.restoring = false
		m.tombstones = nil
		m.mu.Unlock()
	}()
	start := m.clk.Now()
	wait := m.cfg.RetryInitial
	for {
		n, bad, err := m.restoreOnce(ctx)
		if err == nil {
			m.log.Info("leases restored", "leases", n, "unreadable", bad, "duration", m.clk.Now().Sub(start))
			return
		}
		if ctx.Err() != nil {
			return
		}
		m.log.Error("lease restore failed; retrying", "error", err, "retry_in", wait)
		if !m.sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, m.cfg.RetryMax)
	}
}

// sleep waits d on the manager's clock; false if ctx ended first.
func (m *Manager) sleep(ctx context.Context, d time.Duration) bool {
	ch := make(chan struct{})
	t := m.clk.AfterFunc(d, func() { close(ch) })
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// restoreOnce walks the records once and returns how many it read and how
// many it could not decode.
func (m *Manager) restoreOnce(ctx context.Context) (n, bad int, err error) {
	batch := make([]string, 0, m.cfg.RestoreBatch)
	flush := func() error {
		k, b, err := m.restoreBatch(ctx, batch)
		n, bad = n+k, bad+b
		batch = batch[:0]
		return err
	}
	err = m.walk(ctx, recordPrefix, func(key string) error {
		batch = append(batch, strings.TrimPrefix(key, recordPrefix))
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	return n, bad, err
}

// restoreBatch reads the records of ids in parallel and hands them to the
// scheduler under one lock.
func (m *Manager) restoreBatch(ctx context.Context, ids []string) (n, bad int, err error) {
	type result struct {
		s   slim
		ok  bool
		bad bool
		err error
	}
	res := make([]result, len(ids))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(m.cfg.RestoreWorkers, len(ids)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				b, err := m.st.Get(ctx, recordKey(ids[i]))
				switch {
				case errors.Is(err, logical.ErrNotFound):
					// Revoked since it was listed.
				case err != nil:
					res[i].err = err
				default:
					s, err := decodeSlim(ids[i], b)
					if err != nil {
						m.log.Error("unreadable lease record", "lease_id", ids[i], "error", err)
						res[i].bad = true
					} else {
						res[i].s, res[i].ok = s, true
					}
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	for i := range res {
		if res[i].err != nil {
			return 0, 0, res[i].err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for i, r := range res {
		if r.bad {
			bad++
		}
		if !r.ok {
			continue
		}
		n++
		id := ids[i]
		if m.table.lookup(id) >= 0 {
			continue // registered, renewed or queued since: that is newer
		}
		if _, gone := m.tombstones[id]; gone {
			continue
		}
		m.restoredN++
		m.trackLocked(placement{id: id, due: m.dueFor(id, r.s.ExpireTime, now), irrevocable: r.s.Irrevocable})
	}
	return n, bad, nil
}
