package inmem

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/storage"
)

func TestNodesShareOneFencedLock(t *testing.T) {
	ctx := context.Background()
	b := New()
	a, c := b.Node(), b.Node()
	if err := a.Put(ctx, "k", []byte("before any campaign")); err != nil {
		t.Fatalf("unfenced write: %v", err)
	}
	la, err := a.Campaign(ctx, "a", "https://a")
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan storage.Leadership, 1)
	go func() {
		l, err := c.Campaign(ctx, "c", "https://c")
		if err != nil {
			t.Error(err)
		}
		won <- l
	}()
	select {
	case <-won:
		t.Fatal("a second node won a held lock")
	case <-time.After(20 * time.Millisecond):
	}
	if h, ok, _ := c.Leader(ctx); !ok || h.Addr != "https://a" {
		t.Fatalf("Leader = %+v, %v", h, ok)
	}
	b.BreakLock()
	<-la.Lost()
	lc := <-won
	for _, err := range []error{
		a.Put(ctx, "k", []byte("x")),
		a.Delete(ctx, "k"),
		a.Transaction(ctx, []storage.Op{{Key: "k", Value: []byte("x")}}),
	} {
		if !errors.Is(err, storage.ErrFenced) {
			t.Fatalf("write of the former leader: %v", err)
		}
	}
	if v, _ := c.Get(ctx, "k"); string(v) != "before any campaign" {
		t.Fatalf("k = %q", v)
	}
	if err := c.Put(ctx, "k", []byte("c")); err != nil {
		t.Fatal(err)
	}
	// A stale release changes nothing; the holder's own frees the lock.
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Leader(ctx); !ok {
		t.Fatal("a stale release freed the lock")
	}
	if err := lc.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Leader(ctx); ok {
		t.Fatal("the lock is held after its release")
	}
	if err := c.Put(ctx, "k", []byte("c2")); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("write after release: %v", err)
	}
}

func TestKillLeaderLetsAnotherNodeWin(t *testing.T) {
	ctx := context.Background()
	b := New()
	a, c := b.Node(), b.Node()
	la, err := a.Campaign(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	b.KillLeader()
	<-la.Lost()
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := a.Campaign(short, "a", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the killed leader campaigned again: %v", err)
	}
	lc, err := c.Campaign(ctx, "c", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Campaign(ctx, "a", ""); err != nil {
		t.Fatalf("after another node held the lock: %v", err)
	}
}
