package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestForwardWithoutAutoAuth forwards requests as they are: a request
// with a token works, one without is refused by the server.
func TestForwardWithoutAutoAuth(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	h := startProxy(t, srv, root, Options{})
	h.auto.set(srv.RootToken) // present, but api_proxy does not use it

	ctx := t.Context()
	if _, err := h.client(t, srv.RootToken).Logical().Write(ctx, "secret/data/app", map[string]any{"data": map[string]any{"password": "kv-value-1"}}); err != nil {
		t.Fatalf("write through the proxy: %v", err)
	}
	h.forbid("kv-value-1")
	s, err := root.Logical().Read(ctx, "secret/data/app")
	if err != nil || s.Data["data"].(map[string]any)["password"] != "kv-value-1" {
		t.Fatalf("the write did not reach the server: %v %v", s, err)
	}
	if _, err := h.client(t, "").Logical().Read(ctx, "secret/data/app"); api.StatusCode(err) != http.StatusForbidden {
		t.Fatalf("read without a token: %v, want 403", err)
	}
	// LIST, query strings and the answer's status pass through.
	r := h.do(t, "LIST", "/v1/secret/metadata/", hdr("X-Vault-Token", srv.RootToken), "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"app"`) {
		t.Fatalf("LIST: %d %s", r.status, r.body)
	}
	r = h.do(t, http.MethodGet, "/v1/secret/data/app?version=7", hdr("X-Vault-Token", srv.RootToken), "")
	if r.status != http.StatusNotFound {
		t.Fatalf("read of a missing version: %d %s", r.status, r.body)
	}
	if r.header.Get("X-Cache") != "" {
		t.Errorf("X-Cache %q without a cache", r.header.Get("X-Cache"))
	}
}

// TestForwardAutoAuthToken injects the auto-auth token into requests
// without one, keeps a request's own token, and with force replaces it.
func TestForwardAutoAuthToken(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	ctx := t.Context()
	if _, err := root.Logical().Write(ctx, "secret/data/app", map[string]any{"data": map[string]any{"password": "kv-value-2"}}); err != nil {
		t.Fatal(err)
	}
	bogus := "hvs.not-a-real-token"
	for _, tt := range []struct {
		name        string
		force       bool
		header      http.Header
		wantStatus  int
		description string
	}{
		{"no token", false, nil, http.StatusOK, "the auto-auth token is added"},
		{"own token", false, hdr("X-Vault-Token", bogus), http.StatusForbidden, "the request's token is kept"},
		{"own bearer", false, hdr("Authorization", "Bearer "+bogus), http.StatusForbidden, "the request's bearer token is kept"},
		{"force, no token", true, nil, http.StatusOK, "the auto-auth token is added"},
		{"force, own token", true, hdr("X-Vault-Token", bogus), http.StatusOK, "the request's token is replaced"},
		{"force, own bearer", true, hdr("Authorization", "Bearer "+bogus), http.StatusOK, "the bearer token is replaced"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, ForceAutoAuthToken: tt.force})
			h.auto.set(srv.RootToken)
			h.forbid("kv-value-2")
			r := h.do(t, http.MethodGet, "/v1/secret/data/app", tt.header, "")
			if r.status != tt.wantStatus {
				t.Fatalf("%s: status %d, want %d (%s)", tt.description, r.status, tt.wantStatus, r.body)
			}
		})
	}

	t.Run("before the first login", func(t *testing.T) {
		h := startProxy(t, srv, root, Options{UseAutoAuthToken: true})
		r := h.do(t, http.MethodGet, "/v1/secret/data/app", nil, "")
		if r.status != http.StatusForbidden {
			t.Fatalf("no auto-auth token yet: status %d, want 403 from the server", r.status)
		}
		h.auto.set(srv.RootToken)
		if r := h.do(t, http.MethodGet, "/v1/secret/data/app", nil, ""); r.status != http.StatusOK {
			t.Fatalf("after the login: status %d", r.status)
		}
	})
}

