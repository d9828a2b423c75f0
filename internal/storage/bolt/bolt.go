// Package bolt is the single-node, file-backed storage.Backend, built on
// go.etcd.io/bbolt. It stores every key in one bucket of one file and holds
// an exclusive lock on that file while open, so only one process can use a
// data file at a time.
//
// # Durability
//
// Put, Delete and Transaction return nil only after their write has been
// committed and the file fsynced (unless [Options.NoSync] is set, which is
// for tests only). Get and List read from a consistent snapshot.
//
// # Group commit
//
// An fsync costs far more than the writes it makes durable, so concurrent
// writers share commits. Every write is queued to one writer goroutine that
// takes all queued requests (up to [Options.MaxBatch] ops), applies them in
// one bbolt transaction and commits once; then it answers every request in
// the batch. An idle store therefore answers a write after one fsync, and a
// busy one amortises each fsync over many writes. If a batch fails, each of
// its requests is retried in its own transaction, so one bad request never
// costs the others their write.
//
// A caller whose context is cancelled while its write is queued gets
// ctx.Err() back at once, but the write may still be applied: cancellation
// only stops the wait, not the write.
//
// The package never logs keys or values, only errors.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vigil-secrets/vigil/internal/storage"
)

var (
	_ storage.Backend       = (*Backend)(nil)
	_ storage.Transactional = (*Backend)(nil)
	_ storage.Closer        = (*Backend)(nil)
)

// ErrLocked is returned by [Open] when another process (or another open
// Backend in this process) holds the data file.
var ErrLocked = errors.New("database is locked by another process")

// ErrKeyTooLong is returned, wrapped together with [storage.ErrInvalidKey],
// for a key longer than bbolt accepts.
var ErrKeyTooLong = errors.New("key too long")

const (
	// bucketName is the one bucket that holds every key.
	bucketName = "vigil"
	// lockTimeout bounds the wait for the file lock, so that a second
	// process fails with ErrLocked instead of hanging.
	lockTimeout = time.Second
	// defaultMaxBatch is the default of Options.MaxBatch.
	defaultMaxBatch = 1000
	// queueLen is the capacity of the writer's request queue. Callers
	// beyond it wait to enqueue; the batch size is set by MaxBatch.
	queueLen = 256
)

// Options configures [Open]. The zero value is the production setting.
type Options struct {
	// Logger receives errors. Nil discards them.
	Logger *slog.Logger
	// NoSync skips fsync on commit. It is for tests only: with it set a
	// machine crash can lose acknowledged writes.
	NoSync bool
	// MaxBatch is the number of ops after which the writer stops adding
	// requests to a commit. Zero or less means 1000. A single request
	// larger than MaxBatch is still committed whole, in its own commit.
	MaxBatch int
	// CacheBytes bounds the read cache of recently read and written
	// values (ciphertext). Zero means 32 MiB; negative disables it.
	CacheBytes int
}

// Stats counts the work of the writer goroutine.
type Stats struct {
	// Commits is the number of successful bbolt write commits.
	Commits uint64
	// Writes is the number of write requests (Put, Delete or Transaction
	// calls) that were committed.
	Writes uint64
}

// Backend is a bbolt-backed [storage.Backend]. It is safe for concurrent
// use. Create one with [Open] and release it with [Backend.Close].
type Backend struct {
	db       *bbolt.DB
	logger   *slog.Logger
	maxBatch int

	// mu guards closed and the sends on reqs: senders hold it for
	// reading, and Close takes it for writing before it closes reqs, so a
	// send never meets a closed channel. Readers (Get, List, Backup) also
	// hold it for reading, so Close waits for them.
	mu     sync.RWMutex
	closed bool
	// shut mirrors closed for the read cache's lock-free fast path.
	shut atomic.Bool

	reqs       chan *writeReq
	writerDone chan struct{}

	commits atomic.Uint64
	writes  atomic.Uint64

	cache *readCache
}

// writeReq is one Put, Delete or Transaction waiting for the writer.
type writeReq struct {
	ops  []storage.Op // validated, values already copied
	done chan error   // buffered, so the writer never blocks on it
}

