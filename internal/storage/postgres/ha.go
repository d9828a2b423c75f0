package postgres

// The leader lock and fencing.
//
// # The lock
//
// The lock is one row of the HA table, named after the data table:
// holder (node id), addr, epoch, expires_at and holder_pid. Every time
// is taken from the database's clock (clock_timestamp()), so the servers'
// clocks never matter. epoch grows by one at every takeover and never
// goes back (Release expires the row, it does not delete it): (holder,
// epoch) is the fencing token of one leadership.
//
// The holder renews the row every third of the TTL over a connection of
// its own, which also records that connection's backend pid. A candidate
// polls every RetryInterval, on a connection of its own too, and takes
// the row over, in one atomic upsert, only if it expired or the holder's
// connection is gone from pg_stat_activity. The second condition makes a
// leader killed outright (kill -9, a crash: the kernel closes its socket
// and PostgreSQL ends its session) replaceable at the next poll, while a
// leader that is merely frozen or cut off keeps its session, and the
// lock, until it expires.
//
// The holder counts its own lease from when its last successful renewal
// started, on the local monotonic clock: that is never later than the
// expiry the database recorded. When it cannot renew before then, or a
// renewal finds the row no longer its own, it closes Lost.
//
// # Fencing
//
// Once Campaign has succeeded, every write carries the fencing token and
// is checked by the database in the same statement: the lock row must
// still hold our holder and epoch and not be expired, read under FOR KEY
// SHARE, and every change in the statement is conditioned on that. A
// takeover first locks the row FOR UPDATE, which waits for such writes in
// flight, so no write of an old epoch commits after the epoch changed. A
// former leader that was paused and resumed therefore cannot change
// anything, whatever it believes; it also checks its local lease first,
// to fail fast.
//
// Writes are single autocommit statements, and the takeover is one batch
// the server runs without waiting for the client, so a process frozen in
// the middle of either holds no lock that could stall the others. Renewals
// update no key column and so take FOR NO KEY UPDATE, which does not wait
// for the writes' FOR KEY SHARE: a busy leader's renewals are never stuck
// behind its own writes.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// dialTimeout bounds the opening of a lock connection.
const dialTimeout = 10 * time.Second

// Campaign blocks until this node holds the leader lock or ctx ends (see
// [storage.HABackend]). From then on every write is fenced by the lock.
// One Campaign runs at a time, and not while this node holds the lock.
func (b *Backend) Campaign(ctx context.Context, id, addr string) (storage.Leadership, error) {
	if !b.ha {
		return nil, ErrHADisabled
	}
	if b.closed.Load() {
		return nil, storage.ErrClosed
	}
	if id == "" {
		return nil, errors.New("postgres: campaign: empty node id")
	}
	if !b.campaignMu.TryLock() {
		if b.closed.Load() {
			return nil, storage.ErrClosed
		}
		return nil, errors.New("postgres: campaign: another campaign of this node is running")
	}
	defer b.campaignMu.Unlock()
	if l := b.lead.Load(); l != nil && l.valid() {
		return nil, errors.New("postgres: campaign: this node already holds the leader lock")
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.life, cancel)()

	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	lastErr := ""
	for {
		var err error
		if conn == nil {
			conn, err = b.dialLock(ctx)
		}
		if err == nil {
			var epoch int64
			var start time.Time
			var won bool
			epoch, start, won, err = b.tryTakeover(ctx, conn, id, addr)
			if err == nil && won {
				l := b.newLeadership(id, addr, epoch, start.Add(b.ttl), conn)
				conn = nil // the renewer's now
				b.lead.Store(l)
				go l.renew()
				b.logger.Info("postgres: acquired the leader lock", "node_id", id, "epoch", epoch)
				return l, nil
			}
		}
		if err != nil && ctx.Err() == nil {
			// Log each new kind of failure once, not at every poll.
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				b.logger.Warn("postgres: campaign for the leader lock failed; retrying", "error", err)
			}
			if conn != nil {
				conn.Close(context.Background())
				conn = nil
			}
		}
		t := time.NewTimer(b.retryInt)
		select {
		case <-ctx.Done():
			t.Stop()
			if b.life.Err() != nil {
				return nil, storage.ErrClosed
			}
			return nil, parent.Err()
		case <-t.C:
		}
	}
}

