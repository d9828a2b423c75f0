package kv

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestMetadataReadWrite(t *testing.T) {
	t.Parallel()
	const (
		read   = logical.ReadOperation
		update = logical.UpdateOperation
		patch  = logical.PatchOperation
	)
	cases := []struct {
		name  string
		steps func(t *testing.T) []step
	}{
		{
			name: "read missing",
			steps: func(t *testing.T) []step {
				return []step{{op: read, path: "metadata/nope", status: 404}}
			},
		},
		{
			name: "write creates metadata without versions",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "metadata/k", data: body(t, `{"max_versions":"5","cas_required":"true","delete_version_after":"1h","custom_metadata":{"owner":"jdoe"}}`), status: 204},
					{op: read, path: "metadata/k", status: 200, check: func(t *testing.T, resp *logical.Response) {
						wantData("max_versions", 5)(t, resp)
						wantData("cas_required", true)(t, resp)
						wantData("delete_version_after", "1h0m0s")(t, resp)
						wantData("custom_metadata", map[string]any{"owner": "jdoe"})(t, resp)
						wantData("current_version", int64(0))(t, resp)
						wantData("oldest_version", int64(0))(t, resp)
						wantData("versions", map[string]any{})(t, resp)
						wantData("created_time", "2024-05-01T10:00:00.123456789Z")(t, resp)
						wantData("updated_time", "2024-05-01T10:00:00.123456789Z")(t, resp)
					}},
				}
			},
		},
		{
			name: "write without fields is a no-op",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "metadata/k", data: body(t, `{}`), status: 204},
					{op: read, path: "metadata/k", status: 404},
					{op: update, path: "metadata/k", data: body(t, `{"unknown":1}`), status: 200,
						check: wantWarnings("Endpoint ignored these unrecognized parameters: [unknown]")},
					{op: read, path: "metadata/k", status: 404},
				}
			},
		},
		{
			name: "write changes only the supplied fields",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "metadata/k", data: body(t, `{"max_versions":3,"custom_metadata":{"a":"1"}}`), status: 204},
					{op: update, path: "metadata/k", data: body(t, `{"cas_required":true}`), status: 204},
					{op: read, path: "metadata/k", status: 200, check: func(t *testing.T, resp *logical.Response) {
						wantData("max_versions", 3)(t, resp)
						wantData("cas_required", true)(t, resp)
						wantData("custom_metadata", map[string]any{"a": "1"})(t, resp)
					}},
					{op: update, path: "metadata/k", data: body(t, `{"custom_metadata":{"b":"2"}}`), status: 204},
					{op: read, path: "metadata/k", status: 200, check: wantData("custom_metadata", map[string]any{"b": "2"})},
					{op: update, path: "metadata/k", data: body(t, `{"custom_metadata":{}}`), status: 204},
					{op: read, path: "metadata/k", status: 200, check: wantData("custom_metadata", nil)},
				}
			},
		},
		{
			name: "custom_metadata forms",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "metadata/k", data: body(t, `{"custom_metadata":"a=1,b=2"}`), status: 204},
					{op: read, path: "metadata/k", status: 200, check: wantData("custom_metadata", map[string]any{"a": "1", "b": "2"})},
					{op: update, path: "metadata/k", data: body(t, `{"custom_metadata":{"n":5,"t":true}}`), status: 204},
					{op: read, path: "metadata/k", status: 200, check: wantData("custom_metadata", map[string]any{"n": "5", "t": "true"})},
				}
			},
		},
		{
			name: "invalid values",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "metadata/k", data: body(t, `{"max_versions":"abc"}`), status: 400,
						msg: `invalid value for "max_versions": expected an integer, got "abc"`},
					{op: update, path: "metadata/k", data: body(t, `{"max_versions":-1}`), status: 400, msg: "max_versions must not be negative"},
					{op: update, path: "metadata/k", data: body(t, `{"delete_version_after":"-1h"}`), status: 400,
						msg: `invalid value for "delete_version_after": expected a non-negative duration, got "-1h"`},
					{op: update, path: "metadata/k", data: body(t, `{"delete_version_after":"1d"}`), status: 400,
						msg: `invalid value for "delete_version_after": expected a duration in seconds or a Go duration string ("1h"), got "1d"`},
					{op: update, path: "metadata/k", data: body(t, `{"cas_required":"maybe"}`), status: 400,
						msg: `invalid value for "cas_required": expected a boolean, got "maybe"`},
					{op: update, path: "metadata/k", data: body(t, `{"custom_metadata":{"a":{"b":"c"}}}`), status: 400,
						msg: `invalid value for "custom_metadata": expected an object of strings or a list of "key=value" strings, got an object`},
					{op: update, path: "metadata/k/", data: body(t, `{"max_versions":1}`), status: 400,
						msg: `invalid secret path "k/": it must be non-empty and have no empty segments`},
					{op: read, path: "metadata/k", status: 404},
				}
			},
		},
		{
			name: "custom_metadata limits",
			steps: func(t *testing.T) []step {
				tooMany := map[string]any{}
				for i := 0; i < 65; i++ {
					tooMany[fmt.Sprintf("k%d", i)] = "v"
				}
				long := strings.Repeat("x", 129)
				return []step{
					{op: update, path: "metadata/k", data: map[string]any{"custom_metadata": tooMany}, status: 400,
						msg: "custom_metadata validation failed: payload must contain at most 64 keys, provided 65"},
					{op: update, path: "metadata/k", data: map[string]any{"custom_metadata": map[string]any{long: "v"}}, status: 400,
						msg: `custom_metadata validation failed: length of key "` + long + `" is 129 but must be 0 < len(key) <= 128`},
					{op: update, path: "metadata/k", data: map[string]any{"custom_metadata": map[string]any{"k": strings.Repeat("v", 513)}}, status: 400,
						msg: `custom_metadata validation failed: length of value for key "k" is 513 but must be 0 < len(value) <= 512`},
					{op: update, path: "metadata/k", data: map[string]any{"custom_metadata": map[string]any{"k": ""}}, status: 400,
						msg: `custom_metadata validation failed: length of value for key "k" is 0 but must be 0 < len(value) <= 512`},
					{op: update, path: "metadata/k", data: map[string]any{"custom_metadata": map[string]any{"a\x01": "v\n"}}, status: 400,
						msg: `custom_metadata validation failed: key "a\x01" contains unprintable characters; value for key "a\x01" contains unprintable characters`},
					{op: read, path: "metadata/k", status: 404},
				}
			},
		},
		{
			name: "cas_required false on a mount that requires it",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "config", data: body(t, `{"cas_required":true}`), status: 204},
					{op: update, path: "metadata/k", data: body(t, `{"cas_required":false}`), status: 200, check: wantWarnings(casWarning)},
					{op: patch, path: "metadata/k", data: body(t, `{"cas_required":false}`), status: 200, check: wantWarnings(casWarning)},
				}
			},
		},
		{
			name: "metadata of a written key",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"1"}}`), status: 200},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"2"}}`), status: 200},
					{op: read, path: "metadata/k", status: 200, check: func(t *testing.T, resp *logical.Response) {
						wantData("current_version", int64(2))(t, resp)
						wantData("max_versions", 0)(t, resp)
						wantData("delete_version_after", "0s")(t, resp)
						wantData("custom_metadata", nil)(t, resp)
						wantData("versions.1.deletion_time", "")(t, resp)
						wantData("versions.2.destroyed", false)(t, resp)
					}},
				}
			},
		},
		{
			name: "patch",
			steps: func(t *testing.T) []step {
				return []step{
					{op: patch, path: "metadata/k", data: body(t, `{"max_versions":2}`), status: 404},
					{op: update, path: "metadata/k", data: body(t, `{"max_versions":3,"custom_metadata":{"a":"1","b":"2"}}`), status: 204},
					{op: patch, path: "metadata/k", data: body(t, `{"cas_required":true,"custom_metadata":{"a":null,"c":"3"}}`), status: 204},
					{op: read, path: "metadata/k", status: 200, check: func(t *testing.T, resp *logical.Response) {
						wantData("max_versions", 3)(t, resp)
						wantData("cas_required", true)(t, resp)
						wantData("custom_metadata", map[string]any{"b": "2", "c": "3"})(t, resp)
					}},
					{op: patch, path: "metadata/k", data: body(t, `{"custom_metadata":null}`), status: 204},
					{op: read, path: "metadata/k", status: 200, check: wantData("custom_metadata", nil)},
					{op: patch, path: "metadata/k", data: body(t, `{"custom_metadata":{"x":""}}`), status: 400,
						msg: `custom_metadata validation failed: length of value for key "x" is 0 but must be 0 < len(value) <= 512`},
					{op: patch, path: "metadata/k", data: body(t, `{}`), status: 204},
				}
			},
		},
		{
			name: "patch keeps the merged limit",
			steps: func(t *testing.T) []step {
				first, second := map[string]any{}, map[string]any{}
				for i := 0; i < 40; i++ {
					first[fmt.Sprintf("a%d", i)] = "v"
					second[fmt.Sprintf("b%d", i)] = "v"
				}
				return []step{
					{op: update, path: "metadata/k", data: map[string]any{"custom_metadata": first}, status: 204},
					{op: patch, path: "metadata/k", data: map[string]any{"custom_metadata": second}, status: 400,
						msg: "custom_metadata validation failed: payload must contain at most 64 keys, provided 80"},
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runSteps(t, newHarness(t, "2"), c.steps(t))
		})
	}
}

