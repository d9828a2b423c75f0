package kv

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

// t0 is the fake clock's start: nanoseconds show in the rendered times.
var t0 = time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)

// fixedSystem is a logical.SystemView with fixed TTLs and no password
// policies.
type fixedSystem struct {
	logicaltest.NoPasswordPolicies
	def, max time.Duration
}

func (s fixedSystem) DefaultLeaseTTL() time.Duration { return s.def }
func (s fixedSystem) MaxLeaseTTL() time.Duration     { return s.max }

// harness drives a KV backend the way the request pipeline does.
type harness struct {
	t   testing.TB
	b   logical.Backend
	s   logical.Storage
	clk *clock.Fake
}

func newHarness(t testing.TB, version string) *harness {
	t.Helper()
	return newHarnessOn(t, version, logicaltest.New())
}

func newHarnessOn(t testing.TB, version string, s logical.Storage) *harness {
	t.Helper()
	clk := clock.NewFake(t0)
	b, err := Factory(t.Context(), &logical.BackendConfig{
		Now:        clk.Now,
		System:     fixedSystem{def: 768 * time.Hour, max: 768 * time.Hour},
		Options:    map[string]string{"version": version},
		MountPoint: "secret/",
	})
	if err != nil {
		t.Fatalf("Factory: %v", err)
	}
	if in, ok := b.(logical.Initializer); ok {
		if err := in.Initialize(t.Context(), s); err != nil {
			t.Fatalf("Initialize: %v", err)
		}
	}
	return &harness{t: t, b: b, s: s, clk: clk}
}

// body decodes a JSON request body as the HTTP layer does: numbers as
// json.Number.
func body(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// do sends one request. An update first goes through the existence check,
// which turns it into a create when the target does not exist.
func (h *harness) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	h.t.Helper()
	req := &logical.Request{
		ID: "req", Operation: op, Path: path, Data: data, Storage: h.s,
		MountPoint: "secret/", MountType: "kv", MountAccessor: "kv_test",
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
	if err == nil {
		decodeRawData(h.t, resp)
	}
	return resp, err
}

// decodeRawData turns the raw JSON a read hands to the HTTP layer into the
// map a client decodes, so tests look at what clients see.
func decodeRawData(t testing.TB, resp *logical.Response) {
	t.Helper()
	if raw, ok := resp.Data["metadata"].(json.RawMessage); ok {
		var m struct {
			CreatedTime    string         `json:"created_time"`
			CustomMetadata map[string]any `json:"custom_metadata"`
			DeletionTime   string         `json:"deletion_time"`
			Destroyed      bool           `json:"destroyed"`
			Version        int64          `json:"version"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("response metadata is not a JSON object: %v", err)
		}
		md := map[string]any{"created_time": m.CreatedTime, "custom_metadata": nil,
			"deletion_time": m.DeletionTime, "destroyed": m.Destroyed, "version": m.Version}
		if m.CustomMetadata != nil {
			md["custom_metadata"] = m.CustomMetadata
		}
		resp.Data["metadata"] = md
	}
	raw, ok := resp.Data["data"].(json.RawMessage)
	if !ok {
		return
	}
	data, err := decodeVersion(append([]byte(`{"data":`), append(raw, '}')...))
	if err != nil {
		t.Fatalf("response data is not a JSON object: %v", err)
	}
	resp.Data["data"] = data
}

// ok sends a request that must succeed.
func (h *harness) ok(op logical.Operation, path string, data map[string]any) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

// status maps a request's outcome to the HTTP status and error message the
// HTTP layer would send.
func (h *harness) status(op logical.Operation, path string, data map[string]any) (int, string, *logical.Response) {
	h.t.Helper()
	resp, err := h.do(op, path, data)
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
	case resp.Data == nil && resp.Secret == nil && len(resp.Warnings) == 0:
		return 204, "", resp
	}
	return 200, "", resp
}

// put writes data to data/<key> as `kv put` does and returns the new
// version.
func (h *harness) put(key, data string) int64 {
	h.t.Helper()
	resp := h.ok(logical.UpdateOperation, "data/"+key, body(h.t, `{"data":`+data+`,"options":{}}`))
	return resp.Data["version"].(int64)
}

// metadata reads metadata/<key>.
func (h *harness) metadata(key string) map[string]any {
	h.t.Helper()
	return h.ok(logical.ReadOperation, "metadata/"+key, nil).Data
}

// versionState returns the metadata of one version from metadata/<key>.
func (h *harness) versionState(key string, n string) map[string]any {
	h.t.Helper()
	v, ok := h.metadata(key)["versions"].(map[string]any)[n].(map[string]any)
	if !ok {
		h.t.Fatalf("metadata of %q has no version %s", key, n)
	}
	return v
}

// asJSON renders v as indented JSON, as the HTTP layer would encode it.
func asJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}
