package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secrets/kv"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

// newHAEnv starts an HA server named id over its own node of phys,
// believing X-Forwarded-For from the proxies given.
func newHAEnv(t *testing.T, phys *inmem.Backend, id string, proxies ...netip.Prefix) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	node := phys.Node()
	c, err := core.New(core.Config{Storage: node, StorageType: "inmem", Factories: map[string]logical.Factory{"kv": kv.Factory},
		HA: node, NodeID: id, APIAddr: "http://" + ln.Addr().String(), StepDownWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(New(Options{Core: c, TrustedProxies: proxies}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		c.SealInternal(context.Background())
	})
	return &env{t: t, core: c, srv: srv}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newHAPair starts two HA servers over one storage, a active and b its
// unsealed standby, both holding the root token. Only b believes
// X-Forwarded-For (from loopback).
func newHAPair(t *testing.T) (a, b *env) {
	t.Helper()
	phys := inmem.New()
	a, b = newHAEnv(t, phys, "a"), newHAEnv(t, phys, "b", netip.MustParsePrefix("127.0.0.0/8"))
	a.initAndUnseal()
	waitUntil(t, "a is active", func() bool { return !a.core.Standby() })
	b.keys = a.keys
	for _, k := range b.keys[:2] {
		if code, _, body := b.do("PUT", "/v1/sys/unseal", `{"key":"`+k+`"}`); code != 200 {
			t.Fatalf("unseal b: %d %v", code, body)
		}
	}
	if !b.core.Standby() {
		t.Fatal("b is not a standby")
	}
	b.token = a.token
	return a, b
}

func TestStandbyForwardsToTheActive(t *testing.T) {
	a, b := newHAPair(t)
	root := a.token

	// The standby answers for itself...
	if code, _, body := b.do("GET", "/v1/sys/health", ""); code != 429 || body["standby"] != true {
		t.Fatalf("standby health: %d %v", code, body)
	}
	if code, _, _ := b.do("GET", "/v1/sys/health?standbyok=true", ""); code != 200 {
		t.Fatalf("standby health with standbyok: %d", code)
	}
	if code, _, body := b.do("GET", "/v1/sys/leader", ""); code != 200 || body["ha_enabled"] != true || body["is_self"] != false || body["leader_address"] != a.srv.URL {
		t.Fatalf("standby leader: %d %v", code, body)
	}
	if code, _, body := a.do("GET", "/v1/sys/leader", ""); code != 200 || body["is_self"] != true || body["active_time"] == "0001-01-01T00:00:00Z" {
		t.Fatalf("active leader: %d %v", code, body)
	}
	if code, _, body := b.do("PUT", "/v1/sys/seal", ""); code != 400 {
		t.Fatalf("seal of a standby: %d %v", code, body)
	}

	// ...and forwards everything else.
	if code, _, body := b.do("POST", "/v1/sys/mounts/secret", `{"type":"kv","options":{"version":"2"}}`); code != 204 {
		t.Fatalf("mount through the standby: %d %v", code, body)
	}
	if code, _, body := b.do("POST", "/v1/secret/data/app", `{"data":{"k":"v"}}`); code != 200 {
		t.Fatalf("write through the standby: %d %v", code, body)
	}
	if code, _, body := a.do("GET", "/v1/secret/data/app", ""); code != 200 || body["data"].(map[string]any)["data"].(map[string]any)["k"] != "v" {
		t.Fatalf("read on the active: %d %v", code, body)
	}
	if code, _, _ := b.do("GET", "/v1/secret/data/missing", ""); code != 404 {
		t.Fatalf("a 404 through the standby: %d", code)
	}

	// The active sees the client's address the standby vouched for.
	if code, _, body := a.do("POST", "/v1/auth/token/roles/office", `{"token_bound_cidrs":"203.0.113.0/24","allowed_policies":"default"}`); code != 204 {
		t.Fatalf("role: %d %v", code, body)
	}
	_, _, body := a.do("POST", "/v1/auth/token/create/office", `{"policies":["default"]}`)
	bound := body["auth"].(map[string]any)["client_token"].(string)
	b.token = bound
	if code, _, body := b.do("GET", "/v1/auth/token/lookup-self", "", "X-Forwarded-For", "203.0.113.9"); code != 200 {
		t.Fatalf("bound token through the standby from its network: %d %v", code, body)
	}
	if code, _, _ := b.do("GET", "/v1/auth/token/lookup-self", "", "X-Forwarded-For", "198.51.100.1"); code != 403 {
		t.Fatalf("bound token through the standby from elsewhere: %d", code)
	}
	// A client's own certificate header is dropped, not passed on to
	// spoil (or forge) the standby's signature.
	if code, _, body := b.do("GET", "/v1/auth/token/lookup-self", "", "X-Forwarded-For", "203.0.113.9", hdrForwardedCert, "Q049bWFsbG9yeQ"); code != 200 {
		t.Fatalf("bound token through the standby, with a client's certificate header: %d %v", code, body)
	}
	a.token = bound
	if code, _, _ := a.do("GET", "/v1/auth/token/lookup-self", "", "X-Forwarded-For", "203.0.113.9"); code != 403 {
		t.Fatalf("the active believed a client's X-Forwarded-For: %d", code)
	}
	forged := []string{hdrForwardedFor, "203.0.113.9:1", hdrForwardedAt, "1700000000", hdrForwardedMAC, "00"}
	if code, _, _ := a.do("GET", "/v1/auth/token/lookup-self", "", forged...); code != 403 {
		t.Fatalf("the active believed a forged forwarding header: %d", code)
	}
	// A forwarded request that reaches a standby is not forwarded again.
	if code, _, _ := b.do("GET", "/v1/auth/token/lookup-self", "", forged...); code != 503 {
		t.Fatalf("a second hop: %d", code)
	}

	// Step-down through the standby: b takes over, a forwards to it.
	a.token = root
	if code, _, body := a.do("PUT", "/v1/sys/step-down", ""); code != 204 {
		t.Fatalf("step-down: %d %v", code, body)
	}
	waitUntil(t, "b is active", func() bool { return !b.core.Standby() })
	if code, _, body := a.do("GET", "/v1/secret/data/app", ""); code != 200 {
		t.Fatalf("read through the new standby: %d %v", code, body)
	}
}

func TestLeaderWithoutHA(t *testing.T) {
	e := newEnv(t)
	code, _, body := e.do("GET", "/v1/sys/leader", "")
	if code != 200 || body["ha_enabled"] != false || body["active_time"] != "0001-01-01T00:00:00Z" {
		t.Fatalf("leader: %d %v", code, body)
	}
}

// TestForwardedCertificateSubject: the subject of the client certificate
// a standby verified reaches the active server with the client's
// address, under the standby's signature; a changed subject voids the
// whole forwarding, and a client without a certificate is forwarded as
// servers that forwarded no subject did.
func TestForwardedCertificateSubject(t *testing.T) {
	a, b := newHAPair(t)
	standby, active := b.srv.Config.Handler.(*Handler), a.srv.Config.Handler.(*Handler)
	const path = "/v1/secret/data/app"
	fromClient := func(cert *x509.Certificate) *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "198.51.100.7:4321"
		if cert != nil {
			r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}
		}
		return r
	}
	toActive := func(hdr http.Header) *logical.Connection {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "127.0.0.1:5555" // the standby's
		for k, v := range hdr {
			r.Header[k] = v
		}
		return active.connection(r)
	}
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "trainer-7", Organization: []string{"ml"}}}

	hdr, ok := standby.forwardHeader(fromClient(cert))
	if !ok {
		t.Fatal("the standby cannot sign")
	}
	if c := toActive(hdr); c.RemoteAddr != "198.51.100.7" || c.RemotePort != 4321 || c.ClientCertSubject != cert.Subject.String() {
		t.Errorf("the active sees %+v, want the client's address and subject", c)
	}

	forged := hdr.Clone()
	forged.Set(hdrForwardedCert, base64.RawURLEncoding.EncodeToString([]byte("O=ml,CN=admin")))
	if c := toActive(forged); c.RemoteAddr != "127.0.0.1" || c.ClientCertSubject != "" {
		t.Errorf("with a changed subject the active sees %+v, want the standby's address and no subject", c)
	}
	dropped := hdr.Clone()
	dropped.Del(hdrForwardedCert)
	if c := toActive(dropped); c.RemoteAddr != "127.0.0.1" || c.ClientCertSubject != "" {
		t.Errorf("without the signed subject the active sees %+v, want the standby's address", c)
	}

	hdr, _ = standby.forwardHeader(fromClient(nil))
	if _, has := hdr[hdrForwardedCert]; has {
		t.Error("a subject header for a client without a certificate")
	}
	client, at := hdr.Get(hdrForwardedFor), hdr.Get(hdrForwardedAt)
	if !a.core.CheckForwardMAC([]byte("vigil-forward v1\n"+client+"\n"+at+"\nGET\n"+path), mustHex(t, hdr.Get(hdrForwardedMAC))) {
		t.Error("without a certificate the signature is not the one servers that forward no subject make")
	}
	if c := toActive(hdr); c.RemoteAddr != "198.51.100.7" || c.ClientCertSubject != "" {
		t.Errorf("the active sees %+v, want the client's address and no subject", c)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
