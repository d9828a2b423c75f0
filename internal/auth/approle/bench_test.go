package approle

import (
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// BenchmarkLogin logs in from many goroutines with one secret ID without a
// use limit, the common AppRole set-up of Agent and CI jobs.
func BenchmarkLogin(b *testing.B) {
	h := newHarness(b)
	id := h.createRole("app", `{"token_policies":"dev","token_ttl":"1h"}`)
	sid, _ := h.newSecretID("app", `{"metadata":{"env":"prod"}}`)
	ctx := b.Context()
	conn := from("10.1.2.3")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := h.b.HandleRequest(ctx, &logical.Request{
				Operation: logical.UpdateOperation, Path: "login", Storage: h.s, Connection: conn,
				Data: map[string]any{"role_id": id, "secret_id": sid},
			})
			if err != nil || resp.Auth == nil {
				b.Errorf("login: %v", err)
				return
			}
		}
	})
}

// BenchmarkLoginNumUses logs in with secret IDs that have a use limit, so
// that every login rewrites the secret ID's record.
func BenchmarkLoginNumUses(b *testing.B) {
	h := newHarness(b)
	id := h.createRole("app", `{}`)
	sid, _ := h.newSecretID("app", `{"num_uses":1000000000}`)
	ctx := b.Context()
	conn := from("10.1.2.3")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := h.b.HandleRequest(ctx, &logical.Request{
				Operation: logical.UpdateOperation, Path: "login", Storage: h.s, Connection: conn,
				Data: map[string]any{"role_id": id, "secret_id": sid},
			})
			if err != nil || resp.Auth == nil {
				b.Errorf("login: %v", err)
				return
			}
		}
	})
}
