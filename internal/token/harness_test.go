package token

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
	"github.com/vigil-secrets/vigil/internal/policy"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// t0 is the fake clock's start.
var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// fixedSystem is a logical.SystemView with fixed TTLs and no password
// policies.
type fixedSystem struct {
	logicaltest.NoPasswordPolicies
	def, max time.Duration
}

func (s fixedSystem) DefaultLeaseTTL() time.Duration { return s.def }
func (s fixedSystem) MaxLeaseTTL() time.Duration     { return s.max }

// countingStorage counts the writes that reach a storage.
type countingStorage struct {
	*logicaltest.Storage
	writes atomic.Int64
}

func (c *countingStorage) Put(ctx context.Context, k string, v []byte) error {
	c.writes.Add(1)
	return c.Storage.Put(ctx, k, v)
}

func (c *countingStorage) Delete(ctx context.Context, k string) error {
	c.writes.Add(1)
	return c.Storage.Delete(ctx, k)
}

func (c *countingStorage) Transaction(ctx context.Context, ops []logical.StorageOp) error {
	c.writes.Add(int64(len(ops)))
	return c.Storage.Transaction(ctx, ops)
}

// fakeHooks stands for core's lease wiring: it records every call and can
// be told to fail for a token.
type fakeHooks struct {
	mu       sync.Mutex
	created  []string // hashed ids
	renewed  []string
	revoked  []string
	failFor  map[string]error // hashed id → error from RevokeLeases
	failNext error            // error from the next TokenCreated/TokenRenewed
}

func (f *fakeHooks) TokenCreated(_ context.Context, e *Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	f.created = append(f.created, e.HashedID)
	return nil
}

func (f *fakeHooks) TokenRenewed(_ context.Context, e *Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	f.renewed = append(f.renewed, e.HashedID)
	return nil
}

func (f *fakeHooks) RevokeLeases(_ context.Context, e *Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failFor[e.HashedID]; err != nil {
		return err
	}
	f.revoked = append(f.revoked, e.HashedID)
	return nil
}

func (f *fakeHooks) revokedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.revoked)
}

// fakeRenewer stands for core routing a renewal to an auth mount.
type fakeRenewer struct {
	calls int
	got   *logical.Auth
	ret   func(a *logical.Auth) (*logical.Auth, TTLDefaults, error)
}

func (f *fakeRenewer) RenewAuth(_ context.Context, _ *Entry, a *logical.Auth) (*logical.Auth, TTLDefaults, error) {
	f.calls++
	f.got = a
	return f.ret(a)
}

// harness drives a store and its backend the way core will.
type harness struct {
	t       testing.TB
	ctx     context.Context
	clk     *clock.Fake
	s       *countingStorage
	st      *Store
	b       logical.Backend
	hooks   *fakeHooks
	renewer *fakeRenewer
	// policies are the texts the harness compiles ACLs from.
	policies map[string]string
	root     secret.String
}

const mountDefault, mountMax = time.Hour, 24 * time.Hour

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{
		t:     t,
		ctx:   context.Background(),
		clk:   clock.NewFake(t0),
		s:     &countingStorage{Storage: logicaltest.New()},
		hooks: &fakeHooks{failFor: map[string]error{}},
		renewer: &fakeRenewer{ret: func(a *logical.Auth) (*logical.Auth, TTLDefaults, error) {
			return a, TTLDefaults{DefaultTTL: mountDefault, MaxTTL: mountMax}, nil
		}},
		policies: map[string]string{
			"default": policy.DefaultText,
			"dev":     `path "secret/dev/*" { capabilities = ["read"] }`,
			"ops":     `path "secret/ops/*" { capabilities = ["read"] }`,
			"creator": `path "auth/token/create" { capabilities = ["update", "sudo"] }
path "auth/token/create-orphan" { capabilities = ["update"] }
path "auth/token/revoke-orphan" { capabilities = ["update", "sudo"] }`,
		},
	}
	h.open()
	tok, _, err := h.st.CreateRoot(h.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	h.root = tok
	return h
}

