package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// openHeld opens a store whose writer can be parked: holdWriter holds
// bbolt's write lock and asks for a checkpoint, which the writer waits for
// while the checkpoint blocks on that lock. Requests sent to b.reqs
// meanwhile wait in the queue, so the writer takes them as one batch once
// the returned release is called.
func openHeld(t *testing.T) (b *Backend, holdWriter func() (release func())) {
	t.Helper()
	b = mustOpen(t, filepath.Join(t.TempDir(), "vigil.db"), Options{})
	entered := make(chan struct{}, 1)
	// Set before the first request: the channel send that follows
	// orders it before the writer's read.
	b.onCheckpoint = func() { entered <- struct{}{} }
	return b, func() func() {
		t.Helper()
		if err := b.Put(t.Context(), "hold", []byte("h")); err != nil {
			t.Fatal(err)
		}
		tx, err := b.db.Begin(true)
		if err != nil {
			t.Fatal(err)
		}
		cp := &writeReq{checkpoint: true, done: make(chan error, 1)}
		b.reqs <- cp
		<-entered // the writer is about to block on the write lock
		return func() {
			t.Helper()
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err := <-cp.done; err != nil {
				t.Fatalf("checkpoint: %v", err)
			}
		}
	}
}

// TestCommitIsolatesFailure gives the writer a batch in which one request
// is invalid (an empty key, which the public methods reject before
// queuing) and checks that the other requests still commit in one log
// record and each request gets its own answer.
func TestCommitIsolatesFailure(t *testing.T) {
	b, holdWriter := openHeld(t)
	defer b.Close()
	ctx := t.Context()
	if err := b.Put(ctx, "x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	release := holdWriter()
	before := b.Stats()

	mk := func(ops ...storage.Op) *writeReq {
		return &writeReq{ops: ops, done: make(chan error, 1)}
	}
	good1 := mk(storage.Op{Key: "a", Value: []byte("a")})
	bad := mk(storage.Op{Key: "c", Value: []byte("c")}, storage.Op{Key: "", Value: []byte("bad")})
	good2 := mk(storage.Op{Key: "b", Value: []byte("b")}, storage.Op{Key: "x", Delete: true})
	for _, r := range []*writeReq{good1, bad, good2} {
		b.reqs <- r
	}
	release()

	if err := <-good1.done; err != nil {
		t.Errorf("good1: %v", err)
	}
	if err := <-bad.done; err == nil {
		t.Errorf("bad request: error = nil, want a commit error")
	}
	if err := <-good2.done; err != nil {
		t.Errorf("good2: %v", err)
	}
	for _, k := range []string{"a", "b"} {
		if _, err := b.Get(ctx, k); err != nil {
			t.Errorf("Get(%q): %v", k, err)
		}
	}
	// The failed request was not half applied ("c"), and good2's delete
	// of "x" landed.
	for _, k := range []string{"c", "x"} {
		if _, err := b.Get(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q): error = %v, want ErrNotFound", k, err)
		}
	}
	after := b.Stats()
	// The invalid request is refused before it reaches the log; the
	// others share one record.
	if got := after.Commits - before.Commits; got != 1 {
		t.Errorf("commits for the batch = %d, want 1", got)
	}
	if got := after.Writes - before.Writes; got != 2 {
		t.Errorf("writes for the batch = %d, want 2", got)
	}
}

// TestCancelledWhileQueued checks that a caller whose context ends while
// its write waits in the queue gets ctx.Err() at once, and that Close
// afterwards drains the queue instead of hanging.
func TestCancelledWhileQueued(t *testing.T) {
	b, holdWriter := openHeld(t)
	release := holdWriter()
	ctx, cancel := context.WithCancel(t.Context())
	second := make(chan error, 1)
	go func() { second <- b.Put(ctx, "second", []byte("2")) }()
	for len(b.reqs) == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued Put with cancelled context: error = %v, want context.Canceled", err)
	}
	release()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// The read cache never serves a value older than the last acknowledged
// write, however reads and writes interleave.
func TestReadCacheNeverStale(t *testing.T) {
	b := mustOpen(t, filepath.Join(t.TempDir(), "c.db"), Options{NoSync: true, CacheBytes: 1 << 20})
	defer b.Close()
	ctx := context.Background()
	const keys = 8
	var acked [keys]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := range keys {
		wg.Go(func() {
			key := fmt.Sprintf("k/%d", k)
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := b.Put(ctx, key, []byte(strconv.FormatInt(i, 10))); err != nil {
					t.Error(err)
					return
				}
				acked[k].Store(i)
			}
		})
	}
	for r := range 4 {
		wg.Go(func() {
			for n := 0; n < 3000; n++ {
				k := (n + r) % keys
				floor := acked[k].Load()
				v, err := b.Get(ctx, fmt.Sprintf("k/%d", k))
				if errors.Is(err, storage.ErrNotFound) && floor == 0 {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				got, _ := strconv.ParseInt(string(v), 10, 64)
				if got < floor {
					t.Errorf("k/%d: read %d after write %d was acknowledged", k, got, floor)
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	// Deletes are seen too.
	b.Delete(ctx, "k/0")
	if _, err := b.Get(ctx, "k/0"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted key still served: %v", err)
	}
	// A value handed out is the caller's: changing it changes nothing.
	v, _ := b.Get(ctx, "k/1")
	want := string(v)
	v[0] = 'X'
	if again, _ := b.Get(ctx, "k/1"); string(again) != want {
		t.Fatalf("cached value was modified through a returned slice")
	}
}

// A request too large for one log record is refused before it reaches the
// log; the values below share one buffer, so the test allocates little.
func TestValidateOpsRefusesOversizedWrites(t *testing.T) {
	big := make([]byte, maxRequestBytes/4)
	ops := make([]storage.Op, 5)
	for i := range ops {
		ops[i] = storage.Op{Key: "k" + strconv.Itoa(i), Value: big}
	}
	if err := validateOps(ops); err == nil {
		t.Fatal("a write larger than maxRequestBytes was accepted")
	}
	if err := validateOps(ops[:3]); err != nil {
		t.Fatalf("a write below the bound was refused: %v", err)
	}
	if maxBatchBytes+maxRequestBytes >= maxRecord {
		t.Fatal("a batch could exceed the largest record replay accepts")
	}
}
