package core

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

func TestLoginLimiter(t *testing.T) {
	l := newLoginLimiter(2, 3)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.allow("10.0.0.1", now); !ok {
			t.Fatalf("attempt %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow("10.0.0.1", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("past the burst: ok %v, wait %v", ok, wait)
	}
	if ok, _ := l.allow("10.0.0.2", now); !ok {
		t.Fatal("another address was limited")
	}
	// A refused attempt costs nothing: after the wait one more passes.
	if ok, _ := l.allow("10.0.0.1", now.Add(wait)); !ok {
		t.Fatal("refused after waiting")
	}
	// Idle addresses are forgotten when the table is full.
	for i := range loginLimiterCap {
		l.allow(string(rune(i)), now)
	}
	l.allow("new", now.Add(2*loginLimiterIdle))
	if n := len(l.addrs); n != 1 {
		t.Fatalf("%d addresses kept after pruning, want 1", n)
	}
}

func TestLoginsAreRateLimited(t *testing.T) {
	f := initCore(t)
	f.c.logins = newLoginLimiter(1, 2)
	if _, err := f.do(t, logical.UpdateOperation, "sys/auth/approle", map[string]any{"type": "approle"}); err != nil {
		t.Fatal(err)
	}
	login := func(addr string) error {
		_, err := f.c.HandleRequest(context.Background(), &Request{
			ID: secret.UUID(), Operation: logical.UpdateOperation, Path: "auth/approle/login",
			Data: map[string]any{"role_id": "nope", "secret_id": "nope"}, Connection: &logical.Connection{RemoteAddr: addr},
		})
		return err
	}
	for range 2 {
		if err := login("192.0.2.7"); errors.Is(err, logical.ErrRateLimited) {
			t.Fatal("limited within the burst")
		}
	}
	err := login("192.0.2.7")
	var rl *logical.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("third attempt: %v, want a rate limit with a retry time", err)
	}
	if err := login("192.0.2.8"); errors.Is(err, logical.ErrRateLimited) {
		t.Fatal("another address was limited")
	}
	// Authenticated requests are not login attempts.
	for range 5 {
		if _, err := f.c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: logical.ReadOperation, Path: "sys/auth",
			Token: f.token, Connection: &logical.Connection{RemoteAddr: "192.0.2.7"}}); err != nil {
			t.Fatal(err)
		}
	}
}
