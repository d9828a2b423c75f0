package approle

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// TestLoginCacheNeverStale logs in with the records cached, then changes
// each of them and checks that the next login sees the change: new
// policies, a new role_id, a destroyed or expired secret ID, a deleted
// role.
func TestLoginCacheNeverStale(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{"token_policies":"a"}`)
	sid, _ := h.newSecretID("app", `{"ttl":"1h"}`)
	other, _ := h.newSecretID("app", ``)
	for range 3 {
		if a := h.mustLogin(id, sid); !slices.Equal(a.Policies, []string{"a"}) {
			t.Fatalf("policies = %q", a.Policies)
		}
	}

	// The role's policies change.
	h.ok(logical.UpdateOperation, "role/app", `{"token_policies":"b"}`)
	if a := h.mustLogin(id, sid); !slices.Equal(a.Policies, []string{"b"}) {
		t.Fatalf("policies after the update = %q, want [b]", a.Policies)
	}

	// The role_id changes: the old one no longer logs in.
	h.ok(logical.UpdateOperation, "role/app/role-id", `{"role_id":"new-role-id"}`)
	resp, err := h.login(id, sid, from("127.0.0.1"))
	wantInvalid(t, resp, err)
	id = "new-role-id"
	h.mustLogin(id, sid)

	// The secret ID is destroyed.
	h.ok(logical.UpdateOperation, "role/app/secret-id/destroy", `{"secret_id":"`+sid+`"}`)
	resp, err = h.login(id, sid, from("127.0.0.1"))
	wantInvalid(t, resp, err)

	// A cached secret ID expires.
	sid, _ = h.newSecretID("app", `{"ttl":"1m"}`)
	h.mustLogin(id, sid)
	h.clk.Advance(time.Minute)
	resp, err = h.login(id, sid, from("127.0.0.1"))
	wantInvalid(t, resp, err)

	// The role is deleted, then created again with other settings.
	h.mustLogin(id, other)
	h.ok(logical.DeleteOperation, "role/app", "")
	resp, err = h.login(id, other, from("127.0.0.1"))
	wantInvalid(t, resp, err)
	id = h.createRole("app", `{"token_policies":"c"}`)
	resp, err = h.login(id, other, from("127.0.0.1"))
	wantInvalid(t, resp, err) // the role's secret IDs went with it
	sid, _ = h.newSecretID("app", ``)
	if a := h.mustLogin(id, sid); !slices.Equal(a.Policies, []string{"c"}) {
		t.Fatalf("policies of the new role = %q, want [c]", a.Policies)
	}
}

// TestLoginNumUsesWarmCache uses a secret ID with a use limit whose record
// the cache already holds, then races logins on it: no more logins succeed
// than it has uses left, however stale the cached record's count is.
func TestLoginNumUsesWarmCache(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", ``)
	sid, _ := h.newSecretID("app", `{"num_uses":5}`)
	h.mustLogin(id, sid)
	h.mustLogin(id, sid)
	const racers = 32
	var (
		wg sync.WaitGroup
		ok atomic.Int32
	)
	start := make(chan struct{})
	for range racers {
		wg.Go(func() {
			<-start
			resp, err := h.b.HandleRequest(t.Context(), &logical.Request{
				Operation: logical.UpdateOperation, Path: "login", Storage: h.s, Connection: from("127.0.0.1"),
				Data: map[string]any{"role_id": id, "secret_id": sid},
			})
			if err == nil && resp != nil && resp.Auth != nil {
				ok.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := ok.Load(); got != 3 {
		t.Fatalf("%d logins succeeded with 3 uses left", got)
	}
	resp, err := h.login(id, sid, from("127.0.0.1"))
	wantInvalid(t, resp, err)
}
