package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/testcluster"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// harness is a real server and a proxy in front of it, with the proxy's
// logs kept to check that no secret reached them.
type harness struct {
	srv   *testcluster.Server
	root  *api.Client // straight to the server, as root
	p     *Proxy
	url   string // the proxy's first listener
	logs  *testlog.Buffer
	auto  *autoToken
	mu    sync.Mutex
	never []string // values that must not appear in the logs
}

// autoToken stands in for auth.Manager's token: the test sets it.
type autoToken struct {
	mu  sync.Mutex
	tok secret.String
}

func (a *autoToken) get() secret.String {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tok
}

func (a *autoToken) set(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tok = secret.NewString(tok)
}

// newServer starts a real in-memory server with KV v2 at secret/.
func newServer(t *testing.T, opts testcluster.Options) (*testcluster.Server, *api.Client) {
	t.Helper()
	opts.InMemory, opts.MountKVv2 = true, true
	srv := testcluster.New(t, opts)
	root, err := api.NewClient(api.Config{Address: srv.URL, Token: srv.RootToken})
	if err != nil {
		t.Fatal(err)
	}
	return srv, root
}

// tcpListener is a plain-HTTP listener on a free loopback port.
func tcpListener() config.AgentListener {
	return config.AgentListener{Type: "tcp", Address: "127.0.0.1:0", TLSDisable: true}
}

// startProxy starts a proxy with o in front of srv (unless o.Address is
// set) and stops it at the end of the test. With o.Token nil and
// UseAutoAuthToken set, the harness's auto-auth token is used.
func startProxy(t *testing.T, srv *testcluster.Server, root *api.Client, o Options) *harness {
	t.Helper()
	h := &harness{srv: srv, root: root, logs: &testlog.Buffer{}, auto: &autoToken{}}
	h.forbid(srv.RootToken)
	// Checked last, once the proxy has stopped.
	t.Cleanup(func() { h.checkLogs(t) })
	if o.Address == "" {
		o.Address = srv.URL
	}
	if len(o.Listeners) == 0 {
		o.Listeners = []config.AgentListener{tcpListener()}
	}
	if o.Token == nil {
		o.Token = h.auto.get
	}
	o.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.p = p
	scheme := "http"
	if !o.Listeners[0].TLSDisable {
		scheme = "https"
	}
	h.url = scheme + "://" + p.Addrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return h
}

// forbid adds values that must never appear in the proxy's logs.
func (h *harness) forbid(values ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range values {
		if v != "" {
			h.never = append(h.never, v)
		}
	}
}

func (h *harness) checkLogs(t *testing.T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	logs := h.logs.String()
	if t.Failed() {
		t.Logf("the proxy's logs:\n%s", logs)
	}
	if logs == "" {
		t.Error("the proxy logged nothing: the log check would prove nothing")
	}
	for _, v := range h.never {
		if strings.Contains(logs, v) {
			t.Errorf("a secret value appears in the proxy's logs:\n%s", logs)
			return
		}
	}
}

// client returns an api client that talks to the proxy with token ("" for
// none).
func (h *harness) client(t *testing.T, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: h.url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reply is an answer read through the proxy.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return m
}

// do sends one raw request through the proxy.
func (h *harness) do(t *testing.T, method, path string, header http.Header, body string) reply {
	t.Helper()
	return doHTTP(t, http.DefaultClient, method, h.url+path, header, body)
}

func doHTTP(t *testing.T, hc *http.Client, method, url string, header http.Header, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// hdr builds a header from name, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// wantErrors checks an answer is status with Vault's error envelope, one
// of whose messages contains msg.
func wantErrors(t *testing.T, r reply, status int, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s)", r.status, status, r.body)
	}
	var env struct {
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || len(env.Errors) == 0 {
		t.Fatalf("body %q is not an error envelope", r.body)
	}
	if !strings.Contains(strings.Join(env.Errors, "\n"), msg) {
		t.Fatalf("errors %q, want one containing %q", env.Errors, msg)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