// Open opens (creating if needed) the data file at path. The parent
// directory is created with mode 0700 and a new file with mode 0600. If
// another process holds the file, Open fails with [ErrLocked] after about
// a second.
func Open(path string, opts Options) (*Backend, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	maxBatch := opts.MaxBatch
	if maxBatch <= 0 {
		maxBatch = defaultMaxBatch
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create directory: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: lockTimeout,
		NoSync:  opts.NoSync,
		// The freelist is rebuilt by scanning on open instead of being
		// written at every commit: fewer pages per commit.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(bucketName))
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: create bucket: %w", err)
	}
	b := &Backend{
		db:         db,
		logger:     logger,
		maxBatch:   maxBatch,
		reqs:       make(chan *writeReq, queueLen),
		writerDone: make(chan struct{}),
		cache:      newReadCache(cacheBytes(opts.CacheBytes)),
	}
	go b.writer()
	return b, nil
}

// Get returns a copy of the value stored at key.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validateKey(key); err != nil {
		return nil, err
	}
	if b.shut.Load() {
		return nil, storage.ErrClosed
	}
	cached, ok, epoch := b.cache.get(key)
	if ok {
		return cached, nil
	}
	var out []byte
	err := b.view(func(bkt *bbolt.Bucket) error {
		k, v := bkt.Cursor().Seek([]byte(key))
		// Seek rather than Bucket.Get, which cannot tell an empty value
		// from a missing key.
		if k == nil || !bytes.Equal(k, []byte(key)) {
			return storage.ErrNotFound
		}
		out = make([]byte, len(v))
		copy(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	b.cache.fill(key, out, epoch)
	return out, nil
}

// Put stores a copy of value at key and returns once it is durable.
func (b *Backend) Put(ctx context.Context, key string, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	v := make([]byte, len(value))
	copy(v, value)
	return b.write(ctx, []storage.Op{{Key: key, Value: v}})
}

// Delete removes key and returns once the removal is durable. Deleting a
// missing key is not an error.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	return b.write(ctx, []storage.Op{{Key: key, Delete: true}})
}

// Transaction applies ops in order in one commit: after a crash either all
// of them are visible or none is. An invalid key fails the whole
// transaction before anything is written.
func (b *Backend) Transaction(ctx context.Context, ops []storage.Op) error {
	own := make([]storage.Op, len(ops))
	for i, op := range ops {
		if err := validateKey(op.Key); err != nil {
			return err
		}
		own[i] = storage.Op{Key: op.Key, Delete: op.Delete}
		if !op.Delete {
			own[i].Value = make([]byte, len(op.Value))
			copy(own[i].Value, op.Value)
		}
	}
	if len(own) == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.mu.RLock()
		defer b.mu.RUnlock()
		if b.closed {
			return storage.ErrClosed
		}
		return nil
	}
	return b.write(ctx, own)
}

// List returns the immediate children of prefix, sorted, directories once
// with a trailing '/'. It skips over each child directory's subtree with a
// cursor seek, so its cost grows with the number of children, not with the
// number of descendants.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []string
	err := b.view(func(bkt *bbolt.Bucket) error {
		c := bkt.Cursor()
		p := []byte(prefix)
		k, _ := c.Seek(p)
		for k != nil && bytes.HasPrefix(k, p) {
			child, ok := storage.ChildOf(prefix, string(k))
			if !ok { // k equals prefix: not a child of itself
				k, _ = c.Next()
				continue
			}
			out = append(out, child)
			if strings.HasSuffix(child, "/") {
				// Every key of the subtree starts with prefix+child; '0'
				// is the byte after '/', so this seeks just past it.
				k, _ = c.Seek([]byte(prefix + child[:len(child)-1] + "0"))
				continue
			}
			k, _ = c.Next()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Backup writes a consistent snapshot of the whole data file to w and
// returns the number of bytes written. Writes continue while it runs; the
// snapshot is the state when Backup began.
func (b *Backend) Backup(w io.Writer) (int64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, storage.ErrClosed
	}
	var n int64
	err := b.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("bolt: backup: %w", err)
	}
	return n, nil
}

// Stats returns the writer's counters.
func (b *Backend) Stats() Stats {
	return Stats{Commits: b.commits.Load(), Writes: b.writes.Load()}
}

// Close waits for queued writes to be committed and answered, stops the
// writer and closes the file. Every later call returns
// [storage.ErrClosed]. Closing twice is safe.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.shut.Store(true)
	close(b.reqs)
	b.mu.Unlock()

	// The writer drains what was queued before reqs was closed.
	<-b.writerDone
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// view runs fn in a read-only transaction on the bucket.
func (b *Backend) view(fn func(*bbolt.Bucket) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return storage.ErrClosed
	}
	return b.db.View(func(tx *bbolt.Tx) error {
		bkt := tx.Bucket([]byte(bucketName))
		if bkt == nil {
			return fmt.Errorf("bolt: bucket %q missing", bucketName)
		}
		return fn(bkt)
	})
}

