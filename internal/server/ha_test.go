package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// testCA issues certificates for the tests, written to files in dir.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: name}, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, key := createCert(t, tmpl, nil, nil)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{t: t, dir: dir, cert: cert, key: key, file: filepath.Join(dir, name+".pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a certificate for 127.0.0.1 named cn, with the given
// extended key usages, and its key; it returns both files.
func (ca *testCA) issue(cn string, usages ...x509.ExtKeyUsage) (certFile, keyFile string) {
	t := ca.t
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usages,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, key := createCert(t, tmpl, ca.cert, ca.key)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, cn+".pem"), filepath.Join(ca.dir, cn+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

// createCert makes a new key and a certificate of tmpl for it, valid for
// an hour, signed by parent's key (self-signed when parent is nil).
func createCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = randomSerial()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func reloaderOf(t *testing.T, certFile, keyFile string) *certReloader {
	t.Helper()
	r, err := newCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestForwardTLS: what a standby trusts and presents when it connects to
// the active server, against a listener configured as an active's is.
func TestForwardTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster-ca")
	other := newTestCA(t, dir, "other-ca")
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	activeCert, activeKey := ca.issue("active", both...)
	standbyCert, standbyKey := ca.issue("standby", both...)
	serverOnlyCert, serverOnlyKey := ca.issue("server-only", x509.ExtKeyUsageServerAuth)
	foreignCert, foreignKey := other.issue("foreign", both...)
	clientCert, clientKey := ca.issue("forwarder", x509.ExtKeyUsageClientAuth)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)

	// active answers with the subject of the client certificate it
	// verified ("-" without one).
	active := func(t *testing.T, auth tls.ClientAuthType) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.VerifiedChains) == 0 {
				io.WriteString(w, "-")
				return
			}
			io.WriteString(w, r.TLS.VerifiedChains[0][0].Subject.CommonName)
		}))
		pool, err := loadCAs("tls_client_ca_file", ca.file)
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*reloaderOf(t, activeCert, activeKey).cert.Load()}, ClientCAs: pool, ClientAuth: auth}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	call := func(t *testing.T, tc *tls.Config, url string) (string, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	ownListener := []config.Listener{{Address: "127.0.0.1:0", TLSCertFile: standbyCert, TLSKeyFile: standbyKey}}

	for _, tc := range []struct {
		name string
		pg   config.PostgresStorage
		own  []*certReloader
		auth tls.ClientAuthType
		want string // the subject the active sees; "" for a refused connection
	}{
		{"the cluster CA, own certificate required", config.PostgresStorage{LeaderCACertFile: ca.file},
			[]*certReloader{nil, reloaderOf(t, standbyCert, standbyKey)}, tls.RequireAndVerifyClientCert, "standby"},
		{"own leaf certificate alone is no trust anchor", config.PostgresStorage{},
			[]*certReloader{reloaderOf(t, standbyCert, standbyKey)}, tls.VerifyClientCertIfGiven, ""},
		{"a server-only certificate is not presented", config.PostgresStorage{LeaderCACertFile: ca.file},
			[]*certReloader{reloaderOf(t, serverOnlyCert, serverOnlyKey)}, tls.VerifyClientCertIfGiven, "-"},
		{"nor one the active would not accept", config.PostgresStorage{LeaderCACertFile: ca.file},
			[]*certReloader{reloaderOf(t, foreignCert, foreignKey)}, tls.VerifyClientCertIfGiven, "-"},
		{"the next acceptable one is", config.PostgresStorage{LeaderCACertFile: ca.file},
			[]*certReloader{reloaderOf(t, foreignCert, foreignKey), reloaderOf(t, standbyCert, standbyKey)}, tls.RequireAndVerifyClientCert, "standby"},
		{"without one, a required certificate is missing", config.PostgresStorage{LeaderCACertFile: ca.file},
			[]*certReloader{reloaderOf(t, serverOnlyCert, serverOnlyKey)}, tls.RequireAndVerifyClientCert, ""},
		{"leader_client_cert_file", config.PostgresStorage{LeaderCACertFile: ca.file, LeaderClientCertFile: clientCert, LeaderClientKeyFile: clientKey},
			[]*certReloader{reloaderOf(t, standbyCert, standbyKey)}, tls.RequireAndVerifyClientCert, "forwarder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fwd, leader, err := forwardTLS(ownListener, tc.own, &tc.pg)
			if err != nil {
				t.Fatal(err)
			}
			if (leader != nil) != (tc.pg.LeaderClientCertFile != "") {
				t.Fatalf("leader reloader %v for %q", leader, tc.pg.LeaderClientCertFile)
			}
			got, err := call(t, fwd, active(t, tc.auth))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("connected, and the active saw %q", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("the active saw %q (%v), want %q", got, err, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name string
		pg   config.PostgresStorage
		want string
	}{
		{"CA file missing", config.PostgresStorage{LeaderCACertFile: filepath.Join(dir, "missing.pem")}, "read leader_ca_cert_file"},
		{"CA file not PEM", config.PostgresStorage{LeaderCACertFile: notPEM}, "leader_ca_cert_file " + notPEM + " holds no PEM certificate"},
		{"client key missing", config.PostgresStorage{LeaderClientCertFile: clientCert, LeaderClientKeyFile: filepath.Join(dir, "missing.pem")}, "leader_client_cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := forwardTLS(ownListener, nil, &tc.pg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestHAForwardsOverMutualTLS: two servers on one database whose
// listeners require client certificates from the cluster's CA. The
// standby forwards over TLS to the active, presenting its own listener
// certificate, and the active's audit log names the client that called
// the standby.
func TestHAForwardsOverMutualTLS(t *testing.T) {
	db := pgtest.New(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster-ca")
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	sealKey := filepath.Join(dir, "seal.key")
	if err := os.WriteFile(sealKey, secret.RandomBytes(32), 0o600); err != nil {
		t.Fatal(err)
	}
	type node struct {
		url, auditLog string
		r             *running
	}
	var nodes []*node
	for i := range 2 {
		name := fmt.Sprintf("node%d", i+1)
		certFile, keyFile := ca.issue(name, both...)
		port := freePort(t)
		n := &node{url: fmt.Sprintf("https://127.0.0.1:%d", port), auditLog: filepath.Join(dir, name+"-audit.log")}
		cfgPath := filepath.Join(dir, name+".hcl")
		cfg := fmt.Sprintf(`storage "postgresql" {
  connection_url      = %q
  ha_enabled          = true
  leader_ca_cert_file = %q
}
listener "tcp" {
  address                            = "127.0.0.1:%d"
  tls_cert_file                      = %q
  tls_key_file                       = %q
  tls_client_ca_file                 = %q
  tls_require_and_verify_client_cert = true
}
api_addr  = %q
log_level = "warn"
seal "static" {
  current_key_id = "k1"
  current_key    = "file://%s"
}
audit "file" {
  file_path = %q
}
`, db.AdminURL(), ca.file, port, certFile, keyFile, ca.file, n.url, sealKey, n.auditLog)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		n.r = start(t, "-config", cfgPath)
		nodes = append(nodes, n)
	}

	opCert, opKey := ca.issue("operator", x509.ExtKeyUsageClientAuth)
	pool, err := loadCAs("ca", ca.file)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{*reloaderOf(t, opCert, opKey).cert.Load()},
	}}}
	call := func(n *node, method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, n.url+"/v1/"+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("X-Vault-Token", token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, map[string]any{"error": err.Error()}
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: gave up; node1: %s; node2: %s", what, nodes[0].r.stderr, nodes[1].r.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, n := range nodes {
		waitFor("health", func() bool { code, _ := call(n, "GET", "sys/health", "", ""); return code != 0 })
	}
	code, init := call(nodes[0], "PUT", "sys/init", "", `{"recovery_shares":1,"recovery_threshold":1}`)
	if code != 200 {
		t.Fatalf("init: %d %v", code, init)
	}
	root := init["root_token"].(string)
	var active, standby *node
	waitFor("one active, one standby", func() bool {
		c1, _ := call(nodes[0], "GET", "sys/health", "", "")
		c2, _ := call(nodes[1], "GET", "sys/health", "", "")
		switch {
		case c1 == 200 && c2 == 429:
			active, standby = nodes[0], nodes[1]
		case c1 == 429 && c2 == 200:
			active, standby = nodes[1], nodes[0]
		default:
			return false
		}
		return true
	})

	if code, out := call(standby, "POST", "sys/mounts/kv", root, `{"type":"kv","options":{"version":"2"}}`); code != 204 {
		t.Fatalf("mount through the standby: %d %v", code, out)
	}
	if code, out := call(standby, "PUT", "kv/data/model", root, `{"data":{"api_key":"sk-forwarded"}}`); code != 200 {
		t.Fatalf("write through the standby: %d %v", code, out)
	}
	code, out := call(active, "GET", "kv/data/model", root, "")
	if data, _ := out["data"].(map[string]any); code != 200 || data["data"].(map[string]any)["api_key"] != "sk-forwarded" {
		t.Fatalf("read from the active: %d %v", code, out)
	}

	// The active recorded the write with the operator's certificate, not
	// the standby's.
	raw, err := os.ReadFile(active.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for line := range strings.Lines(string(raw)) {
		if strings.Contains(line, `"path":"kv/data/model"`) && strings.Contains(line, `"operation":"create"`) {
			if !strings.Contains(line, `"client_certificate_subject":"CN=operator"`) {
				t.Fatalf("forwarded write recorded as %s", line)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("no entry of the forwarded write in the active's log:\n%s", raw)
	}
}
