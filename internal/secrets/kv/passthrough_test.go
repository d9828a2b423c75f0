package kv

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestPassthrough(t *testing.T) {
	t.Parallel()
	const (
		read   = logical.ReadOperation
		update = logical.UpdateOperation
		del    = logical.DeleteOperation
		list   = logical.ListOperation
	)
	wantTTL := func(ttl time.Duration) func(*testing.T, *logical.Response) {
		return func(t *testing.T, resp *logical.Response) {
			t.Helper()
			if resp.Secret == nil || !resp.Secret.NoLease || resp.Secret.TTL != ttl || resp.Secret.Renewable {
				t.Errorf("secret = %+v, want TTL %v without a lease", resp.Secret, ttl)
			}
		}
	}
	cases := []struct {
		name  string
		steps func(t *testing.T) []step
	}{
		{
			name: "write read verbatim",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "app/db", data: body(t, `{"user":"u","n":12345678901234567890,"nested":{"a":[1,"x",null]},"path":"not the path"}`), status: 204},
					{op: read, path: "app/db", status: 200, check: func(t *testing.T, resp *logical.Response) {
						want := body(t, `{"user":"u","n":12345678901234567890,"nested":{"a":[1,"x",null]},"path":"not the path"}`)
						if !reflect.DeepEqual(resp.Data, want) {
							t.Errorf("data = %#v, want %#v", resp.Data, want)
						}
						wantTTL(768*time.Hour)(t, resp)
					}},
					// A write replaces the whole object.
					{op: update, path: "app/db", data: body(t, `{"only":"this"}`), status: 204},
					{op: read, path: "app/db", status: 200, check: wantData("user", nil)},
				}
			},
		},
		{
			name: "ttl keys",
			steps: func(t *testing.T) []step {
				return []step{
					{op: update, path: "a", data: body(t, `{"v":"x","ttl":"1h"}`), status: 204},
					{op: read, path: "a", status: 200, check: wantTTL(time.Hour)},
					{op: update, path: "b", data: body(t, `{"v":"x","ttl":90}`), status: 204},
					{op: read, path: "b", status: 200, check: wantTTL(90 * time.Second)},
					{op: update, path: "c", data: body(t, `{"v":"x","lease":"120"}`), status: 204},
					{op: read, path: "c", status: 200, check: wantTTL(2 * time.Minute)},
					{op: update, path: "d", data: body(t, `{"v":"x","ttl":"soon"}`), status: 204},
					{op: read, path: "d", status: 200, check: wantTTL(768 * time.Hour)},
					{op: update, path: "e", data: body(t, `{"v":"x","ttl":"0s"}`), status: 204},
					{op: read, path: "e", status: 200, check: wantTTL(768 * time.Hour)},
					{op: update, path: "f", data: body(t, `{"v":"x","ttl":"1d"}`), status: 204},
					{op: read, path: "f", status: 200, check: wantTTL(768 * time.Hour)},
				}
			},
		},
		{
			name: "errors",
			steps: func(t *testing.T) []step {
				return []step{
					{op: read, path: "missing", status: 404},
					{op: update, path: "k", data: body(t, `{}`), status: 400, msg: "missing data fields"},
					{op: update, path: "k", data: nil, status: 400, msg: "missing data fields"},
					{op: update, path: "k/", data: body(t, `{"a":"b"}`), status: 400,
						msg: `invalid secret path "k/": it must be non-empty and have no empty segments`},
					{op: update, path: "", data: body(t, `{"a":"b"}`), status: 400,
						msg: `invalid secret path "": it must be non-empty and have no empty segments`},
					{op: update, path: ".kv2/x", data: body(t, `{"a":"b"}`), status: 400,
						msg: `cannot write ".kv2/x": the prefix ".kv2/" is reserved for versioned data`},
					{op: read, path: ".kv2/x", status: 404},
					{op: read, path: "", status: 404},
					{op: logical.PatchOperation, path: "k", data: body(t, `{"a":"b"}`), status: 405, msg: "unsupported operation"},
				}
			},
		},
		{
			name: "delete and list",
			steps: func(t *testing.T) []step {
				return []step{
					{op: list, path: "", status: 404},
					{op: update, path: "a", data: body(t, `{"v":"1"}`), status: 204},
					{op: update, path: "dir/b", data: body(t, `{"v":"1"}`), status: 204},
					{op: update, path: "dir/sub/c", data: body(t, `{"v":"1"}`), status: 204},
					{op: list, path: "", status: 200, check: wantData("keys", []string{"a", "dir/"})},
					{op: list, path: "dir/", status: 200, check: wantData("keys", []string{"b", "sub/"})},
					{op: list, path: "nope/", status: 404},
					{op: list, path: ".kv2/", status: 404},
					{op: del, path: "dir/b", status: 204},
					{op: del, path: "dir/b", status: 204},
					{op: read, path: "dir/b", status: 404},
					{op: list, path: "dir/", status: 200, check: wantData("keys", []string{"sub/"})},
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runSteps(t, newHarness(t, "1"), c.steps(t))
		})
	}
}

func TestPassthroughStorageLayout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "1")
	h.ok(logical.UpdateOperation, "app/db", body(t, `{"b":"2","a":1}`))
	raw, err := h.s.Get(t.Context(), "app/db")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil || got["b"] != "2" {
		t.Errorf("stored %s (%v)", raw, err)
	}
}

func TestPassthroughExistenceCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "1")
	check := func(path string) (bool, bool) {
		t.Helper()
		c, e, err := h.b.ExistenceCheck(t.Context(), &logical.Request{Operation: logical.UpdateOperation, Path: path, Storage: h.s})
		if err != nil {
			t.Fatal(err)
		}
		return c, e
	}
	if c, e := check("k"); !c || e {
		t.Errorf("before write: %v %v", c, e)
	}
	h.ok(logical.UpdateOperation, "k", body(t, `{"a":"b"}`))
	if c, e := check("k"); !c || !e {
		t.Errorf("after write: %v %v", c, e)
	}
}

func TestPassthroughNoSystemView(t *testing.T) {
	t.Parallel()
	b, err := Factory(t.Context(), &logical.BackendConfig{Options: map[string]string{"version": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, b: b, s: newHarness(t, "1").s}
	h.ok(logical.UpdateOperation, "k", body(t, `{"a":"b"}`))
	if resp := h.ok(logical.ReadOperation, "k", nil); resp.Secret == nil || resp.Secret.TTL != 0 {
		t.Errorf("secret = %+v, want TTL 0 (the pipeline applies the default)", resp.Secret)
	}
}
