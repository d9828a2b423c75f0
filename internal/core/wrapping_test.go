package core

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

// jsonRenderer stands in for the HTTP layer's envelope.
type jsonRenderer struct{}

func (jsonRenderer) RenderWrapped(res *Result) ([]byte, error) {
	out := map[string]any{"data": res.Response.Data}
	if s := res.Response.Secret; s != nil {
		out["lease_id"] = s.LeaseID
	}
	if a := res.Response.Auth; a != nil {
		out["auth"] = map[string]any{"client_token": a.ClientToken, "accessor": a.Accessor}
	}
	return json.Marshal(out)
}

// wrapped sends a request that asks for its response wrapped.
func (f *fixture) wrapped(t *testing.T, tok secret.String, op logical.Operation, path string, data map[string]any, ttl time.Duration) (*Result, error) {
	t.Helper()
	return f.c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: op, Path: path, Data: data, Token: tok,
		WrapTTL: ttl, WrapRender: jsonRenderer{}})
}

// TestWrappingExpires: a wrapped leased response; its wrapping token
// expires with its TTL, and the response stored for it goes with it; the
// lease of the wrapped secret is the original request's.
func TestWrappingExpires(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
	eng := &credsEngine{done: make(chan string, 16)}
	f := leaseFixture(t, inmem.New(), clk, eng)
	f.unsealWith(t, f.keys)
	f.ok(t, logical.UpdateOperation, "sys/mounts/creds", map[string]any{"type": "creds"})

	res, err := f.wrapped(t, f.token, logical.ReadOperation, "creds/creds/ro", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w := res.Wrap
	if w == nil || w.TTL != time.Minute || w.CreationPath != "creds/creds/ro" || w.Token.IsEmpty() || !w.CreationTime.Equal(clk.Now()) {
		t.Fatalf("wrap = %+v", w)
	}
	te, err := f.c.tokens.Lookup(ctx, w.Token)
	if err != nil || !isWrappingToken(te) || te.NumUses != 1 || te.Parent != "" {
		t.Fatalf("wrapping token = %+v, %v", te, err)
	}
	stored := wrappingView + te.HashedID
	if _, err := f.c.barrier.Get(ctx, stored); err != nil {
		t.Fatalf("wrapped response not stored: %v", err)
	}
	look := f.ok(t, logical.UpdateOperation, "sys/wrapping/lookup", map[string]any{"token": w.Token.Reveal()}).Data
	if look["creation_path"] != "creds/creds/ro" || look["creation_ttl"] != int64(60) {
		t.Fatalf("lookup = %v", look)
	}

	clk.Advance(2 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := f.c.barrier.Get(ctx, stored)
		if errors.Is(err, logical.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired wrapping token's response is still stored (%v)", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err = f.do(t, logical.UpdateOperation, "sys/wrapping/unwrap", map[string]any{"token": w.Token.Reveal()})
	if !errors.Is(err, errBadWrappingToken) {
		t.Fatalf("unwrap after expiry: %v", err)
	}
	// The credentials' own lease is untouched.
	if len(eng.revoked) != 0 {
		t.Fatalf("revoked %v", eng.revoked)
	}
}

// TestWrappingPolicy: a policy's min_wrapping_ttl and max_wrapping_ttl
// make a path answer only wrapped, within the bounds.
func TestWrappingPolicy(t *testing.T) {
	f := initCore(t)
	f.ok(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}})
	f.ok(t, logical.UpdateOperation, "secret/data/k", map[string]any{"data": map[string]any{"v": "s3cret"}})
	f.ok(t, logical.UpdateOperation, "sys/policies/acl/wrapped", map[string]any{"policy": `
path "secret/data/k" {
  capabilities     = ["read"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = "1h"
}`})
	tok := secret.NewString(f.ok(t, logical.UpdateOperation, "auth/token/create", map[string]any{"policies": []any{"wrapped"}}).Auth.ClientToken)
	for _, ttl := range []time.Duration{0, 30 * time.Second, 2 * time.Hour} {
		if _, err := f.wrapped(t, tok, logical.ReadOperation, "secret/data/k", nil, ttl); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("wrap TTL %v: %v, want permission denied", ttl, err)
		}
	}
	res, err := f.wrapped(t, tok, logical.ReadOperation, "secret/data/k", nil, 30*time.Minute)
	if err != nil || res.Wrap == nil {
		t.Fatalf("wrapped read: %+v %v", res, err)
	}
	// Anyone may unwrap it (the default policy), once.
	resp, err := f.doAs(t, tok, logical.UpdateOperation, "sys/wrapping/unwrap", map[string]any{"token": res.Wrap.Token.Reveal()})
	if err != nil || !strings.Contains(string(resp.Raw.Body), "s3cret") {
		t.Fatalf("unwrap: %v %v", resp, err)
	}
}

