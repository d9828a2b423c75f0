package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secrets/kv"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

// The tests below talk to the events endpoint as Vault's CLI does: a raw
// WebSocket client (coder/websocket, the maintained successor of the
// nhooyr.io/websocket library Vault's CLI uses), the token in
// X-Vault-Token, json=true.

// newEventsEnv is newEnv with the core's configuration changed by cfg,
// initialized and unsealed, with KV v2 at secret/.
func newEventsEnv(t *testing.T, cfg func(*core.Config)) *env {
	t.Helper()
	conf := core.Config{Storage: inmem.New(), StorageType: "inmem", Factories: map[string]logical.Factory{"kv": kv.Factory}}
	if cfg != nil {
		cfg(&conf)
	}
	c, err := core.New(conf)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{Core: c}))
	t.Cleanup(func() {
		srv.Close()
		c.SealInternal(context.Background())
	})
	e := &env{t: t, core: c, srv: srv}
	e.initAndUnseal()
	e.mustDo("POST", "/v1/sys/mounts/secret", `{"type":"kv","options":{"version":"2"}}`)
	return e
}

// mustDo sends a request that must succeed (2xx).
func (e *env) mustDo(method, path, body string) map[string]any {
	e.t.Helper()
	code, _, out := e.do(method, path, body)
	if code/100 != 2 {
		e.t.Fatalf("%s %s: %d %v", method, path, code, out)
	}
	return out
}

// tokenFor writes policy name and returns a token with it.
func (e *env) tokenFor(name, policy string) string {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"policy": policy})
	e.mustDo("PUT", "/v1/sys/policies/acl/"+name, string(body))
	out := e.mustDo("POST", "/v1/auth/token/create", `{"policies":["`+name+`"]}`)
	return out["auth"].(map[string]any)["client_token"].(string)
}

// subscribe opens a subscription with token; on a refusal it returns the
// HTTP response.
func subscribe(t *testing.T, base, token, eventType, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(base, "http") + "/v1/sys/events/subscribe/" + eventType + "?json=true" + query
	hdr := http.Header{}
	if token != "" {
		hdr.Set("X-Vault-Token", token)
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil {
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, resp, err
}

func mustSubscribe(t *testing.T, base, token, eventType string) *websocket.Conn {
	t.Helper()
	conn, resp, err := subscribe(t, base, token, eventType, "")
	if err != nil {
		t.Fatalf("subscribe to %s: %v (%v)", eventType, err, resp)
	}
	return conn
}

// read returns the next message within a generous bound.
func read(t *testing.T, conn *websocket.Conn) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, msg, err := conn.Read(ctx)
	if err == nil && typ != websocket.MessageText {
		t.Fatalf("message type %v", typ)
	}
	return msg, err
}

// wireEvent is the wire form, decoded strictly.
type wireEvent struct {
	ID          string `json:"id"`
	Source      string `json:"source"`
	SpecVersion string `json:"specversion"`
	Type        string `json:"type"`
	Data        struct {
		Event struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
		} `json:"event"`
		EventType  string `json:"event_type"`
		PluginInfo struct {
			MountClass    string `json:"mount_class"`
			MountAccessor string `json:"mount_accessor"`
			MountPath     string `json:"mount_path"`
			Plugin        string `json:"plugin"`
		} `json:"plugin_info"`
	} `json:"data"`
	DataContentType string `json:"datacontentype"`
	Time            string `json:"time"`
}

func decodeEvent(t *testing.T, msg []byte) wireEvent {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(msg)))
	dec.DisallowUnknownFields()
	var ev wireEvent
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("event %s: %v", msg, err)
	}
	return ev
}

