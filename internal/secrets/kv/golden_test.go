package kv

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// rendered is the part of the HTTP envelope a KV response decides.
type rendered struct {
	Status        int            `json:"status"`
	LeaseDuration *int64         `json:"lease_duration,omitempty"`
	Data          map[string]any `json:"data"`
	Warnings      []string       `json:"warnings"`
}

func render(t *testing.T, resp *logical.Response, err error) []byte {
	t.Helper()
	status, msg, resp := httpStatus(resp, err)
	if status >= 400 && resp == nil {
		t.Fatalf("request failed: %d %s", status, msg)
	}
	r := rendered{Status: status, Data: resp.Data, Warnings: resp.Warnings}
	if resp.Secret != nil {
		secs := int64(resp.Secret.TTL / time.Second)
		r.LeaseDuration = &secs
	}
	return []byte(asJSON(t, r) + "\n")
}

// TestGolden pins the JSON of the key KV responses: field names, types and
// formats that clients parse.
func TestGolden(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		version string
		setup   func(h *harness)
		op      logical.Operation
		path    string
		data    string // JSON body or query; "" for none
	}{
		{name: "v2_write", version: "2", op: logical.UpdateOperation, path: "data/app/db",
			data: `{"data":{"password":"s3cr3t","port":5432},"options":{"cas":0}}`},
		{name: "v2_read", version: "2", setup: func(h *harness) {
			h.ok(logical.UpdateOperation, "metadata/app/db", body(h.t, `{"custom_metadata":{"owner":"jdoe"}}`))
			h.put("app/db", `{"password":"s3cr3t","port":5432,"nested":{"a":[1,"b",null]}}`)
		}, op: logical.ReadOperation, path: "data/app/db"},
		{name: "v2_read_deleted", version: "2", setup: func(h *harness) {
			h.put("app/db", `{"password":"s3cr3t"}`)
			h.clk.Advance(90 * time.Second)
			h.ok(logical.DeleteOperation, "data/app/db", nil)
		}, op: logical.ReadOperation, path: "data/app/db"},
		{name: "v2_read_destroyed", version: "2", setup: func(h *harness) {
			h.put("app/db", `{"password":"s3cr3t"}`)
			h.ok(logical.UpdateOperation, "destroy/app/db", body(h.t, `{"versions":["1"]}`))
		}, op: logical.ReadOperation, path: "data/app/db"},
		{name: "v2_patch", version: "2", setup: func(h *harness) {
			h.put("app/db", `{"password":"s3cr3t","port":5432}`)
			h.clk.Advance(time.Second)
		}, op: logical.PatchOperation, path: "data/app/db", data: `{"data":{"port":null,"user":"u"},"options":{"cas":1}}`},
		{name: "v2_metadata", version: "2", setup: func(h *harness) {
			h.ok(logical.UpdateOperation, "metadata/app/db", body(h.t, `{"custom_metadata":{"managed-by":"external-secrets"},"delete_version_after":"3h25m19s","max_versions":5}`))
			for i := 0; i < 3; i++ {
				h.clk.Advance(time.Minute)
				h.put("app/db", `{"a":"b"}`)
			}
			h.ok(logical.UpdateOperation, "delete/app/db", body(h.t, `{"versions":["2"]}`))
			h.ok(logical.UpdateOperation, "destroy/app/db", body(h.t, `{"versions":["3"]}`))
		}, op: logical.ReadOperation, path: "metadata/app/db"},
		{name: "v2_metadata_no_versions", version: "2", setup: func(h *harness) {
			h.ok(logical.UpdateOperation, "metadata/app/db", body(h.t, `{"cas_required":true}`))
		}, op: logical.ReadOperation, path: "metadata/app/db"},
		{name: "v2_list", version: "2", setup: func(h *harness) {
			h.put("app/db", `{"a":"b"}`)
			h.put("app/cache/redis", `{"a":"b"}`)
			h.put("top", `{"a":"b"}`)
		}, op: logical.ListOperation, path: "metadata/app/"},
		{name: "v2_subkeys", version: "2", setup: func(h *harness) {
			h.put("app/db", `{"password":"s3cr3t","conn":{"host":"h","opts":{"ssl":true}}}`)
		}, op: logical.ReadOperation, path: "subkeys/app/db"},
		{name: "v2_config", version: "2", setup: func(h *harness) {
			h.ok(logical.UpdateOperation, "config", body(h.t, `{"max_versions":20,"cas_required":true,"delete_version_after":"768h"}`))
		}, op: logical.ReadOperation, path: "config"},
		{name: "v2_invalid_path", version: "2", op: logical.ReadOperation, path: "app/db"},
		{name: "v2_root", version: "2", op: logical.UpdateOperation, path: "data", data: `{"data":{}}`},
		{name: "v1_read", version: "1", setup: func(h *harness) {
			h.ok(logical.UpdateOperation, "app/db", body(h.t, `{"password":"s3cr3t","ttl":"30m","port":5432}`))
		}, op: logical.ReadOperation, path: "app/db"},
		{name: "v1_list", version: "1", setup: func(h *harness) {
			h.ok(logical.UpdateOperation, "app/db", body(h.t, `{"a":"b"}`))
			h.ok(logical.UpdateOperation, "app/cache/redis", body(h.t, `{"a":"b"}`))
		}, op: logical.ListOperation, path: "app/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, c.version)
			if c.setup != nil {
				c.setup(h)
			}
			var data map[string]any
			if c.data != "" {
				data = body(t, c.data)
			}
			resp, err := h.do(c.op, c.path, data)
			got := render(t, resp, err)
			file := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file (run go test -update after checking):\n got: %s\nwant: %s", c.name, got, want)
			}
		})
	}
}
