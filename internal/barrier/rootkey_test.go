package barrier

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// RootKey hands out a copy of the key that opened the barrier, which
// reopens it after a seal; sealed, it has none to give.
func TestRootKey(t *testing.T) {
	ctx := context.Background()
	b, _, root := newUnsealed(t)
	got, err := b.RootKey()
	if err != nil || !bytes.Equal(got, root) {
		t.Fatalf("RootKey = %x, %v", got, err)
	}
	got[0] ^= 0xff // the caller's copy: the barrier's key is untouched
	again, _ := b.RootKey()
	if !bytes.Equal(again, root) {
		t.Fatal("changing the returned key changed the barrier's")
	}
	b.Seal()
	if _, err := b.RootKey(); !errors.Is(err, ErrSealed) {
		t.Fatalf("RootKey while sealed: %v", err)
	}
	if err := b.Unseal(ctx, again); err != nil {
		t.Fatalf("unseal with the copy: %v", err)
	}
}
