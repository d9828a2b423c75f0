package kv

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

// step is one request of a scenario and what it must answer.
type step struct {
	op     logical.Operation
	path   string
	data   map[string]any
	status int
	msg    string // the error message, for status >= 400 without a body
	check  func(t *testing.T, resp *logical.Response)
}

func runSteps(t *testing.T, h *harness, steps []step) {
	t.Helper()
	for i, s := range steps {
		status, msg, resp := h.status(s.op, s.path, s.data)
		if status != s.status || msg != s.msg {
			t.Fatalf("step %d (%s %s): got %d %q, want %d %q", i, s.op, s.path, status, msg, s.status, s.msg)
		}
		if s.check != nil {
			s.check(t, resp)
		}
	}
}

func wantData(path string, want any) func(*testing.T, *logical.Response) {
	return func(t *testing.T, resp *logical.Response) {
		t.Helper()
		got := lookup(resp.Data, path)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("data.%s = %#v, want %#v", path, got, want)
		}
	}
}

func wantWarnings(want ...string) func(*testing.T, *logical.Response) {
	return func(t *testing.T, resp *logical.Response) {
		t.Helper()
		if !reflect.DeepEqual(resp.Warnings, want) {
			t.Errorf("warnings = %q, want %q", resp.Warnings, want)
		}
	}
}