// open (re)opens the store and backend over the harness's storage.
func (h *harness) open() {
	h.t.Helper()
	st, err := OpenWith(h.ctx, h.s, Config{Now: h.clk.Now, Leases: h.hooks, AuthRenewer: h.renewer})
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := NewBackend(st, BackendConfig{
		System: fixedSystem{def: mountDefault, max: mountMax},
		PolicyExists: func(_ context.Context, name string) (bool, error) {
			_, ok := h.policies[name]
			return ok, nil
		},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.st, h.b = st, b
}

// acl compiles the ACL of policies.
func (h *harness) acl(policies []string) *policy.ACL {
	h.t.Helper()
	if slices.Contains(policies, "root") {
		return policy.Root()
	}
	var ps []*policy.Policy
	for _, name := range policies {
		text, ok := h.policies[name]
		if !ok {
			continue
		}
		p, err := policy.Parse(name, text)
		if err != nil {
			h.t.Fatalf("parse %s: %v", name, err)
		}
		ps = append(ps, p)
	}
	a, err := policy.Compile(ps...)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// as returns a context carrying tok as the caller, looked up as core does
// (an invalid token fails the test).
func (h *harness) as(tok secret.String) context.Context {
	h.t.Helper()
	e, err := h.st.Lookup(h.ctx, tok)
	if err != nil {
		h.t.Fatalf("caller lookup: %v", err)
	}
	return WithCaller(h.ctx, &Caller{Entry: e, Token: tok, ACL: h.acl(e.Policies)})
}

// body decodes a JSON request body as the HTTP layer does: numbers as
// json.Number. "" is no body.
func body(t testing.TB, s string) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// request sends one request as the caller in ctx; an update first goes
// through the existence check.
func (h *harness) request(ctx context.Context, op logical.Operation, path, js string) (*logical.Response, error) {
	h.t.Helper()
	req := &logical.Request{
		ID: "req", Operation: op, Path: path, Data: body(h.t, js), Storage: h.s,
		MountPoint: MountPath, MountType: "token", MountAccessor: "auth_token_test",
	}
	if op == logical.UpdateOperation {
		checked, exists, err := h.b.ExistenceCheck(ctx, req)
		if err != nil {
			return nil, err
		}
		if checked && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	resp, err := h.b.HandleRequest(ctx, req)
	if err == nil && resp == nil {
		h.t.Fatalf("%s %s: nil response without error", op, path)
	}
	return resp, err
}

// ok sends a request that must succeed.
func (h *harness) ok(ctx context.Context, op logical.Operation, path, js string) *logical.Response {
	h.t.Helper()
	resp, err := h.request(ctx, op, path, js)
	if err != nil {
		h.t.Fatalf("%s %s %s: %v", op, path, js, err)
	}
	return resp
}

// fails sends a request that must fail with status and a message
// containing msg.
func (h *harness) fails(ctx context.Context, op logical.Operation, path, js string, status int, msg string) {
	h.t.Helper()
	resp, err := h.request(ctx, op, path, js)
	got, gotMsg := httpStatus(resp, err)
	if got != status || !strings.Contains(gotMsg, msg) {
		h.t.Fatalf("%s %s %s: got %d %q, want %d containing %q", op, path, js, got, gotMsg, status, msg)
	}
}

// httpStatus is the status and message the HTTP layer would send.
func httpStatus(resp *logical.Response, err error) (int, string) {
	var ce *logical.CodedError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		return ce.Status, ce.Msg
	case errors.Is(err, logical.ErrPermissionDenied):
		return 403, "permission denied"
	case errors.Is(err, logical.ErrNotFound):
		return 404, ""
	case errors.Is(err, logical.ErrUnsupportedPath):
		return 404, "unsupported path"
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return 405, "unsupported operation"
	default:
		return 500, err.Error()
	}
	if resp.Data == nil && resp.Auth == nil && len(resp.Warnings) == 0 {
		return 204, ""
	}
	return 200, ""
}

// create creates a token as the caller in ctx and returns its auth.
func (h *harness) create(ctx context.Context, path, js string) *logical.Auth {
	h.t.Helper()
	resp := h.ok(ctx, logical.UpdateOperation, path, js)
	if resp.Auth == nil || resp.Auth.ClientToken == "" {
		h.t.Fatalf("%s: no token in %+v", path, resp)
	}
	return resp.Auth
}

// tok wraps a token value.
func tok(s string) secret.String { return secret.NewString(s) }

// entry looks a token up, failing the test if it is not usable.
func (h *harness) entry(v string) *Entry {
	h.t.Helper()
	e, err := h.st.Lookup(h.ctx, tok(v))
	if err != nil {
		h.t.Fatalf("lookup: %v", err)
	}
	return e
}

// gone checks that a token is no longer usable.
func (h *harness) gone(v string) {
	h.t.Helper()
	if _, err := h.st.Lookup(h.ctx, tok(v)); !errors.Is(err, ErrInvalid) {
		h.t.Fatalf("token still valid (err %v)", err)
	}
}

// rendered marshals v to JSON and decodes it back as a client would
// (numbers as json.Number).
func rendered(t testing.TB, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// keysUnder returns the stored keys with prefix.
func (h *harness) keysUnder(prefix string) []string {
	var out []string
	for _, k := range h.s.Keys() {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// num reads a json.Number field as an int64.
func num(t testing.TB, m map[string]any, key string) int64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%s = %#v (%T), want a JSON number", key, m[key], m[key])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

func js(format string, args ...any) string { return fmt.Sprintf(format, args...) }
