package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// withDeadline is context.WithDeadline made with a deadlineCtx, as
// serving a request makes one.
func withDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	c := new(deadlineCtx)
	return c.start(parent, d), func() { c.end(context.Canceled) }
}

// waitDone fails the test unless done closes within a second.
func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatalf("%s: not done after 1s", what)
	}
}

func TestDeadlineCtxUnarmedLapses(t *testing.T) {
	ctx, cancel := withDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
	defer cancel()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v", err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline = %v, want DeadlineExceeded", err)
	}
	// Armed late, Done is closed at once and Err keeps its answer, also
	// after cancel.
	waitDone(t, ctx.Done(), "Done after the deadline")
	cancel()
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after cancel = %v, want DeadlineExceeded still", err)
	}
	if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Cause = %v", err)
	}
}

func TestDeadlineCtxArmedFires(t *testing.T) {
	ctx, cancel := withDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
	defer cancel()
	done := ctx.Done()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v", err)
	}
	waitDone(t, done, "Done at the deadline")
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", err)
	}
}

func TestDeadlineCtxCancel(t *testing.T) {
	for _, armed := range []bool{false, true} {
		ctx, cancel := withDeadline(context.Background(), time.Now().Add(time.Hour))
		if armed {
			ctx.Done()
		}
		cancel()
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("armed=%v: Err after cancel = %v, want Canceled", armed, err)
		}
		waitDone(t, ctx.Done(), "Done after cancel")
		cancel() // idempotent
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("armed=%v: Err after a second cancel = %v", armed, err)
		}
	}
}

func TestDeadlineCtxParent(t *testing.T) {
	for _, armed := range []bool{false, true} {
		parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
		ctx, cancel := withDeadline(parent, time.Now().Add(time.Hour))
		if ctx.Value(ctxKey{}) != "v" {
			t.Fatal("Value does not reach the parent")
		}
		if armed {
			ctx.Done()
		}
		cancelParent()
		waitDone(t, ctx.Done(), "Done after the parent's end")
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("armed=%v: Err = %v, want the parent's Canceled", armed, err)
		}
		cancel()
	}
}

type ctxKey struct{}

func TestDeadlineCtxDeadline(t *testing.T) {
	d := time.Now().Add(time.Hour)
	ctx, cancel := withDeadline(context.Background(), d)
	defer cancel()
	if got, ok := ctx.Deadline(); !ok || !got.Equal(d) {
		t.Fatalf("Deadline = %v %v, want %v", got, ok, d)
	}
	earlier := time.Now().Add(time.Minute)
	parent, cancelParent := context.WithDeadline(context.Background(), earlier)
	defer cancelParent()
	ctx2, cancel2 := withDeadline(parent, d)
	defer cancel2()
	if got, _ := ctx2.Deadline(); !got.Equal(earlier) {
		t.Fatalf("Deadline = %v, want the parent's earlier %v", got, earlier)
	}
}

// TestDeadlineCtxChildren checks that contexts derived from it, and
// context.AfterFunc, end with it, and that a stopped AfterFunc does not
// run.
func TestDeadlineCtxChildren(t *testing.T) {
	ctx, cancel := withDeadline(context.Background(), time.Now().Add(30*time.Millisecond))
	defer cancel()
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	ran := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ran) })
	never := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { never <- struct{}{} })
	if !stop() {
		t.Fatal("stop of a pending AfterFunc = false")
	}
	waitDone(t, child.Done(), "derived context")
	if err := child.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("derived Err = %v", err)
	}
	waitDone(t, ran, "AfterFunc")
	select {
	case <-never:
		t.Fatal("a stopped AfterFunc ran")
	case <-time.After(20 * time.Millisecond):
	}
	// Registered after the end, it runs at once.
	late := make(chan struct{})
	if context.AfterFunc(ctx, func() { close(late) })() {
		t.Fatal("stop after the end = true")
	}
	waitDone(t, late, "AfterFunc registered after the end")
}

// BenchmarkRequestContext compares the request context's cost with
// context.WithTimeout's, for a request that never waits.
func BenchmarkRequestContext(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(parent, time.Minute)
			_ = ctx.Err()
			cancel()
		}
	})
	b.Run("withDeadline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := withDeadline(parent, time.Now().Add(time.Minute))
			_ = ctx.Err()
			cancel()
		}
	})
}