// TestAutoAuthTokenNotRevealed checks that a lookup-self through the
// proxy with the injected token does not give the token or its accessor
// to the local process, while one with the process's own token does.
func TestAutoAuthTokenNotRevealed(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	ctx := t.Context()
	auto, err := root.TokenAuth().Create(ctx, api.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true})
	h.auto.set(auto.Auth.ClientToken)
	h.forbid(auto.Auth.ClientToken)

	for _, path := range []string{"/v1/auth/token/lookup-self", "/v1/auth/token/renew-self"} {
		method := http.MethodGet
		if strings.HasSuffix(path, "renew-self") {
			method = http.MethodPost
		}
		r := h.do(t, method, path, nil, "")
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		if strings.Contains(string(r.body), auto.Auth.ClientToken) || strings.Contains(string(r.body), auto.Auth.Accessor) {
			t.Fatalf("%s reveals the auto-auth token or its accessor: %s", path, r.body)
		}
	}
	m := h.do(t, http.MethodGet, "/v1/auth/token/lookup-self", nil, "").json(t)
	if data, _ := m["data"].(map[string]any); data["policies"] == nil {
		t.Fatalf("lookup-self lost more than the token: %v", m)
	}
	// A process's own token is its own business.
	r := h.do(t, http.MethodGet, "/v1/auth/token/lookup-self", hdr("X-Vault-Token", srv.RootToken), "")
	if !strings.Contains(string(r.body), srv.RootToken) {
		t.Fatalf("lookup-self with the process's own token lost its id: %s", r.body)
	}
}

// TestRequireRequestHeader refuses requests without X-Vault-Request: true
// on a listener that requires it, and only there.
func TestRequireRequestHeader(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	strict := tcpListener()
	strict.RequireRequestHeader = true
	h := startProxy(t, srv, root, Options{Listeners: []config.AgentListener{strict, tcpListener()}})
	h.do(t, http.MethodGet, "/v1/sys/health", nil, "") // something to log

	wantErrors(t, h.do(t, http.MethodGet, "/v1/sys/health", nil, ""), http.StatusPreconditionFailed, "X-Vault-Request")
	wantErrors(t, h.do(t, http.MethodGet, "/v1/sys/health", hdr("X-Vault-Request", "yes"), ""), http.StatusPreconditionFailed, "X-Vault-Request")
	if r := h.do(t, http.MethodGet, "/v1/sys/health", hdr("X-Vault-Request", "true"), ""); r.status != http.StatusOK {
		t.Fatalf("with the header: %d %s", r.status, r.body)
	}
	// The api client sends it.
	if _, err := h.client(t, "").Sys().Health(t.Context()); err != nil {
		t.Fatalf("api client: %v", err)
	}
	other := "http://" + h.p.Addrs()[1].String()
	if r := doHTTP(t, http.DefaultClient, http.MethodGet, other+"/v1/sys/health", nil, ""); r.status != http.StatusOK {
		t.Fatalf("listener without require_request_header: %d", r.status)
	}
}

// TestQuit calls Quit on POST /agent/v1/quit of a listener with
// enable_quit, and nowhere else.
func TestQuit(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	quitting := make(chan struct{}, 4)
	withQuit := tcpListener()
	withQuit.EnableQuit = true
	h := startProxy(t, srv, root, Options{
		Listeners: []config.AgentListener{tcpListener(), withQuit},
		Quit:      func() { quitting <- struct{}{} },
	})
	quitURL := "http://" + h.p.Addrs()[1].String() + pathQuit

	wantErrors(t, h.do(t, http.MethodPost, pathQuit, nil, ""), http.StatusNotFound, "enable_quit")
	wantErrors(t, doHTTP(t, http.DefaultClient, http.MethodGet, quitURL, nil, ""), http.StatusMethodNotAllowed, "POST")
	select {
	case <-quitting:
		t.Fatal("Quit called by a refused request")
	default:
	}
	if r := doHTTP(t, http.DefaultClient, http.MethodPost, quitURL, nil, ""); r.status != http.StatusOK {
		t.Fatalf("quit: %d %s", r.status, r.body)
	}
	select {
	case <-quitting:
	default:
		t.Fatal("Quit was not called")
	}
	// Other agent paths are not forwarded.
	wantErrors(t, h.do(t, http.MethodGet, "/agent/v1/metrics", nil, ""), http.StatusNotFound, "no handler")
	// Without a cache there is no cache-clear.
	wantErrors(t, h.do(t, http.MethodPost, pathCacheClear, nil, `{"type":"all"}`), http.StatusNotFound, "no handler")
}

