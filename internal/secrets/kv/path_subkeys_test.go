package kv

import (
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestSubkeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	h.put("k", `{"a":"1","b":{"c":"2","d":{"e":"3"},"empty":{}},"arr":[1,{"x":1}],"n":null}`)
	h.put("k", `{"only":"v2"}`)
	cases := []struct {
		name string
		data map[string]any
		want map[string]any
	}{
		{"all levels", map[string]any{"version": "1"}, map[string]any{
			"a": nil, "arr": nil, "n": nil,
			"b": map[string]any{"c": nil, "empty": nil, "d": map[string]any{"e": nil}},
		}},
		{"depth 1", map[string]any{"version": "1", "depth": "1"}, map[string]any{"a": nil, "arr": nil, "n": nil, "b": nil}},
		{"depth 2", map[string]any{"version": "1", "depth": "2"}, map[string]any{
			"a": nil, "arr": nil, "n": nil, "b": map[string]any{"c": nil, "empty": nil, "d": nil},
		}},
		{"current version", nil, map[string]any{"only": nil}},
	}
	for _, c := range cases {
		resp := h.ok(logical.ReadOperation, "subkeys/k", c.data)
		wantData("subkeys", c.want)(t, resp)
	}
	wantData("metadata.version", int64(1))(t, h.ok(logical.ReadOperation, "subkeys/k", map[string]any{"version": "1"}))
	if st, msg, _ := h.status(logical.ReadOperation, "subkeys/k", map[string]any{"depth": "-1"}); st != 400 || msg != "depth must be a non-negative integer" {
		t.Errorf("negative depth: %d %q", st, msg)
	}
	for _, c := range []struct {
		path string
		data map[string]any
	}{{"subkeys/nope", nil}, {"subkeys/k", map[string]any{"version": "9"}}} {
		if st, _, resp := h.status(logical.ReadOperation, c.path, c.data); st != 404 || resp != nil {
			t.Errorf("%s %v: %d %v, want a plain 404", c.path, c.data, st, resp)
		}
	}
	h.ok(logical.DeleteOperation, "data/k", nil)
	st, _, resp := h.status(logical.ReadOperation, "subkeys/k", nil)
	if st != 404 || resp == nil {
		t.Fatalf("subkeys of a deleted version: %d", st)
	}
	if v, ok := resp.Data["subkeys"]; !ok || v != nil {
		t.Errorf("subkeys of a deleted version = %#v, want null", resp.Data["subkeys"])
	}
	wantData("metadata.deletion_time", "2024-05-01T10:00:00.123456789Z")(t, resp)
}
