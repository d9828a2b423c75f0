package core

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/audit"
	auditfile "github.com/vigil-secrets/vigil/internal/audit/file"
	"github.com/vigil-secrets/vigil/internal/events"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/policy"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/secrets/kv"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

func TestEventAllowed(t *testing.T) {
	t.Parallel()
	acl := func(text string) *policy.ACL {
		p, err := policy.Parse("p", text)
		if err != nil {
			t.Fatal(err)
		}
		a, err := policy.Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ev := func(typ, dataPath string) *events.Event {
		md := map[string]string{}
		if dataPath != "" {
			md[events.MetaDataPath] = dataPath
		}
		return &events.Event{Type: typ, Metadata: md}
	}
	reader := acl(`path "secret/data/a/*" { capabilities = ["read"] }
path "secret/data/a/locked" { capabilities = ["deny"] }`)
	subscriber := acl(`path "secret/data/*" { capabilities = ["subscribe"] subscribe_event_types = ["kv-v2/data-*"] }
path "database/static-creds/*" { capabilities = ["subscribe"] }`)
	lister := acl(`path "secret/metadata/*" { capabilities = ["list"] }`)
	for _, tc := range []struct {
		name string
		acl  *policy.ACL
		ev   *events.Event
		want bool
	}{
		{"read on the data path", reader, ev("kv-v2/data-write", "secret/data/a/db"), true},
		{"read elsewhere", reader, ev("kv-v2/data-write", "secret/data/b/db"), false},
		{"deny rule", reader, ev("kv-v2/data-write", "secret/data/a/locked"), false},
		{"no data path", reader, ev("kv-v2/data-write", ""), false},
		{"subscribe with a matching type", subscriber, ev("kv-v2/data-delete", "secret/data/x"), true},
		{"subscribe with another type", subscriber, ev("kv-v2/metadata-delete", "secret/data/x"), false},
		{"subscribe without types", subscriber, ev("database/rotate", "database/static-creds/web"), false},
		{"list is not enough", lister, ev("kv-v2/metadata-write", "secret/metadata/x"), false},
		{"root", policy.Root(), ev("kv-v2/data-write", ""), true},
	} {
		if got := eventAllowed(tc.acl, tc.ev); got != tc.want {
			t.Errorf("%s: allowed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// eventsFixture is an unsealed core with KV v2 at secret/, a file audit
// device, and cfg applied to its configuration.
func eventsFixture(t *testing.T, cfg func(*Config)) (*fixture, string) {
	t.Helper()
	conf := Config{Storage: inmem.New(), StorageType: "inmem", Factories: map[string]logical.Factory{"kv": kv.Factory},
		AuditFactories: map[string]audit.Factory{"file": auditfile.New}}
	if cfg != nil {
		cfg(&conf)
	}
	f := initCoreWith(t, conf)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	f.must(t, logical.UpdateOperation, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": logPath}})
	f.must(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}})
	return f, logPath
}

func (f *fixture) must(t *testing.T, op logical.Operation, path string, data map[string]any) *logical.Response {
	t.Helper()
	resp, err := f.do(t, op, path, data)
	if err != nil {
		t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

// eventsToken writes policy name and returns a new token with it.
func (f *fixture) eventsToken(t *testing.T, name, text string, extra map[string]any) secret.String {
	t.Helper()
	f.must(t, logical.UpdateOperation, "sys/policies/acl/"+name, map[string]any{"policy": text})
	data := map[string]any{"policies": []any{name}}
	for k, v := range extra {
		data[k] = v
	}
	return secret.NewString(f.must(t, logical.UpdateOperation, "auth/token/create", data).Auth.ClientToken)
}

func (f *fixture) subscribe(t *testing.T, tok secret.String, eventType string) (*EventStream, error) {
	t.Helper()
	return f.c.SubscribeEvents(context.Background(), EventsRequest{ID: secret.UUID(), EventType: eventType,
		Data: map[string]any{"json": "true"}, Token: tok})
}

// nextEvent reads the next event of s, decoded, within a generous bound.
func nextEvent(t *testing.T, s *EventStream) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := s.Next(ctx)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(msg, &out); err != nil {
		t.Fatalf("message %q: %v", msg, err)
	}
	return out, nil
}

func metadataOf(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	return m["data"].(map[string]any)["event"].(map[string]any)["metadata"].(map[string]any)
}

const eventsReader = `
path "sys/events/subscribe/*" { capabilities = ["read"] }
path "secret/data/a/*" { capabilities = ["read"] }`

// TestSubscribeEvents: the subscriber sees the events its policies allow,
// in order; the subscription is audited (request and response) and the
// events are not; a token without read on the subscribe path is refused.
func TestSubscribeEvents(t *testing.T) {
	f, logPath := eventsFixture(t, nil)
	reader := f.eventsToken(t, "a-reader", eventsReader, nil)
	nobody := f.eventsToken(t, "no-events", `path "secret/data/*" { capabilities = ["read"] }`, nil)

	if _, err := f.subscribe(t, nobody, "kv-v2/data-write"); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("subscribe without read on the path: %v", err)
	}
	if _, err := f.c.SubscribeEvents(context.Background(), EventsRequest{ID: "x", EventType: "*", Filter: "a or b", Token: reader}); !errors.Is(err, logical.ErrInvalidRequest) {
		t.Fatalf("bad filter: %v", err)
	}
	rs, err := f.subscribe(t, reader, "kv-v2/*")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	root, err := f.subscribe(t, f.token, "kv-v2/data-write")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	const value = "the-secret-value"
	f.must(t, logical.UpdateOperation, "secret/data/b/db", map[string]any{"data": map[string]any{"pw": value}})
	f.must(t, logical.UpdateOperation, "secret/data/a/db", map[string]any{"data": map[string]any{"pw": value}})
	f.must(t, logical.DeleteOperation, "secret/data/a/db", nil)

	got, err := nextEvent(t, rs)
	if err != nil {
		t.Fatal(err)
	}
	if md := metadataOf(t, got); md["path"] != "secret/data/a/db" || md["current_version"] != "1" {
		t.Fatalf("reader's first event: %v", got)
	}
	got, err = nextEvent(t, rs)
	if err != nil {
		t.Fatal(err)
	}
	if d := got["data"].(map[string]any); d["event_type"] != "kv-v2/data-delete" || metadataOf(t, got)["data_path"] != "secret/data/a/db" {
		t.Fatalf("reader's second event: %v", got)
	}
	for _, want := range []string{"secret/data/b/db", "secret/data/a/db"} {
		got, err := nextEvent(t, root)
		if err != nil {
			t.Fatal(err)
		}
		if md := metadataOf(t, got); md["path"] != want {
			t.Fatalf("root got %v, want %s", md, want)
		}
	}

	raw := strings.Join(func() []string {
		var out []string
		for _, e := range readEntries(t, logPath) {
			if strings.HasPrefix(e.Request.Path, "sys/events/subscribe/") {
				out = append(out, e.Type+" "+e.Request.Path+" "+e.Error)
			}
		}
		return out
	}(), "\n")
	want := "request sys/events/subscribe/kv-v2/data-write permission denied\n" +
		"request sys/events/subscribe/* \n" + // the bad filter: recorded, then refused
		"response sys/events/subscribe/* invalid request: invalid event filter: unsupported selector \"a\" (Vigil supports event_type, operation, source_plugin_mount, data_path, namespace)\n" +
		"request sys/events/subscribe/kv-v2/* \nresponse sys/events/subscribe/kv-v2/* \n" +
		"request sys/events/subscribe/kv-v2/data-write \nresponse sys/events/subscribe/kv-v2/data-write "
	if raw != want {
		t.Fatalf("audit entries of the subscriptions:\n%s\nwant\n%s", raw, want)
	}
	for _, e := range readEntries(t, logPath) {
		if e.Request.Path == "" {
			t.Fatalf("an entry without a request path: %+v", e)
		}
	}
}

// TestEventStreamEnds: a stream ends when its token is revoked (at the
// next check) and when the server seals.
func TestEventStreamEnds(t *testing.T) {
	f, _ := eventsFixture(t, func(c *Config) { c.EventRecheckInterval = 50 * time.Millisecond })
	revoked := f.eventsToken(t, "events", eventsReader, nil)
	rs, err := f.subscribe(t, revoked, "*")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	root, err := f.subscribe(t, f.token, "*")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	f.must(t, logical.UpdateOperation, "auth/token/revoke", map[string]any{"token": revoked.Reveal()})
	if _, err := nextEvent(t, rs); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("revoked token's stream: %v", err)
	}
	if err := f.c.SealInternal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := nextEvent(t, root); !errors.Is(err, ErrEventsEnded) {
		t.Fatalf("root's stream after the seal: %v", err)
	}
	if _, err := f.subscribe(t, f.token, "*"); !errors.Is(err, ErrSealed) {
		t.Fatalf("subscribe while sealed: %v", err)
	}
}

// TestEventStreamEndsAtExpiry: with a recheck interval far away, a
// stream still ends when its token expires.
func TestEventStreamEndsAtExpiry(t *testing.T) {
	f, _ := eventsFixture(t, func(c *Config) { c.EventRecheckInterval = time.Hour })
	expiring := f.eventsToken(t, "events", eventsReader, map[string]any{"ttl": "1s"})
	es, err := f.subscribe(t, expiring, "*")
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	if _, err := nextEvent(t, es); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("expired token's stream: %v", err)
	}
}

// TestSlowSubscriberDoesNotBlockWrites: a subscriber that reads nothing
// never holds up a write; its stream ends with ErrEventsLost, and another
// subscriber gets every event.
func TestSlowSubscriberDoesNotBlockWrites(t *testing.T) {
	f, _ := eventsFixture(t, func(c *Config) { c.EventBuffer = 8 })
	slow, err := f.subscribe(t, f.token, "kv-v2/data-write")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := f.subscribe(t, f.token, "kv-v2/data-write")
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	for i := range 50 {
		f.must(t, logical.UpdateOperation, "secret/data/k", map[string]any{"data": map[string]any{"i": i}})
		got, err := nextEvent(t, fast)
		if err != nil {
			t.Fatalf("fast subscriber at write %d: %v", i, err)
		}
		if v := metadataOf(t, got)["current_version"]; v != strconv.Itoa(i+1) {
			t.Fatalf("write %d: current_version %v", i, v)
		}
	}
	if _, err := nextEvent(t, slow); !errors.Is(err, ErrEventsLost) {
		t.Fatalf("slow subscriber: %v", err)
	}
}