// lookup follows a dotted path through nested maps.
func lookup(m map[string]any, path string) any {
	var cur any = m
	for _, part := range splitDots(path) {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[part]
	}
	return cur
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func TestDataWriteRead(t *testing.T) {
	t.Parallel()
	const (
		read   = logical.ReadOperation
		update = logical.UpdateOperation
	)
	cases := []struct {
		name  string
		setup func(h *harness)
		steps func(t *testing.T) []step
	}{
		{
			name: "write then read",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "data/app/db", data: body(t, `{"data":{"user":"u","n":12345678901234567890},"options":{}}`), status: 200,
						check: wantData("version", int64(1))},
					{op: read, path: "data/app/db", status: 200, check: func(t *testing.T, resp *logical.Response) {
						wantData("data", map[string]any{"user": "u", "n": json.Number("12345678901234567890")})(t, resp)
						wantData("metadata.version", int64(1))(t, resp)
						wantData("metadata.deletion_time", "")(t, resp)
						wantData("metadata.destroyed", false)(t, resp)
						wantData("metadata.custom_metadata", nil)(t, resp)
						wantData("metadata.created_time", "2024-05-01T10:00:00.123456789Z")(t, resp)
					}},
				}
			},
		},
		{
			name: "read an older version",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "data/k", data: body(t, `{"data":{"v":"1"}}`), status: 200},
					{op: update, path: "data/k", data: body(t, `{"data":{"v":"2"}}`), status: 200},
					{op: read, path: "data/k", data: map[string]any{"version": "1"}, status: 200, check: wantData("data.v", "1")},
					{op: read, path: "data/k", data: map[string]any{"version": "0"}, status: 200, check: wantData("data.v", "2")},
					{op: read, path: "data/k", status: 200, check: wantData("metadata.version", int64(2))},
					{op: read, path: "data/k", data: map[string]any{"version": "3"}, status: 404},
					{op: read, path: "data/k", data: map[string]any{"version": "x"}, status: 400,
						msg: `invalid value for "version": expected an integer, got "x"`},
				}
			},
		},
		{
			name: "missing key",
			steps: func(t *testing.T) []step {
				return []step{{op: read, path: "data/nope", status: 404}}
			},
		},
		{
			name: "empty data object is a valid version",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "data/k", data: body(t, `{"data":{}}`), status: 200},
					{op: read, path: "data/k", status: 200, check: wantData("data", map[string]any{})},
				}
			},
		},
		{
			name: "missing data",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "data/k", data: body(t, `{"options":{}}`), status: 400, msg: "no data provided"},
					{op: update, path: "data/k", data: nil, status: 400, msg: "no data provided"},
					{op: update, path: "data/k", data: body(t, `{"data":null}`), status: 400, msg: "no data provided"},
					{op: update, path: "data/k", data: body(t, `{"data":"s"}`), status: 400,
						msg: `invalid value for "data": expected an object, got "s"`},
					{op: read, path: "data/k", status: 404},
				}
			},
		},
		{
			name: "unknown parameters warn",
			steps: func(t *testing.T) []step {
				return []step{{op: update, path: "data/k", data: body(t, `{"data":{"a":"b"},"zz":1,"aa":2}`), status: 200,
					check: wantWarnings("Endpoint ignored these unrecognized parameters: [aa zz]")}}
			},
		},
		{
			name: "check-and-set",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"1"},"options":{"cas":0}}`), status: 200},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"2"},"options":{"cas":0}}`), status: 400,
						msg: "check-and-set parameter did not match the current version"},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"2"},"options":{"cas":2}}`), status: 400,
						msg: "check-and-set parameter did not match the current version"},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"2"},"options":{"cas":1}}`), status: 200, check: wantData("version", int64(2))},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"3"},"options":{"cas":"2"}}`), status: 200, check: wantData("version", int64(3))},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"4"},"options":{"cas":"abc"}}`), status: 400,
						msg: "error parsing check-and-set parameter"},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"4"},"options":{"cas":1.5}}`), status: 400,
						msg: "error parsing check-and-set parameter"},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"4"},"options":{"cas":-1}}`), status: 400,
						msg: "error parsing check-and-set parameter"},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"4"},"options":{"cas":null}}`), status: 200, check: wantData("version", int64(4))},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"4"},"options":"cas=1"}`), status: 400,
						msg: `invalid value for "options": expected an object, got "cas=1"`},
				}
			},
		},
		{
			name: "cas required by the mount",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "config", data: body(t, `{"cas_required":true}`), status: 204},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"1"}}`), status: 400, msg: "check-and-set parameter required for this call"},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"1"},"options":{}}`), status: 400, msg: "check-and-set parameter required for this call"},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"1"},"options":{"cas":0}}`), status: 200},
				}
			},
		},
		{
			name: "cas required by the key",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "metadata/k", data: body(t, `{"cas_required":true}`), status: 204},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"1"}}`), status: 400, msg: "check-and-set parameter required for this call"},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"1"},"options":{"cas":0}}`), status: 200},
					{op: update, path: "data/other", data: body(t, `{"data":{"a":"1"}}`), status: 200},
				}
			},
		},
		{
			name: "metadata-only key has no version to read",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "metadata/k", data: body(t, `{"max_versions":3}`), status: 204},
					{op: read, path: "data/k", status: 404},
					{op: read, path: "subkeys/k", status: 404},
					{op: update, path: "data/k", data: body(t, `{"data":{"a":"1"},"options":{"cas":0}}`), status: 200, check: wantData("version", int64(1))},
				}
			},
		},
		{
			name: "invalid keys",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "data//k", data: body(t, `{"data":{"a":"1"}}`), status: 400,
						msg: `invalid secret path "/k": it must be non-empty and have no empty segments`},
					{op: update, path: "data/a//k", data: body(t, `{"data":{"a":"1"}}`), status: 400,
						msg: `invalid secret path "a//k": it must be non-empty and have no empty segments`},
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "2")
			runSteps(t, h, c.steps(t))
		})
	}
}

func TestExistenceCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	check := func(path string) (bool, bool) {
		t.Helper()
		checked, exists, err := h.b.ExistenceCheck(t.Context(), &logical.Request{Operation: logical.UpdateOperation, Path: path, Storage: h.s})
		if err != nil {
			t.Fatalf("ExistenceCheck(%s): %v", path, err)
		}
		return checked, exists
	}
	if c, e := check("data/k"); !c || e {
		t.Errorf("data/k before write: checked=%v exists=%v", c, e)
	}
	if c, e := check("metadata/k"); !c || e {
		t.Errorf("metadata/k before write: checked=%v exists=%v", c, e)
	}
	h.put("k", `{"a":"b"}`)
	if c, e := check("data/k"); !c || !e {
		t.Errorf("data/k after write: checked=%v exists=%v", c, e)
	}
	if c, e := check("metadata/k"); !c || !e {
		t.Errorf("metadata/k after write: checked=%v exists=%v", c, e)
	}
	for _, p := range []string{"config", "delete/k", "destroy/k", "foo", "data"} {
		if c, _ := check(p); c {
			t.Errorf("%s has an existence check", p)
		}
	}
	if c, e := check("metadata/"); !c || e {
		t.Errorf("metadata/ (root): checked=%v exists=%v", c, e)
	}
}

func TestDataPatch(t *testing.T) {
	t.Parallel()
	const patch = logical.PatchOperation
	cases := []struct {
		name  string
		steps func(t *testing.T) []step
	}{
		{
			name: "merge",
			steps: func(t *testing.T) []step {
				return []step{
					{op: logical.UpdateOperation, path: "data/k", data: body(t, `{"data":{"a":"1","b":{"c":"2","d":"3"},"arr":[1,2],"s":{"x":"y"}}}`), status: 200},
					{op: patch, path: "data/k", data: body(t, `{"data":{"b":{"c":null,"e":"5"},"arr":[3],"a":null,"new":{"n":null,"m":"1"},"s":"flat"},"options":{}}`), status: 200,
						check: func(t *testing.T, resp *logical.Response) {
							wantData("version", int64(2))(t, resp)
							wantData("deletion_time", "")(t, resp)
						}},
					{op: logical.ReadOperation, path: "data/k", status: 200, check: wantData("data", map[string]any{
						"b":   map[string]any{"d": "3", "e": "5"},
						"arr": []any{json.Number("3")},
						"new": map[string]any{"m": "1"},
						"s":   "flat",
					})},
					{op: logical.ReadOperation, path: "data/k", data: map[string]any{"version": "1"}, status: 200, check: wantData("data.a", "1")},
				}
			},
		},
		{
			name: "missing key",
			steps: func(t *testing.T) []step {
				return []step{{op: patch, path: "data/nope", data: body(t, `{"data":{"a":"1"}}`), status: 404}}
			},
		},
		{
			name: "no data",
			steps: func(t *testing.T) []step {
				return []step{
					{op: logical.UpdateOperation, path: "data/k", data: body(t, `{"data":{"a":"1"}}`), status: 200},
					{op: patch, path: "data/k", data: body(t, `{"options":{}}`), status: 400, msg: "no data provided"},
				}
			},
		},
		{
			name: "check-and-set",
			steps: func(t *testing.T) []step {
				return []step{
					{op: logical.UpdateOperation, path: "data/k", data: body(t, `{"data":{"a":"1"}}`), status: 200},
					{op: patch, path: "data/k", data: body(t, `{"data":{"a":"2"},"options":{"cas":0}}`), status: 400, msg: "check-and-set parameter did not match the current version"},
					{op: patch, path: "data/k", data: body(t, `{"data":{"a":"2"},"options":{"cas":"x"}}`), status: 400, msg: "error parsing check-and-set parameter"},
					{op: patch, path: "data/k", data: body(t, `{"data":{"a":"2"},"options":{"cas":1}}`), status: 200, check: wantData("version", int64(2))},
					{op: logical.UpdateOperation, path: "config", data: body(t, `{"cas_required":true}`), status: 204},
					{op: patch, path: "data/k", data: body(t, `{"data":{"a":"3"}}`), status: 400, msg: "check-and-set parameter required for this call"},
				}
			},
		},
		{
			name: "current version deleted",
			steps: func(t *testing.T) []step {
				return []step{
					{op: logical.UpdateOperation, path: "data/k", data: body(t, `{"data":{"a":"1"}}`), status: 200},
					{op: logical.DeleteOperation, path: "data/k", status: 204},
					{op: patch, path: "data/k", data: body(t, `{"data":{"a":"2"}}`), status: 404, check: func(t *testing.T, resp *logical.Response) {
						wantData("version", int64(1))(t, resp)
						wantData("deletion_time", "2024-05-01T10:00:00.123456789Z")(t, resp)
					}},
				}
			},
		},
		{
			name: "current version destroyed",
			steps: func(t *testing.T) []step {
				return []step{
					{op: logical.UpdateOperation, path: "data/k", data: body(t, `{"data":{"a":"1"}}`), status: 200},
					{op: logical.UpdateOperation, path: "destroy/k", data: body(t, `{"versions":["1"]}`), status: 204},
					{op: patch, path: "data/k", data: body(t, `{"data":{"a":"2"}}`), status: 404, check: wantData("destroyed", true)},
				}
			},
		},
		{
			name: "metadata only",
			steps: func(t *testing.T) []step {
				return []step{
					{op: logical.UpdateOperation, path: "metadata/k", data: body(t, `{"max_versions":1}`), status: 204},
					{op: patch, path: "data/k", data: body(t, `{"data":{"a":"2"}}`), status: 404},
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

func TestMergePatch(t *testing.T) {
	t.Parallel()
	// RFC 7386 appendix A, as Go values.
	cases := []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, c := range cases {
		got := mergePatch(body(t, c.target), body(t, c.patch))
		if want := body(t, c.want); !reflect.DeepEqual(got, want) {
			t.Errorf("mergePatch(%s, %s) = %s, want %s", c.target, c.patch, asJSON(t, got), c.want)
		}
	}
}

func TestDataDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	if st, _, _ := h.status(logical.DeleteOperation, "data/missing", nil); st != 204 {
		t.Fatalf("delete of a missing key: %d, want 204", st)
	}
	h.put("k", `{"a":"1"}`)
	h.clk.Advance(time.Minute)
	if st, _, _ := h.status(logical.DeleteOperation, "data/k", nil); st != 204 {
		t.Fatalf("delete: %d, want 204", st)
	}
	st, _, resp := h.status(logical.ReadOperation, "data/k", nil)
	if st != 404 || resp == nil || resp.Data["data"] != nil {
		t.Fatalf("read after delete: %d %#v", st, resp)
	}
	deleted := "2024-05-01T10:01:00.123456789Z"
	wantData("metadata.deletion_time", deleted)(t, resp)
	// A second delete is a no-op: the deletion time stays.
	h.clk.Advance(time.Minute)
	h.ok(logical.DeleteOperation, "data/k", nil)
	if got := h.versionState("k", "1")["deletion_time"]; got != deleted {
		t.Errorf("deletion_time after a second delete = %v, want %v", got, deleted)
	}
	// A new version is live again.
	h.put("k", `{"a":"2"}`)
	wantData("data.a", "2")(t, h.ok(logical.ReadOperation, "data/k", nil))
}

func TestPruning(t *testing.T) {
	t.Parallel()
	t.Run("default ten", func(t *testing.T) {
		t.Parallel()
		s := logicaltest.New()
		h := newHarnessOn(t, "2", s)
		for i := 1; i <= 10; i++ {
			h.put("k", `{"i":"x"}`)
		}
		md := h.metadata("k")
		if md["oldest_version"] != int64(1) || len(md["versions"].(map[string]any)) != 10 {
			t.Fatalf("after 10 writes: oldest=%v versions=%d", md["oldest_version"], len(md["versions"].(map[string]any)))
		}
		h.put("k", `{"i":"x"}`)
		h.put("k", `{"i":"x"}`)
		md = h.metadata("k")
		if md["oldest_version"] != int64(3) || md["current_version"] != int64(12) || len(md["versions"].(map[string]any)) != 10 {
			t.Fatalf("after 12 writes: %s", asJSON(t, md))
		}
		if _, ok := md["versions"].(map[string]any)["2"]; ok {
			t.Error("version 2 still in metadata")
		}
		if st, _, _ := h.status(logical.ReadOperation, "data/k", map[string]any{"version": "2"}); st != 404 {
			t.Errorf("read of pruned version: %d, want 404", st)
		}
		if st, _, _ := h.status(logical.ReadOperation, "data/k", map[string]any{"version": "3"}); st != 200 {
			t.Errorf("read of oldest version: %d, want 200", st)
		}
		for _, n := range []string{"1", "2"} {
			if _, err := s.Get(t.Context(), versionsPrefix+"k/"+n); !errors.Is(err, logical.ErrNotFound) {
				t.Errorf("data of pruned version %s still stored (err %v)", n, err)
			}
		}
	})
	t.Run("key setting", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, "2")
		h.ok(logical.UpdateOperation, "config", body(t, `{"max_versions":5}`))
		h.ok(logical.UpdateOperation, "metadata/k", body(t, `{"max_versions":2}`))
		for i := 0; i < 3; i++ {
			h.put("k", `{"a":"b"}`)
		}
		md := h.metadata("k")
		if md["oldest_version"] != int64(2) || len(md["versions"].(map[string]any)) != 2 {
			t.Fatalf("key max 2: %s", asJSON(t, md))
		}
		// Another key uses the mount's 5.
		for i := 0; i < 6; i++ {
			h.put("other", `{"a":"b"}`)
		}
		if n := len(h.metadata("other")["versions"].(map[string]any)); n != 5 {
			t.Errorf("mount max 5: %d versions kept", n)
		}
	})
	t.Run("lowered maximum drops several", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, "2")
		for i := 0; i < 6; i++ {
			h.put("k", `{"a":"b"}`)
		}
		h.ok(logical.UpdateOperation, "metadata/k", body(t, `{"max_versions":2}`))
		h.put("k", `{"a":"b"}`)
		md := h.metadata("k")
		if md["oldest_version"] != int64(6) || len(md["versions"].(map[string]any)) != 2 {
			t.Fatalf("after lowering to 2: %s", asJSON(t, md))
		}
	})
}

func TestDeleteVersionAfter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		mount, key   string // JSON values for delete_version_after; "" = unset
		wantDeletion time.Duration
	}{
		{name: "mount only", mount: `"1h"`, wantDeletion: time.Hour},
		{name: "key only", key: `"30m"`, wantDeletion: 30 * time.Minute},
		{name: "key below mount", mount: `"1h"`, key: `1800`, wantDeletion: 30 * time.Minute},
		{name: "key capped by mount", mount: `"1h"`, key: `"2h"`, wantDeletion: time.Hour},
		{name: "mount disables", mount: `"-1s"`, key: `"30m"`},
		{name: "neither"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "2")
			if c.mount != "" {
				h.ok(logical.UpdateOperation, "config", body(t, `{"delete_version_after":`+c.mount+`}`))
			}
			if c.key != "" {
				h.ok(logical.UpdateOperation, "metadata/k", body(t, `{"delete_version_after":`+c.key+`}`))
			}
			h.clk.Advance(time.Second)
			created := h.clk.Now()
			resp := h.ok(logical.UpdateOperation, "data/k", body(t, `{"data":{"a":"b"}}`))
			want := ""
			if c.wantDeletion > 0 {
				want = created.Add(c.wantDeletion).UTC().Format(time.RFC3339Nano)
			}
			if got := resp.Data["deletion_time"]; got != want {
				t.Fatalf("deletion_time = %v, want %q", got, want)
			}
			// Live until the deletion time, deleted from then on.
			if st, _, _ := h.status(logical.ReadOperation, "data/k", nil); st != 200 {
				t.Fatalf("read before deletion time: %d", st)
			}
			if c.wantDeletion == 0 {
				return
			}
			h.clk.Advance(c.wantDeletion - time.Nanosecond)
			if st, _, _ := h.status(logical.ReadOperation, "data/k", nil); st != 200 {
				t.Fatalf("read just before deletion time: %d", st)
			}
			h.clk.Advance(time.Nanosecond)
			st, _, r := h.status(logical.ReadOperation, "data/k", nil)
			if st != 404 || r == nil || r.Data["data"] != nil {
				t.Fatalf("read at deletion time: %d %#v", st, r)
			}
			wantData("metadata.deletion_time", want)(t, r)
		})
	}
}

func TestRootAndInvalidPaths(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	h.put("k", `{"a":"b"}`)
	root := []string{rootWarning}
	invalid := func(cmd string) []string {
		return []string{"Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv " + cmd + "' for this operation."}
	}
	cases := []struct {
		op       logical.Operation
		path     string
		warnings []string
	}{
		{logical.ReadOperation, "data", root},
		{logical.ReadOperation, "data/", root},
		{logical.UpdateOperation, "data", root},
		{logical.UpdateOperation, "data/", root},
		{logical.PatchOperation, "data/", root},
		{logical.DeleteOperation, "data", root},
		{logical.ReadOperation, "metadata", root},
		{logical.ReadOperation, "metadata/", root},
		{logical.UpdateOperation, "metadata/", root},
		{logical.PatchOperation, "metadata/", root},
		{logical.DeleteOperation, "metadata/", root},
		{logical.UpdateOperation, "delete", root},
		{logical.UpdateOperation, "undelete/", root},
		{logical.UpdateOperation, "destroy", root},
		{logical.ReadOperation, "subkeys/", root},
		{logical.ListOperation, "data/", invalid("list")},
		{logical.ReadOperation, "k", invalid("get")},
		{logical.UpdateOperation, "k", invalid("put")},
		{logical.PatchOperation, "k", invalid("patch")},
		{logical.DeleteOperation, "k", invalid("delete")},
		{logical.ListOperation, "k/", invalid("list")},
		{logical.ListOperation, "", invalid("list")},
		{logical.ReadOperation, "data/k/", invalid("get")},
		{logical.ReadOperation, "config/x", invalid("get")},
	}
	for _, c := range cases {
		st, msg, resp := h.status(c.op, c.path, map[string]any{"x": "ignored"})
		if st != 404 || msg != "" || resp == nil {
			t.Errorf("%s %q: %d %q, want a 404 response", c.op, c.path, st, msg)
			continue
		}
		// The root paths also warn about the ignored parameter; the
		// catch-all takes anything.
		got := resp.Warnings
		if len(got) > 1 {
			got = got[:1]
		}
		if !reflect.DeepEqual(got, c.warnings) || resp.Data != nil {
			t.Errorf("%s %q: warnings %q data %v, want %q", c.op, c.path, resp.Warnings, resp.Data, c.warnings)
		}
	}
	// Operations a real path does not serve are 405, not the catch-all.
	if st, _, _ := h.status(logical.ListOperation, "config/", nil); st != 404 {
		t.Errorf("LIST config/: %d", st)
	}
	if st, _, _ := h.status(logical.DeleteOperation, "config", nil); st != 405 {
		t.Errorf("DELETE config: %d, want 405", st)
	}
	if st, _, _ := h.status(logical.ReadOperation, "destroy/k", nil); st != 405 {
		t.Errorf("GET destroy/k: %d, want 405", st)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"1", "2"} {
		h := newHarness(t, v)
		resp := h.ok(logical.HelpOperation, "data/k", nil)
		if s, _ := resp.Data["help"].(string); s == "" {
			t.Errorf("v%s: help = %#v", v, resp.Data)
		}
	}
}

func TestFactory(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{"": "*kv.passthrough", "1": "*kv.passthrough", "2": "*kv.versioned"} {
		b, err := Factory(t.Context(), &logical.BackendConfig{Options: map[string]string{"version": v}})
		if err != nil {
			t.Fatalf("version %q: %v", v, err)
		}
		if got := reflect.TypeOf(b).String(); got != want {
			t.Errorf("version %q: %s, want %s", v, got, want)
		}
	}
	for _, v := range []string{"3", "v2", " 2"} {
		if _, err := Factory(t.Context(), &logical.BackendConfig{Options: map[string]string{"version": v}}); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
	if _, err := Factory(t.Context(), nil); err == nil {
		t.Error("nil config accepted")
	}
}