func TestMetadataUpdatedTime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	h.ok(logical.UpdateOperation, "metadata/k", body(t, `{"max_versions":1}`))
	h.clk.Advance(time.Hour)
	h.put("k", `{"a":"b"}`)
	md := h.metadata("k")
	if md["created_time"] != "2024-05-01T10:00:00.123456789Z" || md["updated_time"] != "2024-05-01T11:00:00.123456789Z" {
		t.Errorf("created %v updated %v", md["created_time"], md["updated_time"])
	}
}

func TestMetadataDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	for i := 0; i < 3; i++ {
		h.put("k", `{"a":"b"}`)
	}
	h.put("k/nested", `{"a":"b"}`)
	// A record no metadata refers to (a pruned version whose removal
	// failed) is removed too.
	if err := h.s.Put(t.Context(), versionKey("k", 99), []byte(`{"data":{}}`)); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := h.status(logical.DeleteOperation, "metadata/k", nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	for _, p := range []string{"metadata/k", "data/k"} {
		if st, _, _ := h.status(logical.ReadOperation, p, nil); st != 404 {
			t.Errorf("read %s after delete: %d", p, st)
		}
	}
	names, err := h.s.List(t.Context(), versionsDir("k"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, []string{"nested/"}) {
		t.Errorf("version records left under k: %q", names)
	}
	wantData("data.a", "b")(t, h.ok(logical.ReadOperation, "data/k/nested", nil))
	// Deleting again, or a key that never existed, is a no-op.
	for _, p := range []string{"metadata/k", "metadata/never"} {
		if st, _, _ := h.status(logical.DeleteOperation, p, nil); st != 204 {
			t.Errorf("delete %s: %d", p, st)
		}
	}
	// The key can be written afresh.
	if v := h.put("k", `{"a":"c"}`); v != 1 {
		t.Errorf("version after re-create = %d, want 1", v)
	}
}

func TestMetadataList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	const list = logical.ListOperation
	if st, _, _ := h.status(list, "metadata/", nil); st != 404 {
		t.Fatalf("list of an empty mount: %d, want 404", st)
	}
	for _, k := range []string{"a", "b/c", "b/d/e", "b", "z"} {
		h.put(k, `{"x":"y"}`)
	}
	h.ok(logical.UpdateOperation, "metadata/m", body(t, `{"max_versions":1}`))
	h.ok(logical.DeleteOperation, "data/z", nil)
	cases := []struct {
		path string
		data map[string]any
		want []string
	}{
		{"metadata/", nil, []string{"a", "b", "b/", "m", "z"}},
		{"metadata/b/", nil, []string{"c", "d/"}},
		{"metadata/b/d/", nil, []string{"e"}},
		{"metadata/", map[string]any{"after": "b"}, []string{"b/", "m", "z"}},
		{"metadata/", map[string]any{"after": "a0", "limit": "2"}, []string{"b", "b/"}},
		{"metadata/", map[string]any{"limit": "1"}, []string{"a"}},
	}
	for _, c := range cases {
		resp := h.ok(list, c.path, c.data)
		if got := resp.Data["keys"]; !reflect.DeepEqual(got, c.want) {
			t.Errorf("LIST %s %v = %q, want %q", c.path, c.data, got, c.want)
		}
	}
	for _, p := range []string{"metadata/nope/", "metadata/a/"} {
		if st, _, _ := h.status(list, p, nil); st != 404 {
			t.Errorf("LIST %s: %d, want 404", p, st)
		}
	}
	if st, _, _ := h.status(list, "metadata/", map[string]any{"after": "z"}); st != 404 {
		t.Errorf("LIST after the last key: %d, want 404", st)
	}
}
