package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

type running struct {
	stdout, stderr *testlog.Buffer
	cancel         context.CancelFunc
	reload         chan os.Signal
	done           chan int
}

func start(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}, cancel: cancel, reload: make(chan os.Signal, 1), done: make(chan int, 1)}
	go func() { r.done <- Run(ctx, args, r.stdout, r.stderr, r.reload) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	return r
}

// waitOutput waits until re matches stdout and returns the first group.
func (r *running) waitOutput(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(r.stdout.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-r.done:
			t.Fatalf("server exited with %d: %s", code, r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %v in output; stderr: %s", re, r.stderr.String())
	return ""
}

func getJSON(t *testing.T, c *http.Client, url, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

var addrRe = regexp.MustCompile(`VIGIL_ADDR='([^']+)'`)

func TestDevServer(t *testing.T) {
	r := start(t, "-dev", "-dev-listen-address", "127.0.0.1:0", "-dev-root-token-id", "dev-root")
	url := r.waitOutput(t, addrRe)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("address %q", url)
	}
	out := r.stdout.String()
	if !strings.Contains(out, "Root Token: dev-root") || !strings.Contains(out, "Unseal Key: ") {
		t.Fatalf("banner: %s", out)
	}
	code, body := getJSON(t, http.DefaultClient, url+"/v1/sys/internal/ui/mounts/secret", "dev-root")
	if code != 200 || body["data"].(map[string]any)["options"].(map[string]any)["version"] != "2" {
		t.Fatalf("secret/ mount: %d %v", code, body)
	}
	r.cancel()
	if code := <-r.done; code != 0 {
		t.Fatalf("exit code %d: %s", code, r.stderr.String())
	}
	r.done <- 0 // for the cleanup
}

func TestDevTLS(t *testing.T) {
	dir := t.TempDir()
	r := start(t, "-dev", "-dev-tls", "-dev-tls-cert-dir", dir, "-dev-listen-address", "127.0.0.1:0")
	url := r.waitOutput(t, addrRe)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("address %q", url)
	}
	caFile := r.waitOutput(t, regexp.MustCompile(`VIGIL_CACERT='([^']+)'`))
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(caFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA file: %v", err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, _ := getJSON(t, c, url+"/v1/sys/health", ""); code != 200 {
		t.Fatalf("health over TLS = %d", code)
	}
	// Without the CA the certificate is not trusted.
	if _, err := http.Get(url + "/v1/sys/health"); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
	if fi, err := os.Stat(filepath.Join(dir, "vigil-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
}

func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		l  config.Listener
		ok bool
	}{
		{config.Listener{Type: "tcp", Address: "127.0.0.1:0"}, true},
		{config.Listener{Type: "tcp", Address: "[::1]:0"}, true},
		{config.Listener{Type: "tcp", Address: "0.0.0.0:0"}, false},
		{config.Listener{Type: "tcp", Address: "0.0.0.0:0", TLSDisable: true}, true},
	} {
		lns, _, err := listen([]config.Listener{tc.l})
		if (err == nil) != tc.ok {
			t.Errorf("%+v: err = %v", tc.l, err)
		}
		if err != nil && !strings.Contains(err.Error(), "tls_disable") {
			t.Errorf("error does not say how to fix it: %v", err)
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
}

func TestConfigErrorsExit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.hcl")
	os.WriteFile(path, []byte("storage \"inmem\" {}\nlistener \"tcp\" {\n  adress = \"127.0.0.1:0\"\n}\n"), 0o600)
	var stderr bytes.Buffer
	if code := Run(context.Background(), []string{"-config", path}, io.Discard, &stderr, nil); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "bad.hcl:3") {
		t.Fatalf("error does not name the line: %s", stderr.String())
	}
	if code := Run(context.Background(), nil, io.Discard, io.Discard, nil); code != 2 {
		t.Fatalf("no config: exit %d", code)
	}
	if code := Run(context.Background(), []string{"-bogus"}, io.Discard, io.Discard, nil); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
}

// A config-file server over bolt with TLS: SIGHUP swaps in a new
// certificate without a restart.
func TestConfigServerTLSReload(t *testing.T) {
	dir := t.TempDir()
	first, err := generateDevTLS(filepath.Join(dir, "a"), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := generateDevTLS(filepath.Join(dir, "b"), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(d *devTLS) {
		for src, dst := range map[string]string{d.certFile: certFile, d.keyFile: keyFile} {
			b, _ := os.ReadFile(src)
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(first)
	port := freePort(t)
	cfgPath := filepath.Join(dir, "vigil.hcl")
	cfg := fmt.Sprintf(`storage "bolt" { path = %q }
listener "tcp" {
  address       = "127.0.0.1:%d"
  tls_cert_file = %q
  tls_key_file  = %q
}
log_level = "warn"
`, filepath.Join(dir, "data", "vigil.db"), port, certFile, keyFile)
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	r := start(t, "-config", cfgPath)
	url := fmt.Sprintf("https://127.0.0.1:%d/v1/sys/health", port)
	trusting := func(d *devTLS) *http.Client {
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(d.caFile)
		pool.AppendCertsFromPEM(pem)
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	}
	waitCode := func(c *http.Client, want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		var last error
		for time.Now().Before(deadline) {
			resp, err := c.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == want {
					return
				}
				last = fmt.Errorf("status %d", resp.StatusCode)
			} else {
				last = err
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("health never answered %d: %v; stderr: %s", want, last, r.stderr.String())
	}
	waitCode(trusting(first), 501) // uninitialized
	install(second)
	r.reload <- os.Interrupt // any signal value: the channel is the SIGHUP
	waitCode(trusting(second), 501)
	if _, err := trusting(first).Get(url); err == nil {
		t.Fatal("old certificate still served after reload")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	lns, _, err := listen([]config.Listener{{Type: "tcp", Address: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer lns[0].Close()
	var port int
	fmt.Sscanf(lns[0].Addr().String()[strings.LastIndex(lns[0].Addr().String(), ":")+1:], "%d", &port)
	return port
}

// A listener for scrapers: sys/metrics without a token there, and only
// there; the telemetry block turns the Prometheus format off as Vault's
// prometheus_retention_time = 0 does.
func TestConfigMetricsListener(t *testing.T) {
	dir := t.TempDir()
	api, scrape := freePort(t), freePort(t)
	cfgPath := filepath.Join(dir, "vigil.hcl")
	cfg := fmt.Sprintf(`storage "inmem" {}
listener "tcp" { address = "127.0.0.1:%d" }
listener "tcp" {
  address = "127.0.0.1:%d"
  telemetry { unauthenticated_metrics_access = true }
}
telemetry { prometheus_retention_time = 0 }
log_level = "warn"
`, api, scrape)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, "-config", cfgPath)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/v1/sys/metrics", scrape)
	var code int
	var body map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(metricsURL); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body = getJSON(t, http.DefaultClient, metricsURL, ""); code != 200 {
		t.Fatalf("scraper listener, no token: %d %v; stderr %s", code, body, r.stderr.String())
	}
	unsealed := -1.0
	for _, g := range body["Gauges"].([]any) {
		if g := g.(map[string]any); g["Name"] == "vault_core_unsealed" {
			unsealed = g["Value"].(float64)
		}
	}
	if unsealed != 0 {
		t.Errorf("uninitialized server: vault_core_unsealed = %v", unsealed)
	}
	if code, body = getJSON(t, http.DefaultClient, metricsURL+"?format=prometheus", ""); code != 400 {
		t.Errorf("prometheus format with retention 0: %d %v", code, body)
	}
	apiURL := fmt.Sprintf("http://127.0.0.1:%d/v1/sys/metrics", api)
	if code, body = getJSON(t, http.DefaultClient, apiURL, ""); code != 503 {
		t.Errorf("API listener, sealed, no token: %d %v", code, body)
	}
}

// TestInertVaultKeysAreLogged: ui and cluster_addr load, as in Vault
// configurations, and the server says at start that they do nothing.
func TestInertVaultKeysAreLogged(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "vigil.hcl")
	cfg := fmt.Sprintf(`storage "inmem" {}
listener "tcp" { address = "127.0.0.1:%d" }
ui           = true
cluster_addr = "https://10.0.0.11:8201"
`, freePort(t))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, "-config", cfgPath)
	deadline := time.Now().Add(20 * time.Second)
	for _, want := range []string{"Vigil serves no web UI", "cluster_addr is accepted but does nothing"} {
		for !strings.Contains(r.stderr.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", want, r.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
