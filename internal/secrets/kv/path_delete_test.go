package kv

import (
	"errors"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestDeleteUndeleteDestroy(t *testing.T) {
	t.Parallel()
	const update = logical.UpdateOperation
	for _, path := range []string{"delete/k", "undelete/k", "destroy/k"} {
		for _, data := range []string{`{}`, `{"versions":[]}`, `{"versions":""}`} {
			h := newHarness(t, "2")
			if st, msg, _ := h.status(update, path, body(t, data)); st != 400 || msg != "No version number provided" {
				t.Errorf("%s %s: %d %q", path, data, st, msg)
			}
		}
		h := newHarness(t, "2")
		if st, msg, _ := h.status(update, path, body(t, `{"versions":["x"]}`)); st != 400 || msg != `invalid value for "versions": expected a list of integers, got a list` {
			t.Errorf("%s with a bad version: %d %q", path, st, msg)
		}
		// A missing key, or versions that do not exist, are no-ops.
		if st, _, _ := h.status(update, path, body(t, `{"versions":["1"]}`)); st != 204 {
			t.Errorf("%s of a missing key: %d", path, st)
		}
		h.put("k", `{"a":"b"}`)
		if st, _, _ := h.status(update, path, body(t, `{"versions":[7,8]}`)); st != 204 {
			t.Errorf("%s of missing versions: %d", path, st)
		}
	}

	h := newHarness(t, "2")
	for i := 0; i < 4; i++ {
		h.put("k", `{"a":"b"}`)
	}
	h.clk.Advance(time.Minute)
	deleted := "2024-05-01T10:01:00.123456789Z"

	// delete: CLI form, strings.
	h.ok(update, "delete/k", body(t, `{"versions":["1","3"]}`))
	for n, want := range map[string]string{"1": deleted, "2": "", "3": deleted, "4": ""} {
		if got := h.versionState("k", n)["deletion_time"]; got != want {
			t.Errorf("after delete, version %s deletion_time = %v, want %q", n, got, want)
		}
	}
	if st, _, _ := h.status(logical.ReadOperation, "data/k", map[string]any{"version": "3"}); st != 404 {
		t.Errorf("read of deleted version 3: %d", st)
	}
	// Deleting again keeps the first deletion time.
	h.clk.Advance(time.Minute)
	h.ok(update, "delete/k", body(t, `{"versions":"1"}`))
	if got := h.versionState("k", "1")["deletion_time"]; got != deleted {
		t.Errorf("second delete moved deletion_time to %v", got)
	}

	// undelete: comma string form.
	h.ok(update, "undelete/k", body(t, `{"versions":"1,3"}`))
	for _, n := range []string{"1", "3"} {
		if got := h.versionState("k", n)["deletion_time"]; got != "" {
			t.Errorf("after undelete, version %s deletion_time = %v", n, got)
		}
	}
	wantData("data.a", "b")(t, h.ok(logical.ReadOperation, "data/k", map[string]any{"version": "3"}))

	// destroy: numbers.
	h.ok(update, "destroy/k", body(t, `{"versions":[2,4]}`))
	for n, want := range map[string]bool{"1": false, "2": true, "3": false, "4": true} {
		if got := h.versionState("k", n)["destroyed"]; got != want {
			t.Errorf("after destroy, version %s destroyed = %v, want %v", n, got, want)
		}
	}
	for _, n := range []int64{2, 4} {
		if _, err := h.s.Get(t.Context(), versionKey("k", n)); !errors.Is(err, logical.ErrNotFound) {
			t.Errorf("data of destroyed version %d still stored (%v)", n, err)
		}
	}
	st, _, resp := h.status(logical.ReadOperation, "data/k", nil)
	if st != 404 || resp == nil || resp.Data["data"] != nil {
		t.Fatalf("read of destroyed current version: %d %#v", st, resp)
	}
	wantData("metadata.destroyed", true)(t, resp)
	wantData("metadata.deletion_time", "")(t, resp)

	// A destroyed version cannot be undeleted or deleted.
	h.ok(update, "delete/k", body(t, `{"versions":[2]}`))
	h.ok(update, "undelete/k", body(t, `{"versions":[2]}`))
	if got := h.versionState("k", "2"); got["destroyed"] != true || got["deletion_time"] != "" {
		t.Errorf("destroyed version changed: %v", got)
	}
	// DELETE data/ on a destroyed current version is a no-op.
	h.ok(logical.DeleteOperation, "data/k", nil)
	if got := h.versionState("k", "4")["deletion_time"]; got != "" {
		t.Errorf("soft delete of a destroyed version set deletion_time %v", got)
	}
	// Destroying a soft-deleted version works.
	h.ok(update, "delete/k", body(t, `{"versions":[1]}`))
	h.ok(update, "destroy/k", body(t, `{"versions":[1]}`))
	if got := h.versionState("k", "1")["destroyed"]; got != true {
		t.Errorf("deleted version 1 not destroyed")
	}
}

func TestDestroyRetryRemovesData(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	h.put("k", `{"a":"b"}`)
	h.ok(logical.UpdateOperation, "destroy/k", body(t, `{"versions":[1]}`))
	// Simulate a removal that failed after the commit: the record is back.
	if err := h.s.Put(t.Context(), versionKey("k", 1), []byte(`{"data":{"a":"b"}}`)); err != nil {
		t.Fatal(err)
	}
	h.ok(logical.UpdateOperation, "destroy/k", body(t, `{"versions":[1]}`))
	if _, err := h.s.Get(t.Context(), versionKey("k", 1)); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("retried destroy left the data (%v)", err)
	}
}