// write queues ops for the writer and waits for the commit, or for ctx.
func (b *Backend) write(ctx context.Context, ops []storage.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeReq{ops: ops, done: make(chan error, 1)}
	if err := b.enqueue(ctx, req); err != nil {
		return err
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The writer may still apply req; see the package doc.
		return ctx.Err()
	}
}

// enqueue hands req to the writer. It holds mu for reading so that Close
// cannot close reqs under it; the writer keeps draining, so the send
// cannot block forever.
func (b *Backend) enqueue(ctx context.Context, req *writeReq) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return storage.ErrClosed
	}
	select {
	case b.reqs <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer is the single goroutine that commits writes. It exits when reqs
// is closed and drained.
func (b *Backend) writer() {
	defer close(b.writerDone)
	batch := make([]*writeReq, 0, 64)
	for first := range b.reqs {
		batch = append(batch[:0], first)
		n := len(first.ops)
	drain:
		for n < b.maxBatch {
			select {
			case r, ok := <-b.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				n += len(r.ops)
			default:
				break drain
			}
		}
		b.commit(batch)
		clear(batch) // drop references to committed values
	}
}

// commit applies batch in one transaction and answers every request. If
// that fails, it retries each request alone so each gets its own result.
func (b *Backend) commit(batch []*writeReq) {
	err := b.db.Update(func(tx *bbolt.Tx) error {
		for _, r := range batch {
			if err := apply(tx, r.ops); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.cache.invalidate()
	}
	if err == nil {
		b.cache.committed(batch)
		b.commits.Add(1)
		b.writes.Add(uint64(len(batch)))
		for _, r := range batch {
			r.done <- nil
		}
		return
	}
	if len(batch) > 1 {
		b.logger.Warn("bolt group commit failed, retrying requests one by one",
			"batch_size", len(batch), "error", err)
		for _, r := range batch {
			b.commit([]*writeReq{r})
		}
		return
	}
	b.logger.Error("bolt commit failed", "ops", len(batch[0].ops), "error", err)
	batch[0].done <- fmt.Errorf("bolt: commit: %w", err)
}

// apply performs ops, in order, inside tx.
func apply(tx *bbolt.Tx, ops []storage.Op) error {
	bkt := tx.Bucket([]byte(bucketName))
	if bkt == nil {
		return fmt.Errorf("bucket %q missing", bucketName)
	}
	for _, op := range ops {
		var err error
		if op.Delete {
			err = bkt.Delete([]byte(op.Key))
		} else {
			err = bkt.Put([]byte(op.Key), op.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func cacheBytes(n int) int {
	switch {
	case n == 0:
		return 32 << 20
	case n < 0:
		return 0
	}
	return n
}

// validateKey applies storage.ValidateKey and bbolt's key length limit,
// so that a bad key is rejected before it can fail a shared batch.
func validateKey(key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if len(key) > bbolt.MaxKeySize {
		return fmt.Errorf("bolt: %w: %w", storage.ErrInvalidKey, ErrKeyTooLong)
	}
	return nil
}