// tryTakeover takes the lock over if it is free. start is when the
// takeover was sent: the lease counts from then.
func (b *Backend) tryTakeover(ctx context.Context, conn *pgx.Conn, id, addr string) (epoch int64, start time.Time, won bool, err error) {
	// A cheap look first, taking no lock: most polls end here.
	var free bool
	err = conn.QueryRow(ctx, b.q.poll, b.lockName).Scan(&free)
	if errors.Is(err, pgx.ErrNoRows) {
		free, err = true, nil
	}
	if err != nil || !free {
		return 0, start, false, err
	}
	batch := &pgx.Batch{}
	batch.Queue(b.q.takeoverLock, b.lockName)
	batch.Queue(b.q.takeover, b.lockName, id, addr, b.ttl.Microseconds())
	start = time.Now()
	br := conn.SendBatch(ctx, batch)
	_, err = br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&epoch)
		won = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err, won = cerr, false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "57014") {
		// lock_timeout or statement_timeout: a write in flight held
		// the row too long. Not an error: try again at the next poll.
		return 0, start, false, nil
	}
	if err != nil {
		won = false
	}
	return epoch, start, won, err
}

// dialLock opens a connection of its own for the lock, outside the pool:
// its backend pid stands for the holder's liveness. A statement on it
// waits for a row lock no longer than the TTL, and the server ends its
// session if it ever sits in an open transaction that long.
func (b *Backend) dialLock(ctx context.Context) (*pgx.Conn, error) {
	cfg := b.connCfg.Copy()
	ms := strconv.FormatInt(max(b.ttl.Milliseconds(), 1), 10)
	cfg.RuntimeParams["lock_timeout"] = ms
	cfg.RuntimeParams["statement_timeout"] = ms
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = ms
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

// Leader returns the node that holds the lock, if any: the lock row's
// holder while it is unexpired and its connection alive.
func (b *Backend) Leader(ctx context.Context) (storage.Holder, bool, error) {
	if !b.ha {
		return storage.Holder{}, false, ErrHADisabled
	}
	if err := ctx.Err(); err != nil {
		return storage.Holder{}, false, err
	}
	if b.closed.Load() {
		return storage.Holder{}, false, storage.ErrClosed
	}
	var h storage.Holder
	var live bool
	err := b.retry(ctx, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q.leader, b.lockName).Scan(&h.ID, &h.Addr, &live)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Holder{}, false, nil
	}
	if err != nil {
		return storage.Holder{}, false, b.wrap("leader", "", err)
	}
	if !live {
		return storage.Holder{}, false, nil
	}
	return h, true, nil
}

// leadership is a held leader lock, as Campaign returns it.
type leadership struct {
	b        *Backend
	name, id string
	addr     string
	epoch    int64

	lost     chan struct{}
	lostOnce sync.Once

	mu sync.Mutex
	// deadline is when the lease ends on the local monotonic clock,
	// unless a renewal moves it.
	deadline time.Time

	// ctx ends the renewer: cancelled by Release or the backend's Close.
	ctx         context.Context
	stop        context.CancelFunc
	done        chan struct{} // closed when the renewer has returned
	releaseOnce sync.Once

	conn *pgx.Conn // the lock connection; the renewer's alone
}

var _ storage.Leadership = (*leadership)(nil)

func (b *Backend) newLeadership(id, addr string, epoch int64, deadline time.Time, conn *pgx.Conn) *leadership {
	ctx, stop := context.WithCancel(b.life)
	return &leadership{
		b: b, name: b.lockName, id: id, addr: addr, epoch: epoch,
		lost: make(chan struct{}), deadline: deadline,
		ctx: ctx, stop: stop, done: make(chan struct{}),
		conn: conn,
	}
}