// TestUnixListener serves on a unix socket with the configured mode, and
// removes it on shutdown.
func TestUnixListener(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, testcluster.Options{})
	dir, err := os.MkdirTemp("", "vigil-proxy-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	// A stale socket left by a dead agent is replaced.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	l := config.AgentListener{Type: "unix", Address: sock, TLSDisable: true, SocketMode: "0600", SocketUser: strconv.Itoa(os.Getuid()), SocketGroup: strconv.Itoa(os.Getgid())}
	ctx, cancel := context.WithCancel(t.Context())
	auto := &autoToken{}
	auto.set(srv.RootToken)
	p, err := New(Options{Listeners: []config.AgentListener{l}, Address: srv.URL, UseAutoAuthToken: true, Token: auto.get})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()

	if got := p.Addrs()[0].String(); got != sock {
		t.Fatalf("Addrs()[0] = %q, want %q", got, sock)
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if _, err := New(Options{Listeners: []config.AgentListener{l}, Address: srv.URL}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second listener on a live socket: %v, want in use", err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	r := doHTTP(t, hc, http.MethodGet, "http://agent/v1/auth/token/lookup-self", nil, "")
	if r.status != http.StatusOK {
		t.Fatalf("over the socket: %d %s", r.status, r.body)
	}
	hc.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket still there after shutdown: %v", err)
	}
	// A regular file is never replaced.
	if err := os.WriteFile(sock, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Listeners: []config.AgentListener{l}, Address: srv.URL}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listener over a regular file: %v", err)
	}
}

// TestTLSListener serves over TLS with the configured minimum version,
// and refuses to start with a certificate it cannot load or an address in
// use.
func TestTLSListener(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	l := config.AgentListener{Type: "tcp", Address: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile, TLSMinVersion: "tls13"}
	h := startProxy(t, srv, root, Options{Listeners: []config.AgentListener{l}})

	tls13 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if r := doHTTP(t, tls13, http.MethodGet, h.url+"/v1/sys/health", nil, ""); r.status != http.StatusOK {
		t.Fatalf("over TLS: %d %s", r.status, r.body)
	}
	tls12 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}}}
	if resp, err := tls12.Get(h.url + "/v1/sys/health"); err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.2 client was served by a tls13 listener")
	}

	bad := l
	bad.TLSKeyFile = filepath.Join(dir, "missing.pem")
	if _, err := New(Options{Listeners: []config.AgentListener{bad}, Address: srv.URL}); err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Fatalf("missing key file: %v", err)
	}
	inUse := tcpListener()
	inUse.Address = h.p.Addrs()[0].String()
	if _, err := New(Options{Listeners: []config.AgentListener{tcpListener(), inUse}, Address: srv.URL}); err == nil {
		t.Fatal("an address in use did not fail New")
	}
}

// TestUpstreamDown answers 502 with an error envelope while the server
// cannot be reached, and recovers when it is back.
func TestUpstreamDown(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	tcp := testcluster.NewProxy(t, srv.URL)
	h := startProxy(t, srv, root, Options{Address: tcp.URL, UseAutoAuthToken: true, Cache: true})
	h.auto.set(srv.RootToken)

	if r := h.do(t, http.MethodGet, "/v1/auth/token/lookup-self", nil, ""); r.status != http.StatusOK {
		t.Fatalf("before the outage: %d", r.status)
	}
	tcp.Down()
	r := h.do(t, http.MethodGet, "/v1/auth/token/lookup-self", nil, "")
	wantErrors(t, r, http.StatusBadGateway, "error reaching the server")
	if strings.Contains(string(r.body), srv.RootToken) {
		t.Fatal("the 502 holds the token")
	}
	tcp.Up(t)
	eventually(t, "the proxy to reach the server again", func() bool {
		return h.do(t, http.MethodGet, "/v1/auth/token/lookup-self", nil, "").status == http.StatusOK
	})
}

