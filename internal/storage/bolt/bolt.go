// Package bolt is the single-node, file-backed storage.Backend, built on
// go.etcd.io/bbolt. It stores every key in one bucket of one file and holds
// an exclusive lock on that file while open, so only one process can use a
// data file at a time.
//
// # Durability and group commit
//
// Put, Delete and Transaction return nil only after their write is in the
// write-ahead log (two files beside the data file, "vigil.db-wal.0" and
// "vigil.db-wal.1" for "vigil.db") and the log has been fsynced (unless
// [Options.NoSync] is set, which is for tests only).
//
// An fsync costs far more than the writes it makes durable, and a bbolt
// commit rewrites every B+tree page a write touches, so writes are not
// committed to bbolt one by one. Every write is queued to one writer
// goroutine that takes all queued requests (up to [Options.MaxBatch] ops),
// appends them to the log as one record, fsyncs once and answers every
// request of the batch: an idle store answers after one small sequential
// write and one fsync, a busy one shares each fsync among many writes.
// When the last batch held more than one request, the writer yields the
// processor once before it takes the queued ones, so that writers ready
// to run can queue theirs too: under load about twice as many writes
// share each fsync.
// On Linux the fsync goes through an io_uring where the kernel allows it
// (see uring_linux.go): the writer then waits for it like a network read,
// without keeping a processor that requests could use. Elsewhere, or where
// io_uring is refused, it is fdatasync.
//
// Logged writes are kept in memory until a checkpoint applies them to
// bbolt in one sorted, fsynced commit. A checkpoint starts when the log
// segment being written holds [Options.CheckpointBytes] (or, for many
// small writes, when the writes kept in memory take about twice that) and
// runs in the background while records go to the other segment, written
// again from its start; only a checkpoint that outlasts a whole segment's
// worth of writes makes writers wait. Keys are mostly random (salted
// hashes), so a checkpoint rewrites about one B+tree leaf page per key, up
// to every leaf of the tree: the larger the checkpoint (and the page: new
// data files have 16 KiB pages), the less work per key. Close and Backup
// checkpoint everything first.
// The segments keep their size and are filled with zeros before records
// are written into them, so that a commit overwrites allocated blocks and
// needs only a data sync, not a journal commit. Open replays the log, so a
// crash loses nothing that was acknowledged; a torn record at the end of
// the log is a write that never was.
//
// A Get of a key the store never held is answered by a Bloom filter of its
// keys (see filter.go) without reading bbolt: every write of a new secret
// first looks for its key. The filter is built when the store opens (a
// scan of its keys) and again, twice as large, whenever as many keys were
// added as it was made for.
//
// Get, List, Backup and Snapshot see every acknowledged write. A request
// that is invalid is refused before it reaches the log, so it never costs
// the others in its batch their write. If the log cannot be written or synced,
// the store refuses every later write (its state on disk is no longer
// known); reads go on, and a restart recovers from the log.
//
// A caller whose context is cancelled while its write is queued gets
// ctx.Err() back at once, but the write may still be applied: cancellation
// only stops the wait, not the write.
//
// # Snapshots and restores
//
// [Backend.Snapshot] checkpoints the log (as Backup does) and reads one bbolt
// read transaction: every write acknowledged before the call, and a state
// after a whole log record. [Backend.Restore] writes the new content into a
// second data bucket in bounded batches while the store keeps serving the
// old one, then has the writer swap the buckets in one bbolt commit (which
// also deletes the old bucket) and empty the read cache; no write is
// committed between the last checkpoint and the swap. Which bucket holds the
// data is recorded in the meta bucket, read in the same transaction as the
// data. A crash before the swap leaves the old content (Open drops the
// half-written bucket); after it, the new one, and the log holds nothing
// newer than the swap, so replay adds nothing to it.
//
// The package never logs keys or values, only errors.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	_ storage.Snapshotter   = (*Backend)(nil)
)

// ErrLocked is returned by [Open] when another process (or another open
// Backend in this process) holds the data file.
var ErrLocked = errors.New("database is locked by another process")

// ErrKeyTooLong is returned, wrapped together with [storage.ErrInvalidKey],
// for a key longer than bbolt accepts.
var ErrKeyTooLong = errors.New("key too long")

