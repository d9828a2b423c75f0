package bolt

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// dataBucketName is the name of the bucket that holds the keys, as the
// meta bucket records it.
func dataBucketName(meta *bbolt.Bucket) string {
	if v := meta.Get([]byte(dataBucketKey)); v != nil {
		return string(v)
	}
	return bucketName
}

// spareBucket is the bucket a restore fills while cur holds the data.
func spareBucket(cur string) string {
	if cur == altBucketName {
		return bucketName
	}
	return altBucketName
}

// dataBucket returns the bucket that holds the keys in tx, or nil if the
// file lacks it.
func dataBucket(tx *bbolt.Tx) *bbolt.Bucket {
	meta := tx.Bucket([]byte(metaBucket))
	if meta == nil {
		return nil
	}
	return tx.Bucket([]byte(dataBucketName(meta)))
}

// Snapshot calls fn with every key and a copy of its value, in key order,
// from one consistent state that holds every write acknowledged before the
// call: it checkpoints the log, then reads one bbolt read transaction.
// Writes go on meanwhile. A long snapshot holds the read transaction for
// its whole length, and bbolt cannot grow its memory map while one is
// open, so a snapshot to a slow reader can hold up checkpoints (and once
// a log segment fills, writes) on a store that is growing.
func (b *Backend) Snapshot(ctx context.Context, fn func(key string, value []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.checkpointSync(); err != nil {
		return fmt.Errorf("bolt: snapshot: %w", err)
	}
	tx, err := b.beginRead()
	if err != nil {
		return fmt.Errorf("bolt: snapshot: %w", err)
	}
	// Close waits for the transaction (bbolt's Close does), so b.mu need
	// not be held while fn runs.
	defer tx.Rollback()
	bkt := dataBucket(tx)
	if bkt == nil {
		return errors.New("bolt: snapshot: data bucket missing")
	}
	c := bkt.Cursor()
	n := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		// k and v point into the memory map, valid only in the
		// transaction and read-only: fn gets copies.
		if err := fn(string(k), append(make([]byte, 0, len(v)), v...)); err != nil {
			return err
		}
	}
	return nil
}

// beginRead begins a read transaction, or returns storage.ErrClosed.
func (b *Backend) beginRead() (*bbolt.Tx, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, storage.ErrClosed
	}
	return b.db.Begin(false)
}

// update runs fn in a write transaction, or returns storage.ErrClosed. It
// holds b.mu for reading only for the transaction, never while a caller's
// function (a restore's next) runs.
func (b *Backend) update(fn func(*bbolt.Tx) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return storage.ErrClosed
	}
	return b.db.Update(fn)
}

// Restore replaces the whole content with the entries next yields (a key
// given twice keeps its last value). The entries go into the spare bucket
// in commits of a few MiB while the store keeps serving the old content;
// then the writer checkpoints the log and makes the spare bucket the data
// bucket in one commit, and empties the read cache. Writes acknowledged
// before that commit are replaced with the rest of the old content.
//
// An error from next, an invalid key or value, a cancelled ctx or a crash
// before the swap leaves the old content, and the spare bucket is dropped
// (at the next Open after a crash). Restores run one at a time.
func (b *Backend) Restore(ctx context.Context, next func() (storage.Entry, error)) error {
	b.restoreMu.Lock()
	defer b.restoreMu.Unlock()
	spare, err := b.fillSpare(ctx, next)
	if err != nil {
		b.dropSpare(spare)
		return err
	}
	// The swap is not cancelled once queued: the result says whether it
	// happened.
	req := &writeReq{swap: spare, done: make(chan error, 1)}
	if err := b.enqueue(context.WithoutCancel(ctx), req); err != nil {
		return fmt.Errorf("bolt: restore: %w", err)
	}
	if err := <-req.done; err != nil {
		b.dropSpare(spare)
		return fmt.Errorf("bolt: restore: %w", err)
	}
	return nil
}

