package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// snapshotBatch is how many rows one query of a Snapshot reads. Rows are
// handed to fn as they arrive, so memory holds one row at a time; the
// batches keep each query an index range scan.
const snapshotBatch = 1000

// Snapshot calls fn for every entry, in key order, from one consistent
// view: a REPEATABLE READ, READ ONLY transaction whose rows are read in
// batches by key. Writes go on while it runs. It stops at fn's first error
// and returns it. A transient failure before fn was first called is
// retried.
func (b *Backend) Snapshot(ctx context.Context, fn func(key string, value []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.closed.Load() {
		return storage.ErrClosed
	}
	called := false
	var fnErr error
	err := b.retry(ctx, func(ctx context.Context) error {
		err := b.snapshotOnce(ctx, func(k string, v []byte) error {
			called = true
			if err := fn(k, v); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
		if err != nil && called {
			// Entries were handed out: another attempt would repeat
			// them, from another view.
			return permanent{err}
		}
		return err
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return b.wrap("snapshot", "", err)
	}
	return nil
}

func (b *Backend) snapshotOnce(ctx context.Context, fn func(string, []byte) error) (err error) {
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() {
		if rerr := tx.Rollback(context.WithoutCancel(ctx)); err == nil && rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			err = rerr
		}
	}()
	// The first batch starts after the empty key, which is not a valid
	// key: every key sorts after it.
	after := []byte{}
	for {
		rows, err := tx.Query(ctx, b.q.snapshot, after, snapshotBatch)
		if err != nil {
			return err
		}
		n := 0
		var k, v []byte
		_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
			n++
			after = k
			return fn(string(k), nonNil(v))
		})
		if err != nil {
			return err
		}
		if n < snapshotBatch {
			return nil
		}
	}
}

// Restore replaces the whole content with the entries next yields, until
// it returns io.EOF. The entries are first copied (COPY) into a temporary
// table of the connection's session, which locks nothing; one statement
// then replaces the content, atomically and, once a Campaign succeeded,
// fenced like every write. If next fails, a key is invalid or repeated,
// or the lock is lost, the old content is left as it was.
func (b *Backend) Restore(ctx context.Context, next func() (storage.Entry, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.closed.Load() {
		return storage.ErrClosed
	}
	l, err := b.fence("restore", "")
	if err != nil {
		return err
	}
	var conn *pgxpool.Conn
	err = b.retry(ctx, func(ctx context.Context) error {
		c, err := b.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		if _, err := c.Exec(ctx, b.q.stageDrop); err != nil {
			discard(c)
			return err
		}
		if _, err := c.Exec(ctx, b.q.stageCreate); err != nil {
			discard(c)
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		return b.wrap("restore", "", err)
	}
	clean := false
	defer func() {
		if !clean {
			// The session may hold the staged rows or be mid-COPY:
			// closing it discards everything.
			discard(conn)
			return
		}
		conn.Release()
	}()

	src := &entrySource{next: next}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"pg_temp", stageTable}, []string{"key", "value"}, src); err != nil {
		if src.err != nil {
			return fmt.Errorf("postgres: restore: %w", src.err)
		}
		return b.wrap("restore", "", err)
	}
	// Check the local lease again: the copy may have taken long.
	if l != nil && !b.hooks.skipLocalFence.Load() && !l.valid() {
		return b.fenced("restore", "")
	}
	sql, args := b.q.restoreApply[0], []any{}
	if l != nil {
		sql, args = b.q.restoreApply[1], []any{l.name, l.id, l.epoch}
	}
	var held bool
	// QueryExecModeExec: no prepared statement kept on the connection,
	// as the staging table it names is dropped after each restore.
	if err := conn.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...).Scan(&held); err != nil {
		return b.wrap("restore", "", err)
	}
	if _, err := conn.Exec(ctx, b.q.stageDrop); err == nil {
		clean = true
	}
	if !held {
		l.lose("the database refused a restore: the lock was taken over or expired")
		return b.fenced("restore", "")
	}
	return nil
}

// discard closes a pooled connection, so that the pool drops it, and
// releases it.
func discard(c *pgxpool.Conn) {
	_ = c.Conn().Close(context.Background())
	c.Release()
}

// entrySource feeds COPY from a Restore's next, validating each key.
type entrySource struct {
	next func() (storage.Entry, error)
	cur  storage.Entry
	err  error
}

func (s *entrySource) Next() bool {
	e, err := s.next()
	if errors.Is(err, io.EOF) {
		return false
	}
	if err == nil {
		err = validateKey(e.Key)
	}
	if err != nil {
		s.err = err
		return false
	}
	s.cur = e
	return true
}

func (s *entrySource) Values() ([]any, error) {
	return []any{[]byte(s.cur.Key), nonNil(s.cur.Value)}, nil
}

func (s *entrySource) Err() error { return s.err }