// TestEventStreamThroughProxy opens a WebSocket event subscription
// through the proxy and receives a change event over it.
func TestEventStreamThroughProxy(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	h := startProxy(t, srv, root, Options{Cache: true})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, err := h.client(t, srv.RootToken).Sys().SubscribeEvents(ctx, "kv-v2/data-write", api.SubscribeEventsOptions{})
	if err != nil {
		t.Fatalf("subscribe through the proxy: %v", err)
	}
	defer st.Close()
	if _, err := root.Logical().Write(ctx, "secret/data/evt", map[string]any{"data": map[string]any{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	ev, err := st.Next(ctx)
	if err != nil {
		t.Fatalf("no event through the proxy: %v", err)
	}
	if ev.EventType() != "kv-v2/data-write" || ev.DataPath() != "secret/data/evt" {
		t.Fatalf("event %s on %s", ev.EventType(), ev.DataPath())
	}
}

// TestShutdownEndsStreams checks that Serve returns, within its bound,
// while an event stream is open through the proxy.
func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, testcluster.Options{})
	p, err := New(Options{Listeners: []config.AgentListener{tcpListener()}, Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	c, err := api.NewClient(api.Config{Address: "http://" + p.Addrs()[0].String(), Token: srv.RootToken})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Sys().SubscribeEvents(t.Context(), "*", api.SubscribeEventsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * shutdownTimeout):
		t.Fatal("Serve did not return with a stream open")
	}
	if _, err := st.Next(t.Context()); err == nil {
		t.Fatal("the stream outlived the proxy")
	}
	if err := p.Serve(t.Context()); !errors.Is(err, ErrServed) {
		t.Fatalf("second Serve: %v", err)
	}
}

// TestForwardedFor appends the client's address to X-Forwarded-For.
func TestForwardedFor(t *testing.T) {
	t.Parallel()
	p := &Proxy{}
	target := &url.URL{Scheme: "http", Host: "vigil.internal:8200"}
	fw := p.newForwarder(target, http.DefaultTransport)
	for _, tt := range []struct{ remote, prior, want string }{
		{"192.0.2.7:5555", "", "192.0.2.7"},
		{"192.0.2.7:5555", "198.51.100.1", "198.51.100.1, 192.0.2.7"},
		{"@", "198.51.100.1", "198.51.100.1"}, // a unix socket
		{"@", "", ""},
	} {
		in := httptest.NewRequest(http.MethodGet, "http://agent/v1/sys/health", nil)
		in.RemoteAddr = tt.remote
		if tt.prior != "" {
			in.Header.Set("X-Forwarded-For", tt.prior)
		}
		out := in.Clone(t.Context())
		out.Header.Del("X-Forwarded-For") // as ReverseProxy does before Rewrite
		fw.Rewrite(&httputil.ProxyRequest{In: in, Out: out})
		if got := out.Header.Get("X-Forwarded-For"); got != tt.want {
			t.Errorf("remote %s, prior %q: X-Forwarded-For %q, want %q", tt.remote, tt.prior, got, tt.want)
		}
		if out.URL.Host != target.Host || out.URL.Path != "/v1/sys/health" {
			t.Errorf("rewritten to %s", out.URL)
		}
	}
}

// TestLogPath keeps tokens of legacy token paths out of log lines.
func TestLogPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/v1/auth/token/lookup/s.secret":  "/v1/auth/token/lookup/[redacted]",
		"/v1/auth/token/revoke/s.secret":  "/v1/auth/token/revoke/[redacted]",
		"/v1/auth/token/create/role":      "/v1/auth/token/create/role",
		"/v1/auth/token/lookup-self":      "/v1/auth/token/lookup-self",
		"/v1/database/creds/reader":       "/v1/database/creds/reader",
		"/v1/auth/token/roles/app":        "/v1/auth/token/roles/app",
		"/v1/sys/leases/revoke/db/creds/": "/v1/sys/leases/revoke/db/creds/",
	} {
		if got := logPath(in); got != want {
			t.Errorf("logPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNewRefusesBadOptions checks the options New refuses.
func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	l := []config.AgentListener{tcpListener()}
	for name, o := range map[string]Options{
		"no listener":         {Address: "http://127.0.0.1:8200"},
		"no address":          {Listeners: l},
		"unix address":        {Listeners: l, Address: "unix:///run/vigil.sock"},
		"auto-auth, no token": {Listeners: l, Address: "http://127.0.0.1:8200", UseAutoAuthToken: true},
		"force, no token":     {Listeners: l, Address: "http://127.0.0.1:8200", ForceAutoAuthToken: true},
		"quit, no func":       {Listeners: []config.AgentListener{{Type: "tcp", Address: "127.0.0.1:0", TLSDisable: true, EnableQuit: true}}, Address: "http://127.0.0.1:8200"},
		"bad socket mode":     {Listeners: []config.AgentListener{{Type: "unix", Address: filepath.Join(t.TempDir(), "s"), TLSDisable: true, SocketMode: "rw"}}, Address: "http://127.0.0.1:8200"},
		"no TLS files":        {Listeners: []config.AgentListener{{Type: "tcp", Address: "127.0.0.1:0"}}, Address: "http://127.0.0.1:8200"},
	} {
		if p, err := New(o); err == nil {
			p.Close()
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "vigil-agent-test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