// fillSpare writes the entries next yields into a new spare bucket and
// returns its name (also on failure, once it exists: the caller drops
// it).
func (b *Backend) fillSpare(ctx context.Context, next func() (storage.Entry, error)) (string, error) {
	var spare string
	err := b.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte(metaBucket))
		if meta == nil {
			return errors.New("meta bucket missing")
		}
		spare = spareBucket(dataBucketName(meta))
		if tx.Bucket([]byte(spare)) != nil {
			if err := tx.DeleteBucket([]byte(spare)); err != nil {
				return err
			}
		}
		_, err := tx.CreateBucket([]byte(spare))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("bolt: restore: create bucket: %w", err)
	}
	var batch []storage.Entry
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := b.update(func(tx *bbolt.Tx) error {
			bkt := tx.Bucket([]byte(spare))
			if bkt == nil {
				return errors.New("restore bucket missing")
			}
			// Snapshots come in key order: fill pages well.
			bkt.FillPercent = 0.9
			for _, e := range batch {
				if err := bkt.Put([]byte(e.Key), e.Value); err != nil {
					return err
				}
			}
			return nil
		})
		clear(batch)
		batch, size = batch[:0], 0
		if err != nil {
			return fmt.Errorf("bolt: restore: %w", err)
		}
		return ctx.Err()
	}
	for {
		e, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return spare, fmt.Errorf("bolt: restore: %w", err)
		}
		if err := validateKey(e.Key); err != nil {
			return spare, fmt.Errorf("bolt: restore %q: %w", e.Key, err)
		}
		if int64(len(e.Value)) > bbolt.MaxValueSize {
			return spare, fmt.Errorf("bolt: restore %q: value of %d bytes is too large", e.Key, len(e.Value))
		}
		batch = append(batch, e)
		size += len(e.Key) + len(e.Value)
		if len(batch) >= restoreBatchOps || size >= restoreBatchBytes {
			if err := flush(); err != nil {
				return spare, err
			}
		}
	}
	if err := flush(); err != nil {
		return spare, err
	}
	return spare, ctx.Err()
}

// dropSpare deletes a restore's bucket after a failure. It is best
// effort: Open drops what is left.
func (b *Backend) dropSpare(spare string) {
	if spare == "" {
		return
	}
	err := b.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte(metaBucket))
		if meta == nil || dataBucketName(meta) == spare {
			return nil // never drop the data
		}
		return tx.DeleteBucket([]byte(spare))
	})
	if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) && !errors.Is(err, storage.ErrClosed) {
		b.logger.Warn("bolt: could not drop the data of a failed restore; the next open drops it", "error", err)
	}
}

// swapData makes spare the data bucket and deletes the old one, in one
// commit, then empties the read cache. It runs in the writer, after a
// checkpoint, so that no logged write is left to apply to the old bucket
// and the log holds nothing newer than the swap.
func (b *Backend) swapData(spare string) error {
	if b.broken != nil {
		return b.broken
	}
	err := b.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte(metaBucket))
		if meta == nil {
			return errors.New("meta bucket missing")
		}
		old := dataBucketName(meta)
		next := tx.Bucket([]byte(spare))
		if old == spare || next == nil {
			return errors.New("restore bucket missing")
		}
		// Readers find the new keys as soon as the commit lands: the
		// filter must hold them first.
		f := b.filter.Load()
		c := next.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			f.addHash(maphash.Bytes(f.seed, k))
		}
		if err := meta.Put([]byte(dataBucketKey), []byte(spare)); err != nil {
			return err
		}
		return tx.DeleteBucket([]byte(old))
	})
	if err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	// After the commit: a reader that read the old bucket and fills the
	// cache before this is cleared; one that fills after finds the epoch
	// moved on and is refused.
	b.cache.reset()
	// The filter still holds the old content's keys: drop them. A
	// failure only leaves it larger.
	if err := b.buildFilter(); err != nil {
		b.logger.Warn("bolt: could not rebuild the key filter after a restore", "error", err)
	}
	return nil
}