// TestWrappingUIMounts: the KV preflight, served outside the mounts,
// is wrapped when asked, as every other response.
func TestWrappingUIMounts(t *testing.T) {
	f := initCore(t)
	f.ok(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}})
	res, err := f.wrapped(t, f.token, logical.ReadOperation, "sys/internal/ui/mounts/secret/app", nil, time.Minute)
	if err != nil || res.Wrap == nil {
		t.Fatalf("wrapped preflight: %+v %v", res, err)
	}
	if res.Wrap.CreationPath != "sys/internal/ui/mounts/secret/app" {
		t.Errorf("creation path %q", res.Wrap.CreationPath)
	}
	resp, err := f.do(t, logical.UpdateOperation, "sys/wrapping/unwrap", map[string]any{"token": res.Wrap.Token.Reveal()})
	if err != nil || !strings.Contains(string(resp.Raw.Body), `"path":"secret/"`) {
		t.Fatalf("unwrap: %+v %v", resp, err)
	}
}

// TestWrappingAudited: the wrapped request's response entry names the
// wrapping token (HMAC'd) and holds the wrapped data HMAC'd; the unwrap's
// response entry holds the unwrapped response HMAC'd; nothing in clear.
func TestWrappingAudited(t *testing.T) {
	f := initCore(t)
	f.ok(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}})
	logPath := filepath.Join(t.TempDir(), "audit.log")
	f.ok(t, logical.UpdateOperation, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": logPath}})
	f.ok(t, logical.UpdateOperation, "secret/data/k", map[string]any{"data": map[string]any{"v": "s3cret-value"}})
	res, err := f.wrapped(t, f.token, logical.ReadOperation, "secret/data/k", nil, time.Minute)
	if err != nil || res.Wrap == nil {
		t.Fatalf("wrapped read: %v", err)
	}
	wrapTok := res.Wrap.Token.Reveal()
	if _, err := f.do(t, logical.UpdateOperation, "sys/wrapping/unwrap", map[string]any{"token": wrapTok}); err != nil {
		t.Fatal(err)
	}
	raw := mustRead(t, logPath)
	for _, clear := range []string{"s3cret-value", wrapTok, res.Wrap.Accessor} {
		if strings.Contains(string(raw), clear) {
			t.Errorf("%q in clear in the log", clear)
		}
	}
	hash := func(v string) string {
		return f.ok(t, logical.UpdateOperation, "sys/audit-hash/file", map[string]any{"input": v}).Data["hash"].(string)
	}
	var wrappedSeen, unwrapSeen bool
	for _, e := range readEntries(t, logPath) {
		if e.Type != "response" || e.Response == nil {
			continue
		}
		switch e.Request.Path {
		case "secret/data/k":
			if wi := e.Response.WrapInfo; wi != nil {
				wrappedSeen = true
				if wi.Token != hash(wrapTok) || wi.Accessor != hash(res.Wrap.Accessor) || wi.TTL != 60 || wi.CreationPath != "secret/data/k" {
					t.Errorf("wrap_info = %+v", wi)
				}
				if !strings.Contains(string(mustJSON(t, e.Response.Data)), hash("s3cret-value")) {
					t.Errorf("wrapped data not logged: %v", e.Response.Data)
				}
			}
		case "sys/wrapping/unwrap":
			unwrapSeen = true
			if !strings.Contains(string(mustJSON(t, e.Response.Data)), hash("s3cret-value")) {
				t.Errorf("unwrapped data not logged: %v", e.Response.Data)
			}
		}
	}
	if !wrappedSeen || !unwrapSeen {
		t.Fatalf("entries: wrapped %v, unwrap %v", wrappedSeen, unwrapSeen)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
