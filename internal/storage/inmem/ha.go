package inmem

import (
	"context"
	"fmt"
	"sync"

	"github.com/vigil-secrets/vigil/internal/storage"
)

var _ storage.HABackend = (*Node)(nil)

// leaderLock is the leader lock the Nodes of one Backend share.
type leaderLock struct {
	holder storage.Holder
	held   bool
	epoch  uint64
	// lost is closed when the current holder loses the lock.
	lost chan struct{}
	// changed is closed (and replaced) whenever the lock is freed, to wake
	// the candidates.
	changed chan struct{}
	// banned may not take the lock until another node has (KillLeader).
	banned string
}

// Node is one server's handle on a Backend shared by several in-process
// servers: a [storage.HABackend] whose lock lives in memory, for the HA
// tests of the core. Its writes are fenced as the contract says.
type Node struct {
	b *Backend

	mu      sync.Mutex
	fencing bool   // a Campaign has succeeded once
	epoch   uint64 // the epoch this node won last
}

// Node returns a new HA handle on b.
func (b *Backend) Node() *Node { return &Node{b: b} }

// BreakLock frees the leader lock as if its holder had died or let it
// expire: the holder's Leadership is lost and its writes are fenced.
func (b *Backend) BreakLock() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.freeLocked()
}

// KillLeader frees the leader lock as if its holder had died: its
// Leadership is lost, its writes are fenced, and it cannot take the lock
// again before another node has (as a dead server that restarts), so
// another candidate wins.
func (b *Backend) KillLeader() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.lock.held {
		return
	}
	b.lock.banned = b.lock.holder.ID
	b.freeLocked()
}

// freeLocked frees the lock. b.mu must be held.
func (b *Backend) freeLocked() {
	l := &b.lock
	if !l.held {
		return
	}
	l.held = false
	l.holder = storage.Holder{}
	close(l.lost)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// guard refuses a write of a node that won the lock once and no longer
// holds that epoch of it. b.mu must be held.
func (n *Node) guard() error {
	n.mu.Lock()
	fencing, epoch := n.fencing, n.epoch
	n.mu.Unlock()
	if fencing && (!n.b.lock.held || n.b.lock.epoch != epoch) {
		return fmt.Errorf("inmem: write refused: %w", storage.ErrFenced)
	}
	return nil
}

// Get reads key.
func (n *Node) Get(ctx context.Context, key string) ([]byte, error) { return n.b.Get(ctx, key) }

// List lists prefix.
func (n *Node) List(ctx context.Context, prefix string) ([]string, error) {
	return n.b.List(ctx, prefix)
}

// Put stores value at key, fenced.
func (n *Node) Put(ctx context.Context, key string, value []byte) error {
	return n.Transaction(ctx, []storage.Op{{Key: key, Value: value}})
}

// Delete removes key, fenced.
func (n *Node) Delete(ctx context.Context, key string) error {
	return n.Transaction(ctx, []storage.Op{{Key: key, Delete: true}})
}

// Transaction applies ops atomically, fenced.
func (n *Node) Transaction(ctx context.Context, ops []storage.Op) error {
	return n.b.apply(ctx, ops, n.guard)
}

// Campaign waits until the lock is free and takes it.
func (n *Node) Campaign(ctx context.Context, id, addr string) (storage.Leadership, error) {
	b := n.b
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, storage.ErrClosed
		}
		l := &b.lock
		if !l.held && l.banned != id {
			l.banned = ""
			l.held = true
			l.epoch++
			l.holder = storage.Holder{ID: id, Addr: addr}
			l.lost = make(chan struct{})
			lead := &leadership{n: n, epoch: l.epoch, lost: l.lost}
			n.mu.Lock()
			n.fencing, n.epoch = true, l.epoch
			n.mu.Unlock()
			b.mu.Unlock()
			return lead, nil
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		wake := l.changed
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// Leader returns the lock's holder.
func (n *Node) Leader(ctx context.Context) (storage.Holder, bool, error) {
	if err := ctx.Err(); err != nil {
		return storage.Holder{}, false, err
	}
	n.b.mu.RLock()
	defer n.b.mu.RUnlock()
	if n.b.closed {
		return storage.Holder{}, false, storage.ErrClosed
	}
	return n.b.lock.holder, n.b.lock.held, nil
}

type leadership struct {
	n     *Node
	epoch uint64
	lost  chan struct{}
}

func (l *leadership) Lost() <-chan struct{} { return l.lost }

func (l *leadership) Release(ctx context.Context) error {
	b := l.n.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lock.held && b.lock.epoch == l.epoch {
		b.freeLocked()
	}
	return nil
}
