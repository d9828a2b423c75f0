package approle

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

// t0 is the fake clock's start.
var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// mountMaxTTL is the test mount's maximum lease TTL.
const mountMaxTTL = 768 * time.Hour

// fixedSystem is a logical.SystemView with fixed TTLs and no password
// policies.
type fixedSystem struct {
	logicaltest.NoPasswordPolicies
	def, max time.Duration
}

func (s fixedSystem) DefaultLeaseTTL() time.Duration { return s.def }
func (s fixedSystem) MaxLeaseTTL() time.Duration     { return s.max }

// harness drives an AppRole backend the way the request pipeline does.
type harness struct {
	t   testing.TB
	b   *backend
	s   *logicaltest.Storage
	clk *clock.Fake
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	clk := clock.NewFake(t0)
	lb, err := Factory(t.Context(), &logical.BackendConfig{
		Now:        clk.Now,
		System:     fixedSystem{def: mountMaxTTL, max: mountMaxTTL},
		MountPoint: "auth/approle/",
	})
	if err != nil {
		t.Fatalf("Factory: %v", err)
	}
	return &harness{t: t, b: lb.(*backend), s: logicaltest.New(), clk: clk}
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

// from is a client connection from addr.
func from(addr string) *logical.Connection {
	return &logical.Connection{RemoteAddr: addr, RemotePort: 40000}
}

// request sends one request from conn. An update first goes through the
// existence check, which turns it into a create when the target does not
// exist.
func (h *harness) request(op logical.Operation, path string, data map[string]any, conn *logical.Connection) (*logical.Response, error) {
	h.t.Helper()
	req := &logical.Request{
		ID: "req", Operation: op, Path: path, Data: data, Storage: h.s,
		MountPoint: "auth/approle/", MountType: "approle", MountAccessor: "auth_approle_test", Connection: conn,
	}
	if op == logical.UpdateOperation {
		checked, exists, err := h.b.ExistenceCheck(h.t.Context(), req)
		if err != nil {
			return nil, err
		}
		if checked && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	resp, err := h.b.HandleRequest(h.t.Context(), req)
	if err == nil && resp == nil {
		h.t.Fatalf("%s %s: nil response without error", op, path)
	}
	return resp, err
}

// do sends a request from 127.0.0.1 with a JSON body ("" for none).
func (h *harness) do(op logical.Operation, path, js string) (*logical.Response, error) {
	h.t.Helper()
	return h.request(op, path, body(h.t, js), from("127.0.0.1"))
}

// ok sends a request that must succeed.
func (h *harness) ok(op logical.Operation, path, js string) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, js)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

// status sends a request and returns the HTTP status and error message the
// HTTP layer would send.
func (h *harness) status(op logical.Operation, path, js string) (int, string, *logical.Response) {
	h.t.Helper()
	resp, err := h.do(op, path, js)
	return httpStatus(resp, err)
}

func httpStatus(resp *logical.Response, err error) (int, string, *logical.Response) {
	var ce *logical.CodedError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		return ce.Status, ce.Msg, nil
	case errors.Is(err, logical.ErrNotFound):
		return 404, "", nil
	case errors.Is(err, logical.ErrUnsupportedPath):
		return 404, "unsupported path", nil
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return 405, "unsupported operation", nil
	default:
		return 500, err.Error(), nil
	}
	switch {
	case resp.StatusCode != 0:
		return resp.StatusCode, "", resp
	case resp.Data == nil && resp.Auth == nil && len(resp.Warnings) == 0:
		return 204, "", resp
	}
	return 200, "", resp
}

// createRole writes role/<name> with the JSON body and returns its role_id.
func (h *harness) createRole(name, js string) string {
	h.t.Helper()
	h.ok(logical.UpdateOperation, "role/"+name, js)
	return h.roleID(name)
}

// roleID reads a role's role_id.
func (h *harness) roleID(name string) string {
	h.t.Helper()
	return h.ok(logical.ReadOperation, "role/"+name+"/role-id", "").Data["role_id"].(string)
}

// newSecretID issues a secret ID for the role and returns it and its
// accessor.
func (h *harness) newSecretID(role, js string) (secretID, accessor string) {
	h.t.Helper()
	d := h.ok(logical.UpdateOperation, "role/"+role+"/secret-id", js).Data
	return d["secret_id"].(string), d["secret_id_accessor"].(string)
}

// login logs in from conn (nil for an internal request).
func (h *harness) login(roleID, secretID string, conn *logical.Connection) (*logical.Response, error) {
	h.t.Helper()
	data := map[string]any{"role_id": roleID}
	if secretID != "" {
		data["secret_id"] = secretID
	}
	return h.request(logical.UpdateOperation, "login", data, conn)
}

// mustLogin logs in from 127.0.0.1 and returns the auth.
func (h *harness) mustLogin(roleID, secretID string) *logical.Auth {
	h.t.Helper()
	resp, err := h.login(roleID, secretID, from("127.0.0.1"))
	if err != nil {
		h.t.Fatalf("login: %v", err)
	}
	if resp.Auth == nil {
		h.t.Fatalf("login: no auth in %+v", resp)
	}
	return resp.Auth
}

// wantInvalid checks that err is the vague login failure.
func wantInvalid(t testing.TB, resp *logical.Response, err error) {
	t.Helper()
	status, msg, _ := httpStatus(resp, err)
	if status != 400 || msg != msgInvalidCredentials {
		t.Fatalf("login: got %d %q, want 400 %q", status, msg, msgInvalidCredentials)
	}
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

// wantStatus checks a request's status and that its message contains msg.
func (h *harness) wantStatus(op logical.Operation, path, js string, status int, msg string) *logical.Response {
	h.t.Helper()
	got, gotMsg, resp := h.status(op, path, js)
	if got != status || !strings.Contains(gotMsg, msg) {
		h.t.Fatalf("%s %s %s: got %d %q, want %d containing %q", op, path, js, got, gotMsg, status, msg)
	}
	return resp
}