func readEvent(t *testing.T, conn *websocket.Conn) wireEvent {
	t.Helper()
	msg, err := read(t, conn)
	if err != nil {
		t.Fatal(err)
	}
	return decodeEvent(t, msg)
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestEventsWireShape: a write's event arrives with Vault's fields and
// never the value.
func TestEventsWireShape(t *testing.T) {
	e := newEventsEnv(t, nil)
	conn := mustSubscribe(t, e.srv.URL, e.token, "kv-v2/data-write")
	const value = "hunter2-value"
	before := time.Now()
	e.mustDo("POST", "/v1/secret/data/app/db", `{"data":{"password":"`+value+`"}}`)
	msg, err := read(t, conn)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(msg), value) || strings.Contains(string(msg), e.token) {
		t.Fatalf("the event carries the value or the token: %s", msg)
	}
	if !strings.HasSuffix(string(msg), "}\n") || strings.Count(string(msg), "\n") != 1 {
		t.Fatalf("not one line: %q", msg)
	}
	ev := decodeEvent(t, msg)
	_, _, mounts := e.do("GET", "/v1/sys/mounts", "")
	accessor := mounts["data"].(map[string]any)["secret/"].(map[string]any)["accessor"].(string)
	if !uuidRE.MatchString(ev.ID) || ev.Data.Event.ID != ev.ID || ev.Source != "https://vaultproject.io/" || ev.SpecVersion != "1.0" ||
		ev.Type != "*" || ev.DataContentType != "application/cloudevents" || ev.Data.EventType != "kv-v2/data-write" {
		t.Fatalf("envelope: %+v", ev)
	}
	if p := ev.Data.PluginInfo; p.MountClass != "secret" || p.MountPath != "secret/" || p.Plugin != "kv" || p.MountAccessor != accessor {
		t.Fatalf("plugin_info: %+v (accessor %s)", p, accessor)
	}
	want := map[string]string{"path": "secret/data/app/db", "data_path": "secret/data/app/db", "operation": "data-write",
		"modified": "true", "current_version": "1", "oldest_version": "0"}
	if fmt.Sprint(ev.Data.Event.Metadata) != fmt.Sprint(want) {
		t.Fatalf("metadata %v, want %v", ev.Data.Event.Metadata, want)
	}
	at, err := time.Parse(time.RFC3339Nano, ev.Time)
	if err != nil || at.Before(before.Add(-time.Second)) {
		t.Fatalf("time %q: %v", ev.Time, err)
	}
	// Another type, through the '*' pattern.
	all := mustSubscribe(t, e.srv.URL, e.token, "*")
	e.mustDo("DELETE", "/v1/secret/metadata/app/db", "")
	if ev := readEvent(t, all); ev.Data.EventType != "kv-v2/metadata-delete" || ev.Data.Event.Metadata["data_path"] != "secret/data/app/db" {
		t.Fatalf("metadata delete: %+v", ev)
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

// TestEventsACL: a token with read on secret/data/a/* sees a's events and
// not b's; Vault's subscribe capability with subscribe_event_types works
// too; a token without read on the subscribe path is refused with 403
// before the upgrade; bad requests are refused with their statuses.
func TestEventsACL(t *testing.T) {
	e := newEventsEnv(t, nil)
	reader := e.tokenFor("a-reader", `
path "sys/events/subscribe/*" { capabilities = ["read"] }
path "secret/data/a/*"        { capabilities = ["read"] }`)
	subscriber := e.tokenFor("b-subscriber", `
path "sys/events/subscribe/kv-v2/*" { capabilities = ["read"] }
path "secret/data/b/*" {
  capabilities          = ["subscribe"]
  subscribe_event_types = ["kv-v2/data-write"]
}`)
	noEvents := e.tokenFor("no-events", `path "secret/data/*" { capabilities = ["read"] }`)

	rc := mustSubscribe(t, e.srv.URL, reader, "kv-v2/*")
	sc := mustSubscribe(t, e.srv.URL, subscriber, "kv-v2/*")
	e.mustDo("POST", "/v1/secret/data/b/x", `{"data":{"k":"v"}}`)
	e.mustDo("DELETE", "/v1/secret/data/b/x", "")
	e.mustDo("POST", "/v1/secret/data/a/x", `{"data":{"k":"v"}}`)
	e.mustDo("POST", "/v1/secret/data/b/y", `{"data":{"k":"v"}}`)

	if ev := readEvent(t, rc); ev.Data.Event.Metadata["path"] != "secret/data/a/x" {
		t.Fatalf("reader got %v first", ev.Data.Event.Metadata)
	}
	for _, want := range []string{"secret/data/b/x", "secret/data/b/y"} {
		if ev := readEvent(t, sc); ev.Data.Event.Metadata["path"] != want || ev.Data.EventType != "kv-v2/data-write" {
			t.Fatalf("subscriber got %s %v, want %s", ev.Data.EventType, ev.Data.Event.Metadata, want)
		}
	}

	// Refusals come before the upgrade, as JSON errors.
	for _, tc := range []struct {
		name, token, typ, query string
		want                    int
	}{
		{"no read on the subscribe path", noEvents, "kv-v2/data-write", "", 403},
		{"outside the subscribe path rule", subscriber, "database/rotate", "", 403},
		{"no token", "", "kv-v2/data-write", "", 403},
		{"bad filter", reader, "kv-v2/data-write", "&filter=" + strings.ReplaceAll("operation == a or operation == b", " ", "%20"), 400},
		{"namespaces", reader, "kv-v2/data-write", "&namespaces=ns1", 400},
	} {
		_, resp, err := subscribe(t, e.srv.URL, tc.token, tc.typ, tc.query)
		if err == nil || resp == nil || resp.StatusCode != tc.want {
			t.Errorf("%s: err %v, response %v, want %d", tc.name, err, resp, tc.want)
		}
	}
	for _, tc := range []struct {
		method, path string
		hdr          []string
		want         int
	}{
		{"GET", "/v1/sys/events/subscribe/kv-v2/data-write?json=true", nil, 426},
		{"GET", "/v1/sys/events/subscribe/kv-v2/data-write", []string{"Connection", "Upgrade", "Upgrade", "websocket"}, 400},
		{"GET", "/v1/sys/events/subscribe/kv-v2/data-write?json=false", []string{"Connection", "Upgrade", "Upgrade", "websocket"}, 400},
		{"GET", "/v1/sys/events/subscribe/?json=true", []string{"Connection", "Upgrade", "Upgrade", "websocket"}, 400},
		{"POST", "/v1/sys/events/subscribe/kv-v2/data-write?json=true", nil, 405},
	} {
		code, _, body := e.do(tc.method, tc.path, "", tc.hdr...)
		if code != tc.want || body["errors"] == nil {
			t.Errorf("%s %s: %d %v, want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
}

// TestEventsSlowSubscriber: a subscriber that does not read never holds
// up writes; when it reads at last it finds events in order and then,
// if it fell too far behind, a close with code 1013.
func TestEventsSlowSubscriber(t *testing.T) {
	e := newEventsEnv(t, func(c *core.Config) { c.EventBuffer = 2 })
	slow := mustSubscribe(t, e.srv.URL, e.token, "kv-v2/data-write")
	fast := mustSubscribe(t, e.srv.URL, e.token, "kv-v2/data-write")
	const writes = 300
	body := `{"data":{"blob":"` + strings.Repeat("x", 4096) + `"}}`
	for i := range writes {
		e.mustDo("POST", "/v1/secret/data/k", body)
		if ev := readEvent(t, fast); ev.Data.Event.Metadata["current_version"] != fmt.Sprint(i+1) {
			t.Fatalf("fast subscriber at write %d: %v", i+1, ev.Data.Event.Metadata)
		}
	}
	last := 0
	for {
		msg, err := read(t, slow)
		if err != nil {
			if last < writes && websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
				t.Fatalf("after %d events: %v", last, err)
			}
			break
		}
		v := decodeEvent(t, msg).Data.Event.Metadata["current_version"]
		if v != fmt.Sprint(last+1) {
			t.Fatalf("slow subscriber: version %s after %d", v, last)
		}
		if last++; last == writes {
			break
		}
	}
	t.Logf("the slow subscriber read %d of %d events", last, writes)
}

// TestEventsThroughAStandby: a standby forwards the WebSocket to the
// active server, whose events come through it; when the active steps
// down the stream ends with 1012 and a new subscription through the
// former active reaches the new one.
func TestEventsThroughAStandby(t *testing.T) {
	phys := inmem.New()
	a, b := newHAEnv(t, phys, "a"), newHAEnv(t, phys, "b")
	a.initAndUnseal()
	waitUntil(t, "a is active", func() bool { return !a.core.Standby() })
	b.keys, b.token = a.keys, a.token
	for _, k := range b.keys[:2] {
		if code, _, body := b.do("PUT", "/v1/sys/unseal", `{"key":"`+k+`"}`); code != 200 {
			t.Fatalf("unseal b: %d %v", code, body)
		}
	}
	if !b.core.Standby() {
		t.Fatal("b is not a standby")
	}
	a.mustDo("POST", "/v1/sys/mounts/secret", `{"type":"kv","options":{"version":"2"}}`)

	conn := mustSubscribe(t, b.srv.URL, b.token, "kv-v2/*")
	a.mustDo("POST", "/v1/secret/data/app", `{"data":{"k":"v"}}`)
	if ev := readEvent(t, conn); ev.Data.Event.Metadata["path"] != "secret/data/app" {
		t.Fatalf("through the standby: %+v", ev)
	}
	a.mustDo("PUT", "/v1/sys/step-down", "")
	_, err := read(t, conn)
	if websocket.CloseStatus(err) != websocket.StatusServiceRestart {
		t.Fatalf("after the step-down: %v", err)
	}
	waitUntil(t, "b is active", func() bool { return !b.core.Standby() })
	again := mustSubscribe(t, a.srv.URL, a.token, "kv-v2/*")
	b.mustDo("POST", "/v1/secret/data/app", `{"data":{"k":"w"}}`)
	if ev := readEvent(t, again); ev.Data.Event.Metadata["current_version"] != "2" {
		t.Fatalf("through the new standby: %+v", ev)
	}
}

// TestEventsTooManySubscribers: beyond MaxEventSubscribers a subscription
// is refused with a 503, and accepted again once one closes.
func TestEventsTooManySubscribers(t *testing.T) {
	e := newEventsEnv(t, func(c *core.Config) { c.MaxEventSubscribers = 1 })
	first := mustSubscribe(t, e.srv.URL, e.token, "*")
	if _, resp, err := subscribe(t, e.srv.URL, e.token, "*", ""); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("second subscription: %v %v", err, resp)
	}
	first.Close(websocket.StatusNormalClosure, "")
	waitUntil(t, "the first subscription is closed", func() bool { return e.core.EventSubscribers() == 0 })
	mustSubscribe(t, e.srv.URL, e.token, "*")
}

// TestEventsNoTimeLimit: MaxRequestDuration does not cut a subscription.
func TestEventsNoTimeLimit(t *testing.T) {
	c, err := core.New(core.Config{Storage: inmem.New(), StorageType: "inmem", Factories: map[string]logical.Factory{"kv": kv.Factory}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{Core: c, MaxRequestDuration: 50 * time.Millisecond}))
	t.Cleanup(func() {
		srv.Close()
		c.SealInternal(context.Background())
	})
	e := &env{t: t, core: c, srv: srv}
	e.initAndUnseal()
	e.mustDo("POST", "/v1/sys/mounts/secret", `{"type":"kv","options":{"version":"2"}}`)
	conn := mustSubscribe(t, srv.URL, e.token, "kv-v2/data-write")
	// Time passes well beyond the limit (the scenario, not a wait for a
	// condition), then a write: the stream is still there.
	time.Sleep(200 * time.Millisecond)
	e.mustDo("POST", "/v1/secret/data/app", `{"data":{"k":"v"}}`)
	if ev := readEvent(t, conn); ev.Data.EventType != "kv-v2/data-write" {
		t.Fatalf("event %+v", ev)
	}
}