const (
	// bucketName is the bucket that holds every key, or altBucketName
	// after an odd number of restores (see dataBucketKey).
	bucketName    = "vigil"
	altBucketName = "vigil-alt"
	// lockTimeout bounds the wait for the file lock, so that a second
	// process fails with ErrLocked instead of hanging.
	lockTimeout = time.Second
	// defaultMaxBatch is the default of Options.MaxBatch.
	defaultMaxBatch = 1000
	// defaultCheckpointBytes is the default of Options.CheckpointBytes.
	defaultCheckpointBytes = 16 << 20
	// pendingMemFactor also triggers a checkpoint: when the pending
	// writes hold about pendingMemFactor*CheckpointBytes of memory (many
	// small writes, whose bookkeeping outweighs their bytes in the log).
	pendingMemFactor = 2
	// maxBatchBytes ends a batch early, and maxRequestBytes bounds one
	// request, so that every log record stays well below maxRecord.
	maxBatchBytes   = 64 << 20
	maxRequestBytes = 256 << 20
	// walChunk is the step by which the log file grows (zero-filled).
	walChunk = 1 << 20
	// metaBucket holds the store's own records (never user keys).
	metaBucket = "vigil-meta"
	// appliedSeqKey records the last log record a checkpoint applied.
	appliedSeqKey = "wal-applied-seq"
	// dataBucketKey names the bucket that holds the keys; absent, it is
	// bucketName. Restore fills the other one and swaps.
	dataBucketKey = "data-bucket"
	// restoreBatchOps and restoreBatchBytes bound one commit of a
	// restore, and so the memory it holds.
	restoreBatchOps   = 4096
	restoreBatchBytes = 8 << 20
	// pageSize is the bbolt page size of a new data file (an existing
	// one keeps its own). A checkpoint of random keys rewrites a leaf
	// page per key, up to every leaf: larger pages hold more keys, so a
	// checkpoint writes fewer of them, in fewer system calls (measured:
	// about a third less CPU per key than with 4 KiB pages).
	pageSize = 16 << 10
	// queueLen is the capacity of the writer's request queue. Callers
	// beyond it wait to enqueue; the batch size is set by MaxBatch.
	queueLen = 256
)

// Options configures [Open]. The zero value is the production setting.
type Options struct {
	// Logger receives errors. Nil discards them.
	Logger *slog.Logger
	// NoSync skips every fsync. It is for tests only: with it set a
	// machine crash can lose acknowledged writes.
	NoSync bool
	// MaxBatch is the number of ops after which the writer stops adding
	// requests to a commit. Zero or less means 1000. A single request
	// larger than MaxBatch is still committed whole, in its own commit.
	MaxBatch int
	// CheckpointBytes is the size a write-ahead log segment reaches
	// before a checkpoint applies the writes it holds (kept in memory
	// until then) to bbolt and records go to the other segment. Zero
	// means 16 MiB. The writes kept in memory take at most about twice
	// as much for the segment being written and as much again for the
	// one being checkpointed.
	CheckpointBytes int
	// CacheBytes bounds the read cache of recently read and written
	// values (ciphertext). Zero means 32 MiB; negative disables it.
	CacheBytes int
}

// Stats counts the work of the writer goroutine.
type Stats struct {
	// Commits is the number of group commits (fsynced log records).
	Commits uint64
	// Writes is the number of write requests (Put, Delete or Transaction
	// calls) that were committed.
	Writes uint64
	// Checkpoints is the number of checkpoints into bbolt.
	Checkpoints uint64
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

	commits     atomic.Uint64
	writes      atomic.Uint64
	checkpoints atomic.Uint64

	cache *readCache
	// filter holds every key the store may hold (see keyFilter). Only
	// the writer replaces it.
	filter atomic.Pointer[keyFilter]

	// pmu guards pending and frozen, the logged writes not yet in bbolt,
	// by key (the last op on each key). pending holds those logged since
	// the last checkpoint began, frozen (nil between checkpoints) those
	// the running checkpoint applies; pending comes first. Only the
	// writer changes them, and frozen is never modified, only replaced.
	pmu     sync.RWMutex
	pending *pendingSet
	frozen  *pendingSet

	// Owned by the writer goroutine.
	segs            [2]logSegment
	cur             int        // the segment records are appended to
	walBuf          []byte     // encoding buffer
	seq             uint64     // of the last record written
	frozenSeq       uint64     // of the last record in frozen
	ckpt            chan error // the running checkpoint's result; nil if none runs
	checkpointBytes int
	noSync          bool
	syncer          logSyncer
	zeros           []byte // walChunk zero bytes, to grow a segment with
	broken          error  // set when the log can no longer be trusted

	// onCheckpoint, if set (by tests), runs in the writer before each
	// checkpoint it makes while running.
	onCheckpoint func()

	// restoreMu serializes restores: they share the spare bucket.
	restoreMu sync.Mutex
}

