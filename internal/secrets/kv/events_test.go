package kv

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// events returns the events of a request that must succeed.
func (h *harness) events(op logical.Operation, path string, data map[string]any) []logical.Event {
	h.t.Helper()
	return h.ok(op, path, data).Events
}

// wantEvent checks that evs is the one event want.
func wantEvent(t *testing.T, what string, evs []logical.Event, want logical.Event) {
	t.Helper()
	if len(evs) != 1 || !reflect.DeepEqual(evs[0], want) {
		t.Fatalf("%s: events %+v\nwant %+v", what, evs, want)
	}
}

func noEvents(t *testing.T, what string, evs []logical.Event) {
	t.Helper()
	if len(evs) != 0 {
		t.Fatalf("%s: events %+v, want none", what, evs)
	}
}

func versions(cur, oldest string, extra ...string) map[string]string {
	m := map[string]string{"current_version": cur, "oldest_version": oldest}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// TestEventsV2: each change of a KV v2 key reports one event of Vault's
// type with the version numbers and never the data; a request that
// changes nothing reports none; reads report none.
func TestEventsV2(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	const secretValue = "s3cr3t-value"

	evs := h.events(logical.UpdateOperation, "data/app/db", body(t, `{"data":{"password":"`+secretValue+`"}}`))
	wantEvent(t, "write", evs, logical.Event{Type: "kv-v2/data-write", Operation: "data-write", Path: "data/app/db", DataPath: "data/app/db", Metadata: versions("1", "0")})
	evs = h.events(logical.PatchOperation, "data/app/db", body(t, `{"data":{"user":"u"}}`))
	wantEvent(t, "patch", evs, logical.Event{Type: "kv-v2/data-patch", Operation: "data-patch", Path: "data/app/db", DataPath: "data/app/db", Metadata: versions("2", "0")})
	noEvents(t, "read", h.events(logical.ReadOperation, "data/app/db", nil))
	noEvents(t, "metadata read", h.events(logical.ReadOperation, "metadata/app/db", nil))

	evs = h.events(logical.DeleteOperation, "data/app/db", nil)
	wantEvent(t, "data delete", evs, logical.Event{Type: "kv-v2/data-delete", Operation: "data-delete", Path: "data/app/db", DataPath: "data/app/db", Metadata: versions("2", "0")})
	noEvents(t, "second data delete", h.events(logical.DeleteOperation, "data/app/db", nil))

	evs = h.events(logical.UpdateOperation, "undelete/app/db", body(t, `{"versions":[2]}`))
	wantEvent(t, "undelete", evs, logical.Event{Type: "kv-v2/undelete", Operation: "undelete", Path: "undelete/app/db", DataPath: "data/app/db", Metadata: versions("2", "0", "undeleted_versions", "[2]")})
	noEvents(t, "undelete of a live version", h.events(logical.UpdateOperation, "undelete/app/db", body(t, `{"versions":[2]}`)))

	evs = h.events(logical.UpdateOperation, "delete/app/db", body(t, `{"versions":[1,2]}`))
	wantEvent(t, "delete", evs, logical.Event{Type: "kv-v2/delete", Operation: "delete", Path: "delete/app/db", DataPath: "data/app/db", Metadata: versions("2", "0", "deleted_versions", "[1,2]")})

	evs = h.events(logical.UpdateOperation, "destroy/app/db", body(t, `{"versions":[1]}`))
	wantEvent(t, "destroy", evs, logical.Event{Type: "kv-v2/destroy", Operation: "destroy", Path: "destroy/app/db", DataPath: "data/app/db", Metadata: versions("2", "0", "destroyed_versions", "[1]")})
	noEvents(t, "destroy again", h.events(logical.UpdateOperation, "destroy/app/db", body(t, `{"versions":[1]}`)))

	evs = h.events(logical.UpdateOperation, "metadata/app/db", body(t, `{"max_versions":3}`))
	wantEvent(t, "metadata write", evs, logical.Event{Type: "kv-v2/metadata-write", Operation: "metadata-write", Path: "metadata/app/db", DataPath: "metadata/app/db"})
	evs = h.events(logical.PatchOperation, "metadata/app/db", body(t, `{"custom_metadata":{"owner":"ml"}}`))
	wantEvent(t, "metadata patch", evs, logical.Event{Type: "kv-v2/metadata-patch", Operation: "metadata-patch", Path: "metadata/app/db", DataPath: "metadata/app/db"})

	evs = h.events(logical.DeleteOperation, "metadata/app/db", nil)
	wantEvent(t, "metadata delete", evs, logical.Event{Type: "kv-v2/metadata-delete", Operation: "metadata-delete", Path: "metadata/app/db", DataPath: "data/app/db"})
	noEvents(t, "metadata delete of a missing key", h.events(logical.DeleteOperation, "metadata/app/db", nil))
	noEvents(t, "data delete of a missing key", h.events(logical.DeleteOperation, "data/app/db", nil))

	evs = h.events(logical.UpdateOperation, "config", body(t, `{"max_versions":5}`))
	wantEvent(t, "config", evs, logical.Event{Type: "kv-v2/config-write", Operation: "config-write", Path: "config", DataPath: "config"})

	// A failed write reports nothing (the pipeline publishes nothing for
	// an error either).
	if _, err := h.do(logical.UpdateOperation, "data/app/db", body(t, `{"data":{"k":"v"},"options":{"cas":7}}`)); err == nil {
		t.Fatal("a bad check-and-set succeeded")
	}
	// The 204 answers stay 204 with their events.
	if code, _, _ := h.status(logical.UpdateOperation, "delete/app/other", body(t, `{"versions":[1]}`)); code != 204 {
		t.Fatalf("delete of a missing key: %d", code)
	}
	h.put("x", `{"a":"b"}`)
	if code, _, resp := h.status(logical.DeleteOperation, "data/x", nil); code != 204 || len(resp.Events) != 1 {
		t.Fatalf("data delete: %d", code)
	}
	for _, ev := range h.events(logical.UpdateOperation, "data/x", body(t, `{"data":{"p":"`+secretValue+`"}}`)) {
		if strings.Contains(ev.Path+ev.DataPath+ev.Operation+ev.Type+strings.Join(mapValues(ev.Metadata), ""), secretValue) {
			t.Fatalf("an event carries the secret: %+v", ev)
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestEventsV1(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "1")
	evs := h.events(logical.UpdateOperation, "app/db", body(t, `{"password":"x"}`))
	wantEvent(t, "write", evs, logical.Event{Type: "kv-v1/write", Operation: "write", Path: "app/db", DataPath: "app/db"})
	noEvents(t, "read", h.events(logical.ReadOperation, "app/db", nil))
	evs = h.events(logical.DeleteOperation, "app/db", nil)
	wantEvent(t, "delete", evs, logical.Event{Type: "kv-v1/delete", Operation: "delete", Path: "app/db", DataPath: "app/db"})
	if code, _, _ := h.status(logical.DeleteOperation, "app/db", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
}
