package approle

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestTidy(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{}`)
	keep, keepAcc := h.newSecretID("app", ``)
	longer, _ := h.newSecretID("app", `{"ttl":"2h"}`)
	var expiring []string
	for i := 0; i < 3; i++ {
		sid, _ := h.newSecretID("app", `{"ttl":"1h"}`)
		expiring = append(expiring, sid)
	}

	// A dangling accessor: its secret ID record vanished (an interrupted
	// removal).
	_, danglingAcc := h.newSecretID("app", ``)
	dangling := h.secretIDKeyOf(t, "app", danglingAcc)
	if err := h.s.Delete(t.Context(), dangling); err != nil {
		t.Fatal(err)
	}
	// Orphans: the secret IDs of a role whose record vanished.
	h.createRole("gone", `{}`)
	h.newSecretID("gone", ``)
	h.newSecretID("gone", ``)
	if err := h.s.Delete(t.Context(), roleKey("gone")); err != nil {
		t.Fatal(err)
	}

	h.clk.Advance(time.Hour)
	resp := h.wantStatus(logical.UpdateOperation, "tidy/secret-id", ``, 202, "")
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "removed 5 expired or orphaned secret IDs and 1 dangling accessors") {
		t.Fatalf("tidy warnings = %q", resp.Warnings)
	}
	// 3 expired and 2 orphaned secret IDs went with their accessors; the
	// accessor pass removed only the dangling one.
	if keys := h.keysUnder(secretIDDir("gone")); len(keys) != 0 {
		t.Fatalf("orphans left: %v", keys)
	}
	if got := len(h.keysUnder(secretIDDir("app"))); got != 2 {
		t.Fatalf("%d secret IDs of app left, want 2", got)
	}
	if got := len(h.keysUnder(accessorPrefix)); got != 2 {
		t.Fatalf("%d accessors left, want 2", got)
	}
	h.mustLogin(id, keep)
	h.mustLogin(id, longer)
	for _, sid := range expiring {
		resp, err := h.login(id, sid, from("127.0.0.1"))
		wantInvalid(t, resp, err)
	}
	h.ok(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", `{"secret_id_accessor":"`+keepAcc+`"}`)

	// A second tidy has nothing to do.
	resp = h.wantStatus(logical.UpdateOperation, "tidy/secret-id", ``, 202, "")
	if !strings.Contains(resp.Warnings[0], "removed 0 expired or orphaned secret IDs and 0 dangling accessors") {
		t.Fatalf("second tidy = %q", resp.Warnings)
	}
}

// secretIDKeyOf finds the storage key of a secret ID by its accessor.
func (h *harness) secretIDKeyOf(t *testing.T, role, accessor string) string {
	t.Helper()
	ah, err := h.b.mac(t.Context(), h.s, labelAccessor, accessor)
	if err != nil {
		t.Fatal(err)
	}
	ae, err := loadAccessor(t.Context(), h.s, ah)
	if err != nil || ae == nil {
		t.Fatalf("accessor record: %v, %v", ae, err)
	}
	return secretIDKey(role, ae.SecretIDHMAC)
}

func TestTidyAlreadyRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.b.tidying.Store(true)
	resp := h.wantStatus(logical.UpdateOperation, "tidy/secret-id", ``, 200, "")
	if len(resp.Warnings) != 1 || resp.Warnings[0] != "Tidy operation already in progress." {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
	h.b.tidying.Store(false)
	h.wantStatus(logical.UpdateOperation, "tidy/secret-id", ``, 202, "")
}

func TestTidyHonoursContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createRole("app", `{}`)
	h.newSecretID("app", `{"ttl":"1s"}`)
	h.clk.Advance(time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := h.b.HandleRequest(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: "tidy/secret-id", Storage: h.s})
	if err == nil {
		t.Fatal("tidy with a cancelled context succeeded")
	}
	if h.b.tidying.Load() {
		t.Fatal("a failed tidy left the guard set")
	}
}
