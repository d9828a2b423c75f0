package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pingAfter is how long a connection may sit idle before it is checked
// with a ping when taken from the pool: the server may have closed it.
const pingAfter = time.Second

// pool is a small connection pool with database/sql's limits, which
// pgxpool does not have all of: at most maxOpen connections at once, at
// most maxIdle kept while unused, each closed lifetime after it opened.
type pool struct {
	cfg      *pgx.ConnConfig
	maxIdle  int
	lifetime time.Duration
	now      func() time.Time

	// slots holds one token per connection that may be open.
	slots chan struct{}

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
}

// conn is a pooled connection.
type conn struct {
	*pgx.Conn
	opened   time.Time
	lastUsed time.Time
}

var errClosed = errors.New("connection pool closed")

func newPool(cfg *pgx.ConnConfig, maxOpen, maxIdle int, lifetime time.Duration) *pool {
	return &pool{
		cfg:      cfg,
		maxIdle:  maxIdle,
		lifetime: lifetime,
		now:      time.Now,
		slots:    make(chan struct{}, maxOpen),
	}
}

// acquire returns a connection for the caller's exclusive use, opening
// one if none is idle; release gives it back.
func (p *pool) acquire(ctx context.Context) (*conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		c, err := p.popIdle()
		if err != nil {
			<-p.slots
			return nil, err
		}
		if c == nil {
			break
		}
		if p.now().Sub(c.lastUsed) < pingAfter || c.Ping(ctx) == nil {
			return c, nil
		}
		p.discard(c)
	}
	pc, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		<-p.slots
		return nil, err
	}
	now := p.now()
	return &conn{Conn: pc, opened: now, lastUsed: now}, nil
}

// popIdle takes the most recently used idle connection that has not
// outlived its lifetime, closing those that have.
func (p *pool) popIdle() (*conn, error) {
	var old []*conn
	defer func() {
		for _, c := range old {
			p.discard(c)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if p.expired(c) {
			old = append(old, c)
			continue
		}
		return c, nil
	}
	return nil, nil
}

func (p *pool) expired(c *conn) bool {
	return p.lifetime > 0 && p.now().Sub(c.opened) >= p.lifetime
}

// release returns c to the pool, or closes it when it is broken, in a
// transaction, too old, or the pool has enough idle connections.
func (p *pool) release(c *conn) {
	defer func() { <-p.slots }()
	c.lastUsed = p.now()
	keep := !c.IsClosed() && c.PgConn().TxStatus() == 'I' && !p.expired(c)
	p.mu.Lock()
	if keep && !p.closed && len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.discard(c)
}

// discard closes c.
func (p *pool) discard(c *conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// close closes the idle connections; those in use are closed when they
// are released.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		p.discard(c)
	}
}
