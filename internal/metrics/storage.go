package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// Storage returns b timed by operation under the backend label name. The
// result is transactional when b is; it never closes b (the owner of b
// does). It is a [storage.Wrapper]: the other optional interfaces of b
// (snapshots) are reached through Unwrap, untimed.
func (m *Metrics) Storage(name string, b storage.Backend) storage.Backend {
	in := &timedBackend{b: b, m: m, name: name, epoch: time.Now()}
	for i, op := range storageOps {
		in.dur[i] = m.storageDur.with(name, op)
	}
	if tb, ok := b.(storage.Transactional); ok {
		return &timedTxBackend{timedBackend: in, tb: tb}
	}
	return in
}

// The operations of the storage metrics, indexed by the op constants.
const (
	opGet = iota
	opPut
	opDelete
	opList
	opTransaction
)

var storageOps = [...]string{"get", "put", "delete", "list", "transaction"}

type timedBackend struct {
	b    storage.Backend
	m    *Metrics
	name string
	dur  [len(storageOps)]*durationHistogram
	// epoch makes a monotonic clock of time.Since: one reading of the
	// clock where time.Now takes two (a cached read is over in about the
	// time of four).
	epoch time.Time
}

// now is the time since epoch, by the monotonic clock alone.
func (t *timedBackend) now() time.Duration { return time.Since(t.epoch) }

// Unwrap implements [storage.Wrapper].
func (t *timedBackend) Unwrap() storage.Backend { return t.b }

// done records an operation that began at start (a reading of t.now).
func (t *timedBackend) done(op int, start time.Duration, err error) {
	t.dur[op].Observe(t.now() - start)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.m.storageErr.WithLabelValues(t.name, storageOps[op]).Inc()
	}
}

func (t *timedBackend) Get(ctx context.Context, key string) ([]byte, error) {
	start := t.now()
	v, err := t.b.Get(ctx, key)
	t.done(opGet, start, err)
	return v, err
}

func (t *timedBackend) Put(ctx context.Context, key string, value []byte) error {
	start := t.now()
	err := t.b.Put(ctx, key, value)
	t.done(opPut, start, err)
	return err
}

func (t *timedBackend) Delete(ctx context.Context, key string) error {
	start := t.now()
	err := t.b.Delete(ctx, key)
	t.done(opDelete, start, err)
	return err
}

func (t *timedBackend) List(ctx context.Context, prefix string) ([]string, error) {
	start := t.now()
	keys, err := t.b.List(ctx, prefix)
	t.done(opList, start, err)
	return keys, err
}

type timedTxBackend struct {
	*timedBackend
	tb storage.Transactional
}

func (t *timedTxBackend) Transaction(ctx context.Context, ops []storage.Op) error {
	start := t.now()
	err := t.tb.Transaction(ctx, ops)
	t.done(opTransaction, start, err)
	return err
}
