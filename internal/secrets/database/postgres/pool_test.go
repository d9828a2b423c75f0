package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// TestPoolLimits checks the pool's limits: connections open at once,
// idle connections kept, and their lifetime.
func TestPoolLimits(t *testing.T) {
	db := pgtest.New(t)
	cfg, err := pgx.ParseConfig(db.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now()
	p := newPool(cfg, 1, 1, time.Minute)
	p.now = func() time.Time { return now }
	defer p.close()

	c1, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second connection beyond max_open_connections: %v", err)
	}
	p.release(c1)
	c2, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c2 != c1 {
		t.Error("an idle connection was not reused")
	}
	p.release(c2)

	// Past its lifetime a connection is closed, not reused.
	now = now.Add(time.Minute)
	c3, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c3 == c1 || !c1.IsClosed() {
		t.Error("a connection past its lifetime was reused or left open")
	}
	p.release(c3)

	// With no idle connections allowed, a released one is closed.
	p0 := newPool(cfg, 2, 0, 0)
	defer p0.close()
	c4, err := p0.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p0.release(c4)
	if !c4.IsClosed() {
		t.Error("a connection was kept idle with max idle 0")
	}

	p.close()
	if _, err := p.acquire(ctx); !errors.Is(err, errClosed) {
		t.Errorf("acquire after close: %v", err)
	}
}
