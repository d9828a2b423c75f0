package token

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
	"github.com/vigil-secrets/vigil/internal/secret"
)

func TestRootTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	s := logicaltest.New()
	now := func() time.Time { return time.Unix(1700000000, 0) }
	st, err := Open(ctx, s, now)
	if err != nil {
		t.Fatal(err)
	}
	tok, e, err := st.CreateRoot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Reveal(), ServicePrefix) || len(tok.Reveal()) != len(ServicePrefix)+24 {
		t.Fatalf("unexpected token shape (len %d)", len(tok.Reveal()))
	}
	if !e.IsRoot() {
		t.Fatal("root token lacks root policy")
	}
	// Only hashes are stored: no key or value contains the token.
	for _, k := range s.Keys() {
		v, _ := s.Get(ctx, k)
		if strings.Contains(k, tok.Reveal()) || strings.Contains(string(v), tok.Reveal()) {
			t.Fatalf("token value stored in clear under %q", k)
		}
	}
	// A fresh store over the same storage (restart) finds the token.
	st2, err := Open(ctx, s, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st2.Lookup(ctx, tok)
	if err != nil || got.Accessor != e.Accessor {
		t.Fatalf("lookup after reopen: %v", err)
	}
	if _, err := st2.Lookup(ctx, secret.NewString(tok.Reveal()+"x")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := st2.Lookup(ctx, secret.String{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty token: %v", err)
	}
	if err := st2.Revoke(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := st2.Lookup(ctx, tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoked token still valid: %v", err)
	}
	if keys := s.Keys(); !slices.Equal(keys, []string{"key", "salt"}) { // only the store's keys remain
		t.Fatalf("revoke left keys: %v", keys)
	}
}

func TestCustomRootID(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, logicaltest.New(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := st.CreateRoot(ctx, "root")
	if err != nil || tok.Reveal() != "root" {
		t.Fatalf("custom id: %v", err)
	}
	if _, err := st.Lookup(ctx, secret.NewString("root")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{" root", "a b", "a.b"} {
		if _, _, err := st.CreateRoot(ctx, bad); !errors.Is(err, ErrBadID) {
			t.Errorf("CreateRoot(%q) = %v, want ErrBadID", bad, err)
		}
	}
}
