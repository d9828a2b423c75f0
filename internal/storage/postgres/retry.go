package postgres

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Retries of transient failures: about 1.5 s in all, enough to ride out a
// dropped connection or a failover, short enough that a caller hears of a
// real outage soon.
const (
	retryAttempts = 6
	retryFirst    = 50 * time.Millisecond
	retryMax      = time.Second
)

// retry runs op until it succeeds, fails with an error that is not
// transient, the attempts run out or ctx ends. Only operations that may
// run twice are retried: reads, and writes that are idempotent (every
// Put, Delete and Transaction is: it sets keys to given values).
func (b *Backend) retry(ctx context.Context, op func(context.Context) error) error {
	delay := retryFirst
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || attempt == retryAttempts || !transient(err) || ctx.Err() != nil || b.closed.Load() {
			return err
		}
		b.retries.Add(1)
		b.logger.Debug("postgres: retrying after a transient error", "attempt", attempt, "error", err)
		// Jitter, so that replicas cut off together do not come back in
		// step.
		d := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
	}
}

// transient reports whether err is a failure that another attempt may
// not meet: the connection broke or could not be made, the server is
// shutting down or starting, or PostgreSQL asked for the transaction to
// be retried.
func transient(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", // serialization_failure
			"40P01", // deadlock_detected
			"57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"57P03": // cannot_connect_now
			return true
		}
		// Class 08: connection exceptions.
		return len(pgErr.Code) == 5 && pgErr.Code[:2] == "08"
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// permanent marks an error as not to be retried, whatever its cause.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }
