package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// request is what the fake server saw.
type request struct {
	Method, Path, RawQuery, Token, Marker, ContentType string
	Body                                               map[string]any
}

// fake starts a server that records each request and answers with the
// handler's status and body.
func fake(t *testing.T, h func(r request) (int, string)) (*Client, *[]request) {
	t.Helper()
	var seen []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := request{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Token: r.Header.Get("X-Vault-Token"), Marker: r.Header.Get("X-Vault-Request"),
			ContentType: r.Header.Get("Content-Type"),
		}
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 {
			if err := json.Unmarshal(b, &rq.Body); err != nil {
				t.Errorf("request body is not a JSON object: %s", b)
			}
		}
		seen = append(seen, rq)
		code, body := h(rq)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{Address: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	return c, &seen
}

func TestDefaultConfigEnvPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want Config
	}{
		{"defaults", nil, Config{Address: DefaultAddress, Timeout: DefaultTimeout}},
		{"vault fallback", map[string]string{
			"VAULT_ADDR": "https://v:8200", "VAULT_TOKEN": "vt", "VAULT_CACERT": "/ca.pem",
			"VAULT_CAPATH": "/cas", "VAULT_SKIP_VERIFY": "true", "VAULT_CLIENT_TIMEOUT": "30",
			"VAULT_CLIENT_CERT": "/c.pem", "VAULT_CLIENT_KEY": "/k.pem", "VAULT_TLS_SERVER_NAME": "vault.internal",
		}, Config{Address: "https://v:8200", Token: "vt", CACert: "/ca.pem", CAPath: "/cas", TLSSkipVerify: true, Timeout: 30 * time.Second,
			ClientCert: "/c.pem", ClientKey: "/k.pem", TLSServerName: "vault.internal"}},
		{"vigil wins", map[string]string{
			"VAULT_ADDR": "https://v:8200", "VIGIL_ADDR": "http://g:8200",
			"VAULT_TOKEN": "vt", "VIGIL_TOKEN": "gt\n",
			"VAULT_SKIP_VERIFY": "true", "VIGIL_SKIP_VERIFY": "false",
			"VAULT_CLIENT_TIMEOUT": "30", "VIGIL_CLIENT_TIMEOUT": "2m",
		}, Config{Address: "http://g:8200", Token: "gt", Timeout: 2 * time.Minute}},
		{"empty vigil falls back", map[string]string{"VIGIL_ADDR": "", "VAULT_ADDR": "http://v:1"},
			Config{Address: "http://v:1", Timeout: DefaultTimeout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestConfigFromEnvBadValues(t *testing.T) {
	t.Parallel()
	env := map[string]string{"VIGIL_SKIP_VERIFY": "maybe", "VIGIL_CLIENT_TIMEOUT": "soon"}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "VIGIL_SKIP_VERIFY") || !strings.Contains(err.Error(), "VIGIL_CLIENT_TIMEOUT") {
		t.Fatalf("err = %v", err)
	}
	if c.TLSSkipVerify || c.Timeout != DefaultTimeout {
		t.Errorf("bad values changed the config: %+v", c)
	}
	if d := DefaultConfig(func(k string) string { return env[k] }); d.Timeout != DefaultTimeout {
		t.Errorf("DefaultConfig timeout = %v", d.Timeout)
	}
}

func TestNewClientRejectsBadAddress(t *testing.T) {
	t.Parallel()
	for _, a := range []string{"ftp://x", "127.0.0.1:8200", "http://", "http://[::1"} {
		if _, err := NewClient(Config{Address: a}); err == nil {
			t.Errorf("NewClient(%q) succeeded", a)
		}
	}
	if _, err := NewClient(Config{Address: "http://x", CACert: "/nonexistent/ca.pem"}); err == nil {
		t.Error("missing CA file accepted")
	}
	if _, err := NewClient(Config{Address: "https://x", ClientCert: "/c.pem"}); err == nil {
		t.Error("a client certificate without its key accepted")
	}
	if _, err := NewClient(Config{Address: "unix://"}); err == nil {
		t.Error("a unix address without a socket path accepted")
	}
}

// TestUnixSocketAddress: unix:///path sends requests over the socket
// (an agent's listener "unix"), with the usual paths and token.
func TestUnixSocketAddress(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Method + " " + r.URL.Path + " " + r.Header.Get("X-Vault-Token")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":{"value":"v"}}`)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	c, err := NewClient(Config{Address: "unix://" + sock, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Logical().Read(t.Context(), "secret/app")
	if err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "GET /v1/secret/app tok" || s.Data["value"] != "v" {
		t.Errorf("request %q, answer %v", got, s.Data)
	}
	if c.HTTPClient() == nil || c.Address() != "http://localhost" {
		t.Errorf("address %q", c.Address())
	}
}

// TestClientCertificate: ClientCert and ClientKey are presented to a
// server that requires a client certificate, and TLSServerName is the
// name its certificate is checked against.
func TestClientCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := testCert(t, nil, nil, "test CA", "")
	serverCert, serverKey := testCert(t, ca, caKey, "server", "vigil.internal")
	clientCert, clientKey := testCert(t, ca, caKey, "workload", "")
	write := func(name string, der []byte, typ string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caFile := write("ca.pem", ca.Raw, "CERTIFICATE")
	certFile := write("client.pem", clientCert.Raw, "CERTIFICATE")
	keyFile := write("client-key.pem", keyDER(clientKey), "PRIVATE KEY")

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":{"cn":"`+r.TLS.PeerCertificates[0].Subject.CommonName+`"}}`)
	}))
	srv.TLS = &tls.Config{
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverCert.Raw}, PrivateKey: serverKey}},
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	c, err := NewClient(Config{Address: srv.URL, CACert: caFile, ClientCert: certFile, ClientKey: keyFile, TLSServerName: "vigil.internal"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Logical().Read(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if s.Data["cn"] != "workload" {
		t.Errorf("server saw client %v", s.Data["cn"])
	}
	// Without the certificate the handshake fails; with the wrong server
	// name verification does.
	for _, cfg := range []Config{
		{Address: srv.URL, CACert: caFile, TLSServerName: "vigil.internal"},
		{Address: srv.URL, CACert: caFile, ClientCert: certFile, ClientKey: keyFile, TLSServerName: "other.internal"},
	} {
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Logical().Read(t.Context(), "x"); err == nil {
			t.Errorf("%+v: request succeeded", cfg)
		}
	}
}

// testCert makes a certificate signed by parent (self-signed when nil)
// for dnsName (a CA when empty and parent is nil).
func testCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn, dnsName string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if dnsName != "" {
		tmpl.DNSNames = []string{dnsName}
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestHeadersAndListTranslation(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) {
		return 200, `{"request_id":"r","data":{"keys":["a","b/"]}}`
	})
	s, err := c.Logical().List(t.Context(), "/secret/metadata/app")
	if err != nil {
		t.Fatal(err)
	}
	keys := s.Data["keys"].([]any)
	if len(keys) != 2 || keys[1] != "b/" {
		t.Errorf("keys = %v", keys)
	}
	r := (*seen)[0]
	if r.Method != http.MethodGet || r.Path != "/v1/secret/metadata/app" || r.RawQuery != "list=true" {
		t.Errorf("list sent as %s %s?%s", r.Method, r.Path, r.RawQuery)
	}
	if r.Token != "tok" || r.Marker != "true" {
		t.Errorf("token %q marker %q", r.Token, r.Marker)
	}

	c.SetToken("")
	if _, err := c.Logical().Read(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	if got := (*seen)[1].Token; got != "" {
		t.Errorf("token sent after SetToken(\"\"): %q", got)
	}
	if c.WithToken("other").Token() != "other" || c.Token() != "" {
		t.Error("WithToken changed the original client")
	}
}

func TestWriteAndPatchBodies(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(r request) (int, string) {
		if r.Method == http.MethodPatch {
			return 204, ""
		}
		return 200, `{"data":{"version":3}}`
	})
	s, err := c.Logical().Write(t.Context(), "secret/data/x", map[string]any{"data": map[string]any{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Data["version"].(json.Number); !ok || v.String() != "3" {
		t.Errorf("version = %#v, want json.Number 3", s.Data["version"])
	}
	if s, err := c.Logical().Patch(t.Context(), "secret/data/x", map[string]any{"data": map[string]any{"a": nil}}); err != nil || s != nil {
		t.Fatalf("patch = %v, %v", s, err)
	}
	w, p := (*seen)[0], (*seen)[1]
	if w.Method != http.MethodPut || w.ContentType != "application/json" {
		t.Errorf("write sent as %s %s", w.Method, w.ContentType)
	}
	if p.Method != http.MethodPatch || p.ContentType != "application/merge-patch+json" {
		t.Errorf("patch sent as %s %s", p.Method, p.ContentType)
	}
	if d := p.Body["data"].(map[string]any); d["a"] != nil {
		t.Errorf("patch body = %v", p.Body)
	}
}

func TestNotFoundHandling(t *testing.T) {
	t.Parallel()
	deleted := `{"request_id":"r","data":{"data":null,"metadata":{"deletion_time":"2024-01-01T00:00:00Z","version":2}}}`
	c, _ := fake(t, func(r request) (int, string) {
		switch r.Path {
		case "/v1/secret/data/gone":
			return 404, deleted
		case "/v1/secret/data/none":
			return 404, `{"errors":[]}`
		case "/v1/nomount/x":
			return 404, `{"errors":["no handler for route \"nomount/x\". route entry not found."]}`
		case "/v1/secret/foo":
			return 404, `{"data":null,"warnings":["Invalid path for a versioned K/V secrets engine."]}`
		}
		return 500, `{"errors":["unexpected"]}`
	})
	ctx := t.Context()
	s, err := c.Logical().Read(ctx, "secret/data/gone")
	if err != nil || s == nil || s.Data["data"] != nil || s.Data["metadata"] == nil {
		t.Errorf("deleted version: %+v, %v", s, err)
	}
	if s, err := c.Logical().Read(ctx, "secret/data/none"); s != nil || err != nil {
		t.Errorf("plain 404 read: %+v, %v", s, err)
	}
	if s, err := c.Logical().List(ctx, "secret/data/none"); s != nil || err != nil {
		t.Errorf("plain 404 list: %+v, %v", s, err)
	}
	if _, err := c.Logical().Read(ctx, "nomount/x"); StatusCode(err) != 404 {
		t.Errorf("404 with errors: %v", err)
	}
	if s, err := c.Logical().Read(ctx, "secret/foo"); err != nil || len(s.Warnings) != 1 {
		t.Errorf("404 with warnings: %+v, %v", s, err)
	}
	if _, err := c.Logical().Write(ctx, "secret/data/none", nil); StatusCode(err) != 404 {
		t.Errorf("404 on write: %v", err)
	}
}

func TestResponseErrorShape(t *testing.T) {
	t.Parallel()
	c, _ := fake(t, func(r request) (int, string) {
		if r.Path == "/v1/raw" {
			return 502, "bad gateway"
		}
		return 400, `{"errors":["check-and-set parameter did not match the current version","second"]}`
	})
	_, err := c.Logical().Write(t.Context(), "secret/data/x", map[string]any{})
	var re *ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("err = %T %v", err, err)
	}
	want := "Error making API request.\n\nURL: PUT " + c.Address() + "/v1/secret/data/x\nCode: 400. Errors:\n\n" +
		"* check-and-set parameter did not match the current version\n* second"
	if re.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", re.Error(), want)
	}
	if re.Path != "secret/data/x" || re.Method != "PUT" || !re.HasMessage("check-and-set") {
		t.Errorf("fields: %+v", re)
	}
	_, err = c.Logical().Read(t.Context(), "raw")
	if !errors.As(err, &re) || re.RawBody != "bad gateway" || !strings.Contains(re.Error(), "Raw Message:\n\nbad gateway") {
		t.Errorf("raw error: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		nilOut     bool
		check      func(*Secret) bool
	}{
		{"empty", "  ", true, nil},
		{"errors only", `{"errors":[]}`, true, nil},
		{"raw", `{"keys":["a"]}`, false, func(s *Secret) bool { return s.Data["keys"] != nil }},
		{"envelope", `{"request_id":"r","lease_id":"l","lease_duration":60,"renewable":true,"data":{"n":1.5},"warnings":["w"],
			"auth":{"client_token":"ct","accessor":"ac","policies":["default"],"metadata":{"k":"v"},"lease_duration":10,"renewable":true}}`,
			false, func(s *Secret) bool {
				n, ok := s.Data["n"].(json.Number)
				return ok && n == "1.5" && s.LeaseDuration == 60 && s.Renewable && s.LeaseID == "l" &&
					s.Auth.ClientToken == "ct" && s.Auth.Metadata["k"] == "v" && s.Warnings[0] == "w"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSecret(strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.nilOut != (s == nil) {
				t.Fatalf("secret = %+v", s)
			}
			if tt.check != nil && !tt.check(s) {
				t.Errorf("unexpected secret %+v", s)
			}
		})
	}
	if _, err := ParseSecret(strings.NewReader("{")); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := NewClient(Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Sys().SealStatus(t.Context())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("err = %v, want ECONNREFUSED", err)
	}
}

func TestRedirectDowngradeRefused(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("followed a redirect from https to http")
	}))
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(tlsSrv.Close)
	c, err := NewClient(Config{Address: tlsSrv.URL, TLSSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Read(t.Context(), "x"); err == nil || !strings.Contains(err.Error(), "https to http") {
		t.Errorf("err = %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90": 90 * time.Second, " 90 ": 90 * time.Second, "1h30m": 90 * time.Minute, "-5": -5 * time.Second, "0": 0,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	// Seconds beyond what a time.Duration holds would wrap around.
	for _, in := range []string{"", "soon", "9999999999999", "-9999999999999", "99999999999999999999"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}
