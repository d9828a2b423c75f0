package core

import (
	"context"
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

// tickEngine is a test engine with periodic work: each call records when
// it ran and writes the time to its storage; it asks to run again five
// minutes later (within the scheduler's longest wait, ten minutes). A write to wake calls its BackendConfig.Wake. With block
// set, a call waits for its context to end (sealing, disabling).
type tickEngine struct {
	clk   *clock.Fake
	calls chan time.Time
	mu    sync.Mutex
	block bool
	// events records "periodic end" and "cleanup", in order.
	events []string
}

type tickBackend struct {
	*framework.Backend
	e *tickEngine
}

func (e *tickEngine) factory(_ context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	wake := func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
		conf.Wake()
		return nil, nil
	}
	fb, err := framework.NewBackend("ticks", []*framework.Path{{
		Pattern:    "wake",
		Operations: map[logical.Operation]framework.OperationHandler{logical.UpdateOperation: {Handler: wake}},
	}})
	return &tickBackend{Backend: fb, e: e}, err
}

func (e *tickEngine) record(ev string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
}

// reset forgets the events and sets whether calls block.
func (e *tickEngine) reset(block bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events, e.block = nil, block
}

// wantEndedBeforeCleanup checks that the call in flight ended before the
// backend was cleaned up.
func (e *tickEngine) wantEndedBeforeCleanup(t *testing.T, what string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Equal(e.events, []string{"periodic end", "cleanup"}) {
		t.Fatalf("%s: events %v, want the call in flight to end before the cleanup", what, e.events)
	}
}

func (b *tickBackend) Periodic(ctx context.Context, s logical.Storage) (time.Time, error) {
	now := b.e.clk.Now()
	b.e.mu.Lock()
	block := b.e.block
	b.e.mu.Unlock()
	if !block {
		if err := s.Put(ctx, "last", []byte(now.Format(time.RFC3339))); err != nil {
			return time.Time{}, err
		}
	}
	b.e.calls <- now
	if block {
		<-ctx.Done()
		b.e.record("periodic end")
		return time.Time{}, ctx.Err()
	}
	return now.Add(tickEvery), nil
}

const tickEvery = 5 * time.Minute

func (b *tickBackend) Cleanup(context.Context) { b.e.record("cleanup") }

func (e *tickEngine) wantCall(t *testing.T, at time.Time) {
	t.Helper()
	select {
	case got := <-e.calls:
		if !got.Equal(at) {
			t.Fatalf("periodic call at %v, want %v", got, at)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no periodic call (want one at %v)", at)
	}
}

func (e *tickEngine) noCall(t *testing.T) {
	t.Helper()
	select {
	case got := <-e.calls:
		t.Fatalf("unexpected periodic call at %v", got)
	default:
	}
}

// TestMountPeriodicWork: a mount's periodic work runs when the mount is
// enabled, when it asks, when it wakes itself, and at unseal for what was
// missed while sealed; sealing and disabling cancel a call in flight and
// wait for it before the backend is cleaned up; a moved mount's work
// follows it.
func TestMountPeriodicWork(t *testing.T) {
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	eng := &tickEngine{clk: clk, calls: make(chan time.Time, 16)}
	c, err := New(Config{Storage: inmem.New(), StorageType: "inmem", Clock: clk,
		Factories: map[string]logical.Factory{"ticks": eng.factory}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.SealInternal(context.Background()) })
	res, err := c.Init(t.Context(), InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, token: res.RootToken, keys: []string{hex.EncodeToString(res.Keys[0])}}
	f.unsealWith(t, f.keys)
	ok := func(op logical.Operation, path string, data map[string]any) {
		t.Helper()
		if _, err := f.do(t, op, path, data); err != nil {
			t.Fatalf("%s %s: %v", op, path, err)
		}
	}

	// Whether the next call's timer is set before or after the clock
	// moves, the call comes when it is due, never before.
	ok(logical.UpdateOperation, "sys/mounts/ticks", map[string]any{"type": "ticks"})
	eng.wantCall(t, start)
	clk.Advance(tickEvery - time.Second)
	eng.noCall(t)
	clk.Advance(time.Second)
	eng.wantCall(t, start.Add(tickEvery))
	clk.Advance(time.Minute)
	ok(logical.UpdateOperation, "ticks/wake", nil)
	eng.wantCall(t, start.Add(tickEvery+time.Minute))

	// Sealed across the next due time: the work runs at unseal.
	if err := c.SealInternal(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Hour)
	eng.noCall(t)
	f.unsealWith(t, f.keys)
	eng.wantCall(t, clk.Now())

	// Sealing during a call cancels it, and waits for it.
	eng.reset(true)
	ok(logical.UpdateOperation, "ticks/wake", nil)
	eng.wantCall(t, clk.Now())
	if err := c.SealInternal(t.Context()); err != nil {
		t.Fatal(err)
	}
	eng.wantEndedBeforeCleanup(t, "seal")
	f.unsealWith(t, f.keys)
	eng.wantCall(t, clk.Now())

	// Moving the mount moves its work: the call in flight ends first.
	eng.reset(false)
	ok(logical.UpdateOperation, "sys/remount", map[string]any{"from": "ticks", "to": "ticks2"})
	eng.wantCall(t, clk.Now())
	eng.wantEndedBeforeCleanup(t, "move")
	raw, err := c.barrier.Get(t.Context(), mountView(t, c, "ticks2/")+"last")
	if err != nil || string(raw) != clk.Now().Format(time.RFC3339) {
		t.Fatalf("the moved mount's work did not write its storage: %q, %v", raw, err)
	}

	// Disabling stops it for good.
	ok(logical.DeleteOperation, "sys/mounts/ticks2", nil)
	clk.Advance(24 * time.Hour)
	eng.noCall(t)
	if _, err := f.do(t, logical.UpdateOperation, "ticks2/wake", nil); err == nil {
		t.Error("the disabled mount still answers")
	}
}

// mountView returns the storage prefix of the mount at path.
func mountView(t *testing.T, c *Core, path string) string {
	t.Helper()
	e, ok := c.Mount(path)
	if !ok {
		t.Fatalf("no mount at %s", path)
	}
	return e.ViewPrefix()
}