// logSegment is one of the two files of the write-ahead log. Records are
// appended to one while a checkpoint applies those of the other to bbolt,
// so checkpoints do not stall writes.
type logSegment struct {
	f     *os.File
	size  int64 // end of the last record written in this round
	alloc int64 // size of the file, zero-filled beyond size
}

// writeReq is one Put, Delete or Transaction waiting for the writer, or,
// with checkpoint set, a request for a checkpoint, or, with swap set
// (which implies checkpoint), a restore's request to make the bucket swap
// names the data bucket.
type writeReq struct {
	ops        []storage.Op // validated, values already copied
	checkpoint bool
	swap       string
	done       chan error // buffered, so the writer never blocks on it
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
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: initialMmapSize,
		PageSize:        max(pageSize, os.Getpagesize()),
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	var dropped bool
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return err
		}
		cur := dataBucketName(meta)
		if _, err := tx.CreateBucketIfNotExists([]byte(cur)); err != nil {
			return err
		}
		// The spare bucket holds the remains of a restore that did not
		// finish: the data never moved to it.
		if tx.Bucket([]byte(spareBucket(cur))) != nil {
			dropped = true
			return tx.DeleteBucket([]byte(spareBucket(cur)))
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: create bucket: %w", err)
	}
	if dropped {
		logger.Info("bolt: dropped the data of a restore that did not finish; the content is the one before it")
	}
	b := &Backend{
		db:              db,
		logger:          logger,
		maxBatch:        maxBatch,
		reqs:            make(chan *writeReq, queueLen),
		writerDone:      make(chan struct{}),
		cache:           newReadCache(cacheBytes(opts.CacheBytes)),
		pending:         newPendingSet(),
		checkpointBytes: opts.CheckpointBytes,
		noSync:          opts.NoSync,
		syncer:          blockingSyncer{},
	}
	if !opts.NoSync {
		b.syncer = newLogSyncer()
	}
	if b.checkpointBytes <= 0 {
		b.checkpointBytes = defaultCheckpointBytes
	}
	err = b.recover(path)
	if err == nil {
		err = b.buildFilter()
	}
	if err != nil {
		_ = db.Close()
		b.closeLog()
		b.syncer.close()
		return nil, err
	}
	go b.writer()
	return b, nil
}

// recover opens the log's segments, applies what they hold beyond the
// last checkpoint to bbolt and starts the log over.
func (b *Backend) recover(dbPath string) error {
	var created bool
	for i := range b.segs {
		path := segmentPath(dbPath, i)
		_, statErr := os.Stat(path)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("bolt: open log: %w", err)
		}
		b.segs[i].f = f
		created = created || errors.Is(statErr, os.ErrNotExist)
	}
	if created && !b.noSync {
		if err := syncDir(filepath.Dir(dbPath)); err != nil {
			return fmt.Errorf("bolt: sync directory: %w", err)
		}
	}
	var applied uint64
	if err := b.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket([]byte(metaBucket)).Get([]byte(appliedSeqKey)); len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("bolt: read log position: %w", err)
	}
	var data [2][]byte
	for i, seg := range b.segs {
		raw, err := io.ReadAll(seg.f)
		if err != nil {
			return fmt.Errorf("bolt: read log: %w", err)
		}
		data[i] = raw
		b.segs[i].alloc = int64(len(raw))
	}
	ops, last, torn := replayLog(data, applied)
	if torn {
		// Either the tail of a write that was never acknowledged or the
		// remains of an older round that new records partly overwrote:
		// nothing acknowledged is lost either way.
		b.logger.Info("bolt: the write-ahead log ends in an incomplete record; ignored it")
	}
	b.seq = last
	for _, op := range ops {
		b.pending.put(op)
	}
	if err := b.checkpointAll(); err != nil {
		return fmt.Errorf("bolt: replay log: %w", err)
	}
	if len(ops) > 0 {
		b.logger.Info("bolt: replayed the write-ahead log", "ops", len(ops))
	}
	return nil
}