// Lost is closed once the lock is lost or released.
func (l *leadership) Lost() <-chan struct{} { return l.lost }

// Release gives the lock up: writes through the backend fail with
// storage.ErrFenced from now on (until another Campaign succeeds), and the
// lock row is expired, if it is still ours, so that another node takes it
// at its next poll. Releasing twice, or after the lock was lost, is safe.
func (l *leadership) Release(ctx context.Context) error {
	return l.release(ctx)
}

func (l *leadership) release(ctx context.Context) error {
	first := false
	l.releaseOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	l.end("released", true)
	l.stop()
	select {
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b := l.b
	err := b.retry(ctx, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, b.q.release, l.name, l.id, l.epoch)
		return err
	})
	if err != nil {
		// It expires by itself within the TTL.
		return fmt.Errorf("postgres: release the leader lock: %w", err)
	}
	return nil
}

// valid reports whether this node may still consider itself the holder.
func (l *leadership) valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.deadline)
}

// lose ends the leadership because the lock is gone.
func (l *leadership) lose(reason string) {
	if l != nil {
		l.end(reason, false)
	}
}

func (l *leadership) end(reason string, released bool) {
	l.lostOnce.Do(func() {
		close(l.lost)
		if released {
			l.b.logger.Info("postgres: released the leader lock", "node_id", l.id, "epoch", l.epoch)
		} else {
			l.b.logger.Warn("postgres: lost the leader lock", "node_id", l.id, "epoch", l.epoch, "reason", reason)
		}
	})
}

// renew keeps the lock: it renews it every third of the TTL until it is
// released or lost. A failed renewal is retried (on a new connection)
// every RetryInterval until the lease runs out.
func (l *leadership) renew() {
	b := l.b
	defer close(l.done)
	defer func() {
		// Closing the connection also tells the candidates the lock is
		// free, if the row is still ours.
		if l.conn != nil {
			l.conn.Close(context.Background())
		}
	}()
	every := b.ttl / 3
	// The first renewal is due a third of the TTL into the lease, which
	// began before the takeover was sent.
	l.mu.Lock()
	first := time.Until(l.deadline) - 2*every
	l.mu.Unlock()
	t := time.NewTimer(max(first, 0))
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.lost:
			return
		case <-t.C:
		}
		l.mu.Lock()
		deadline := l.deadline
		l.mu.Unlock()
		start := time.Now()
		if !start.Before(deadline) {
			l.lose("it could not be renewed in time")
			return
		}
		if b.hooks.pauseRenewals.Load() {
			t.Reset(min(every, deadline.Sub(start)))
			continue
		}
		ok, err := l.renewOnce(deadline)
		switch {
		case err == nil && ok:
			l.mu.Lock()
			l.deadline = start.Add(b.ttl)
			l.mu.Unlock()
			t.Reset(every)
		case err == nil:
			l.lose("another node took it over, or it expired")
			return
		default:
			if l.ctx.Err() != nil {
				return
			}
			b.logger.Warn("postgres: could not renew the leader lock; retrying", "error", err)
			if l.conn != nil {
				l.conn.Close(context.Background())
				l.conn = nil
			}
			t.Reset(min(b.retryInt, time.Until(deadline)))
		}
	}
}

// renewOnce extends the lease, if the row is still ours and unexpired,
// reporting whether it was. It gives up at the local deadline.
func (l *leadership) renewOnce(deadline time.Time) (bool, error) {
	b := l.b
	ctx, cancel := context.WithDeadline(l.ctx, deadline)
	defer cancel()
	if l.conn == nil || l.conn.IsClosed() {
		c, err := b.dialLock(ctx)
		if err != nil {
			return false, err
		}
		l.conn = c
	}
	tag, err := l.conn.Exec(ctx, b.q.renew, l.name, l.id, l.epoch, b.ttl.Microseconds())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}