// closeLog closes the log's segment files.
func (b *Backend) closeLog() error {
	var first error
	for _, seg := range b.segs {
		if seg.f != nil {
			if err := seg.f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
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
	// The cache is never stale: the writer updates it before it
	// acknowledges a write, so what it knows is the answer, and the
	// pending writes need not be looked at (nor their lock taken). Its
	// epoch is taken before the pending writes are: bbolt lags the log,
	// so what it returns for a key may predate a commit that lands after
	// the pending check, and fill refuses it then.
	b.syncer.poll()
	cached, found, known, epoch := b.cache.get(key)
	switch {
	case known && found:
		return append(make([]byte, 0, len(cached)), cached...), nil
	case known:
		return nil, storage.ErrNotFound
	}
	if !b.filter.Load().mayContain(key) {
		return nil, storage.ErrNotFound
	}
	b.pmu.RLock()
	op, ok := b.pending.get(key)
	if !ok {
		op, ok = b.frozen.get(key)
	}
	b.pmu.RUnlock()
	switch {
	case ok && op.Delete:
		return nil, storage.ErrNotFound
	case ok:
		return append(make([]byte, 0, len(op.Value)), op.Value...), nil
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
	switch {
	case errors.Is(err, storage.ErrNotFound):
		b.cache.fillMissing(key, epoch)
		return nil, err
	case err != nil:
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
// with a trailing '/'. It merges the logged writes not yet checkpointed
// under prefix (found in their key order) with bbolt's keys, and skips over each child directory's subtree in bbolt with
// a cursor seek, so its cost grows with the number of children, not with
// the number of descendants.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// out collects the children once each, from the pending puts and
	// from bbolt's keys; deleted holds the pending deletes under prefix,
	// which hide bbolt's keys.
	seen := map[string]bool{}
	var out []string
	add := func(child string) {
		if !seen[child] {
			seen[child] = true
			out = append(out, child)
		}
	}
	var deleted map[string]bool
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, storage.ErrClosed
	}
	// The pending writes and the bbolt snapshot must be of one moment,
	// or a key written after the snapshot of pending would show up from
	// bbolt beside the name it replaced. A checkpoint commits frozen to
	// bbolt before it drops frozen, and either bbolt state overlaid with
	// frozen is the same, so holding pmu until the read transaction has
	// begun is enough.
	b.pmu.RLock()
	overlay := func(op storage.Op) bool {
		if op.Delete {
			if deleted == nil {
				deleted = map[string]bool{}
			}
			deleted[op.Key] = true
		} else if child, ok := storage.ChildOf(prefix, op.Key); ok {
			add(child)
		}
		return true
	}
	b.pending.ascend(prefix, overlay)
	b.frozen.ascend(prefix, func(op storage.Op) bool {
		if _, ok := b.pending.get(op.Key); !ok {
			overlay(op)
		}
		return true
	})
	tx, err := b.db.Begin(false)
	b.pmu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("bolt: list: %w", err)
	}
	defer tx.Rollback()
	bkt := dataBucket(tx)
	if bkt == nil {
		return nil, errors.New("bolt: list: data bucket missing")
	}
	c := bkt.Cursor()
	p := []byte(prefix)
	k, _ := c.Seek(p)
	for k != nil && bytes.HasPrefix(k, p) {
		child, ok := storage.ChildOf(prefix, string(k))
		if !ok { // k equals prefix: not a child of itself
			k, _ = c.Next()
			continue
		}
		if !strings.HasSuffix(child, "/") {
			if !deleted[string(k)] {
				add(child)
			}
			k, _ = c.Next()
			continue
		}
		// A directory is listed if one key under it survives the
		// pending deletes (usually its first).
		dir := []byte(prefix + child)
		for ; k != nil && bytes.HasPrefix(k, dir); k, _ = c.Next() {
			if !deleted[string(k)] {
				add(child)
				break
			}
		}
		// Every key of the subtree starts with dir; '0' is the byte
		// after '/', so this seeks just past it.
		k, _ = c.Seek([]byte(prefix + child[:len(child)-1] + "0"))
	}
	slices.Sort(out)
	return out, nil
}

// Backup writes a consistent snapshot of the whole data file to w and
// returns the number of bytes written. It first checkpoints the log, so
// the snapshot holds every write acknowledged before Backup was called;
// it is the state after one log record (transactions are whole). Writes
// continue while it runs.
func (b *Backend) Backup(w io.Writer) (int64, error) {
	if err := b.checkpointSync(); err != nil {
		return 0, fmt.Errorf("bolt: backup: %w", err)
	}
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

// checkpointSync has the writer put every write acknowledged so far into
// bbolt, and waits for it.
func (b *Backend) checkpointSync() error {
	req := &writeReq{checkpoint: true, done: make(chan error, 1)}
	if err := b.enqueue(context.Background(), req); err != nil {
		return err
	}
	return <-req.done
}

// Stats returns the writer's counters.
func (b *Backend) Stats() Stats {
	return Stats{Commits: b.commits.Load(), Writes: b.writes.Load(), Checkpoints: b.checkpoints.Load()}
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

	// The writer drains what was queued before reqs was closed, and
	// checkpoints.
	<-b.writerDone
	b.syncer.close()
	werr := b.closeLog()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	if werr != nil {
		return fmt.Errorf("bolt: close log: %w", werr)
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
		bkt := dataBucket(tx)
		if bkt == nil {
			return errors.New("bolt: data bucket missing")
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
	b.syncer.poll()
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
// is closed and drained, after a last checkpoint.
func (b *Backend) writer() {
	defer close(b.writerDone)
	batch := make([]*writeReq, 0, 64)
	var checkpointReqs []*writeReq
	lastBatch := 0 // requests in the last batch
	for {
		var first *writeReq
		var ok bool
		if b.ckpt != nil {
			select {
			case first, ok = <-b.reqs:
			case err := <-b.ckpt:
				b.endCheckpoint(err)
				continue
			}
		} else {
			first, ok = <-b.reqs
		}
		if !ok {
			break
		}
		batch, checkpointReqs = batch[:0], checkpointReqs[:0]
		n, size := 0, 0
		take := func(r *writeReq) {
			if r.checkpoint || r.swap != "" {
				checkpointReqs = append(checkpointReqs, r)
				return
			}
			batch = append(batch, r)
			n += len(r.ops)
			size += opsSize(r.ops)
		}
		take(first)
		if lastBatch > 1 {
			// Writes are concurrent: let the goroutines that are
			// ready to run queue theirs before the batch closes, so
			// more of them share the fsync. An idle store (batches
			// of one) does not wait.
			runtime.Gosched()
		}
	drain:
		for n < b.maxBatch && size < maxBatchBytes {
			select {
			case r, ok := <-b.reqs:
				if !ok {
					break drain
				}
				take(r)
			default:
				break drain
			}
		}
		lastBatch = len(batch)
		if len(batch) > 0 {
			b.commit(batch)
			if b.filter.Load().full() {
				if err := b.buildFilter(); err != nil {
					b.logger.Error("bolt: could not rebuild the key filter; reads of absent keys cost more until it is", "error", err)
				}
			}
		}
		switch {
		case len(checkpointReqs) > 0:
			if b.onCheckpoint != nil {
				b.onCheckpoint()
			}
			err := b.checkpointAll()
			for _, r := range checkpointReqs {
				if r.swap != "" && err == nil {
					r.done <- b.swapData(r.swap)
					continue
				}
				r.done <- err
			}
		case b.segs[b.cur].size >= int64(b.checkpointBytes) || b.pending.mem >= pendingMemFactor*b.checkpointBytes:
			if b.onCheckpoint != nil {
				b.onCheckpoint()
			}
			_ = b.startCheckpoint() // a failure is logged and retried
		}
		clear(batch) // drop references to committed values
		clear(checkpointReqs)
	}
	if err := b.checkpointAll(); err != nil {
		b.logger.Error("bolt: checkpoint on close failed; the log is replayed at the next open", "error", err)
	}
}

// commit logs batch as one record, fsyncs the log, makes the writes
// visible and answers every request.
func (b *Backend) commit(batch []*writeReq) {
	valid := batch[:0:0]
	for _, r := range batch {
		if err := validateOps(r.ops); err != nil {
			r.done <- err
			continue
		}
		valid = append(valid, r)
	}
	if len(valid) == 0 {
		return
	}
	if b.broken != nil {
		for _, r := range valid {
			r.done <- b.broken
		}
		return
	}
	b.walBuf = appendRecord(b.walBuf[:0], b.seq+1, valid)
	err := b.appendLog(b.walBuf)
	if cap(b.walBuf) > 1<<20 {
		b.walBuf = nil // do not keep a buffer grown by one large batch
	}
	if err != nil {
		// After a failed write or sync the log's content on disk is
		// unknown: appending more could put acknowledged records
		// behind a torn one. Refuse writes until a restart recovers.
		b.broken = fmt.Errorf("bolt: write-ahead log failed, restart to recover: %w", err)
		b.logger.Error("bolt: write-ahead log failed; refusing writes until restart", "error", err)
		for _, r := range valid {
			r.done <- b.broken
		}
		return
	}
	b.seq++
	// Into the filter before any reader can find the writes.
	f := b.filter.Load()
	for _, r := range valid {
		for _, op := range r.ops {
			if !op.Delete {
				f.add(op.Key)
			}
		}
	}
	b.pmu.Lock()
	for _, r := range valid {
		for _, op := range r.ops {
			b.pending.put(op)
		}
	}
	b.pmu.Unlock()
	b.cache.committed(valid)
	b.commits.Add(1)
	b.writes.Add(uint64(len(valid)))
	for _, r := range valid {
		r.done <- nil
	}
}

// appendLog writes rec at the end of the current log segment and makes it
// durable. Where the file must grow, it grows by zero-filled chunks, so
// that most appends overwrite allocated blocks and a data sync suffices.
func (b *Backend) appendLog(rec []byte) error {
	seg := &b.segs[b.cur]
	end := seg.size + int64(len(rec))
	if end > seg.alloc {
		alloc := (end + walChunk - 1) / walChunk * walChunk
		if b.zeros == nil {
			b.zeros = make([]byte, walChunk) // kept: segments grow by chunks
		}
		for off := seg.alloc; off < alloc; off += walChunk {
			if _, err := seg.f.WriteAt(b.zeros[:min(walChunk, alloc-off)], off); err != nil {
				return err
			}
		}
		seg.alloc = alloc
	}
	if _, err := seg.f.WriteAt(rec, seg.size); err != nil {
		return err
	}
	if !b.noSync {
		if err := b.syncer.datasync(seg.f); err != nil {
			return err
		}
	}
	seg.size = end
	return nil
}

// buildFilter replaces the key filter with one made from the keys in
// bbolt and in the log, for twice as many keys. It runs in Open and then
// in the writer, so that no write is made visible meanwhile; a checkpoint
// may be moving the frozen writes into bbolt, and they are taken from both.
func (b *Backend) buildFilter() error {
	seed := maphash.MakeSeed()
	var hashes []uint64
	err := b.db.View(func(tx *bbolt.Tx) error {
		bkt := dataBucket(tx)
		if bkt == nil {
			return errors.New("data bucket missing")
		}
		c := bkt.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			hashes = append(hashes, maphash.Bytes(seed, k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: build key filter: %w", err)
	}
	for _, set := range []*pendingSet{b.frozen, b.pending} {
		if set != nil {
			for k := range set.ops {
				hashes = append(hashes, maphash.String(seed, k))
			}
		}
	}
	f := newKeyFilter(2*len(hashes), seed)
	for _, h := range hashes {
		f.addHash(h)
	}
	b.filter.Store(f)
	return nil
}

// startCheckpoint begins applying the pending writes to bbolt in the
// background: they become frozen, and new records go to the other log
// segment from its start. If a checkpoint is running, it waits for it
// first, so that the other segment is free to reuse: under a write load
// that outruns checkpoints, this is where writers slow down. It returns
// an error only if the writes of an earlier, failed checkpoint could still
// not be applied (and then starts nothing).
func (b *Backend) startCheckpoint() error {
	if b.ckpt != nil {
		b.endCheckpoint(<-b.ckpt)
	}
	if b.frozen != nil {
		// The last checkpoint failed: its writes are still only in the
		// other segment. Retry it here; until it succeeds, the current
		// segment keeps growing.
		if err := b.endCheckpoint(b.apply(b.frozen, b.frozenSeq)); err != nil {
			return err
		}
	}
	if b.pending.len() == 0 {
		return nil // nothing was logged since the last switch
	}
	b.pmu.Lock()
	b.frozen, b.pending = b.pending, newPendingSet()
	b.pmu.Unlock()
	b.frozenSeq = b.seq
	b.cur = 1 - b.cur
	b.segs[b.cur].size = 0
	frozen, seq, done := b.frozen, b.seq, make(chan error, 1)
	b.ckpt = done
	go func() { done <- b.apply(frozen, seq) }()
	return nil
}

// endCheckpoint takes the result of the checkpoint of frozen. On success
// the frozen writes are in bbolt and readers stop looking at them; on
// failure they stay frozen and the next checkpoint retries them.
func (b *Backend) endCheckpoint(err error) error {
	b.ckpt = nil
	if err != nil {
		b.logger.Error("bolt: checkpoint failed; its writes stay in the log and are retried", "error", err)
		return err
	}
	// The cache needs no change: a checkpoint moves writes into bbolt
	// without changing any key's value, and bbolt has them before
	// readers stop finding them in frozen.
	b.pmu.Lock()
	b.frozen = nil
	b.pmu.Unlock()
	b.checkpoints.Add(1)
	return nil
}

// checkpointAll puts every logged write into bbolt before it returns: for
// Backup, Close and the end of recovery.
func (b *Backend) checkpointAll() error {
	if err := b.startCheckpoint(); err != nil {
		return err
	}
	if b.ckpt != nil {
		return b.endCheckpoint(<-b.ckpt)
	}
	return nil
}

// apply writes ops to bbolt in one commit (in key order, which bbolt
// writes most compactly) together with seq, the number of the last log
// record they include. ops is not modified. The log's records need not be
// erased: replay skips those bbolt already holds and stops at the first
// that does not follow its predecessor.
func (b *Backend) apply(ops *pendingSet, seq uint64) error {
	var seqBytes [8]byte
	binary.BigEndian.PutUint64(seqBytes[:], seq)
	err := b.db.Update(func(tx *bbolt.Tx) error {
		bkt := dataBucket(tx)
		if bkt == nil {
			return errors.New("data bucket missing")
		}
		var err error
		ops.ascend("", func(op storage.Op) bool {
			if op.Delete {
				err = bkt.Delete([]byte(op.Key))
			} else {
				err = bkt.Put([]byte(op.Key), op.Value)
			}
			return err == nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket([]byte(metaBucket)).Put([]byte(appliedSeqKey), seqBytes[:])
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// opsSize is about the bytes ops take in a log record.
func opsSize(ops []storage.Op) int {
	n := 0
	for _, op := range ops {
		n += len(op.Key) + len(op.Value) + 2*binary.MaxVarintLen64 + 1
	}
	return n
}

// validateOps rejects what bbolt would refuse, or what would not fit in a
// log record, so that it never reaches the log. The public methods have
// checked keys already; this guards the log.
func validateOps(ops []storage.Op) error {
	if size := opsSize(ops); size > maxRequestBytes {
		return fmt.Errorf("bolt: a write of %d bytes is too large (at most %d)", size, maxRequestBytes)
	}
	for _, op := range ops {
		if err := validateKey(op.Key); err != nil {
			return err
		}
		if !op.Delete && int64(len(op.Value)) > bbolt.MaxValueSize {
			return fmt.Errorf("bolt: value of %d bytes is too large", len(op.Value))
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
