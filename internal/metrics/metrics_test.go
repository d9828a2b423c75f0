package metrics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigil-secrets/vigil/internal/metrics"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

func client(t *testing.T, s *testcluster.Server, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = s.URL
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// get sends GET path with token (none when empty) and extra headers.
func get(t *testing.T, s *testcluster.Server, path, token string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// scrape reads sys/metrics in the Prometheus format and parses it.
func scrape(t *testing.T, s *testcluster.Server, token string) map[string]*dto.MetricFamily {
	t.Helper()
	status, hdr, body := get(t, s, "/v1/sys/metrics?format=prometheus", token, nil)
	if status != http.StatusOK {
		t.Fatalf("scrape: %d %s", status, body)
	}
	if ct := hdr.Get("Content-Type"); ct != metrics.PrometheusContentType {
		t.Fatalf("scrape: content type %q", ct)
	}
	return parse(t, body)
}

func parse(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse the Prometheus text: %v\n%s", err, body)
	}
	return fams
}

// find returns the series of family name whose labels include want, or
// nil.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// labelNames returns the label names of family name's first series.
func labelNames(fams map[string]*dto.MetricFamily, name string) []string {
	f := fams[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return nil
	}
	var out []string
	for _, l := range f.GetMetric()[0].GetLabel() {
		out = append(out, l.GetName())
	}
	return out
}

// TestNamesAndLabels drives a KV write and read, a denied request, an
// AppRole login that works and one that fails, an audit device and a
// lease, and checks every metric the server promises by name, type and
// labels.
func TestNamesAndLabels(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root := client(t, s, s.RootToken)
	ctx := context.Background()
	if err := root.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": filepath.Join(t.TempDir(), "audit.log")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").Put(ctx, "model/openai", map[string]any{"api_key": "sk-live-0123456789"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").Get(ctx, "model/openai"); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/trainer", map[string]any{"token_ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	rid, err := root.Logical().Read("auth/approle/role/trainer/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := root.Logical().Write("auth/approle/role/trainer/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	anon := client(t, s, "")
	login, err := anon.Logical().Write("auth/approle/login", map[string]any{
		"role_id": rid.Data["role_id"], "secret_id": sid.Data["secret_id"],
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Logical().Write("auth/approle/login", map[string]any{
		"role_id": "an-attackers-role-name", "secret_id": "wrong",
	}); err == nil {
		t.Fatal("login with a wrong secret id worked")
	}
	// The login's token (default policy) may not read the secret.
	if _, err := client(t, s, login.Auth.ClientToken).KVv2("secret").Get(ctx, "model/openai"); err == nil {
		t.Fatal("default policy read a secret")
	}

	if status, _, _ := get(t, s, "/v1/nowhere/x", s.RootToken, nil); status != http.StatusNotFound {
		t.Fatalf("unrouted path: %d", status)
	}

	fams := scrape(t, s, s.RootToken)

	for _, tc := range []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string
		min    float64 // at least this value (a histogram: this many samples)
	}{
		{"vault_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"mount": "secret/", "operation": "read", "status": "200"}, 1},
		{"vault_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"mount": "secret/", "operation": "update", "status": "200"}, 1},
		{"vault_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"mount": "secret/", "operation": "read", "status": "403"}, 1},
		{"vault_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"mount": "auth/approle/", "operation": "update", "status": "400"}, 1},
		{"vault_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"mount": "none", "operation": "read", "status": "404"}, 1},
		{"vault_logins_total", dto.MetricType_COUNTER, map[string]string{"method": "approle", "mount": "auth/approle/", "role": "trainer", "result": "success"}, 1},
		{"vault_logins_total", dto.MetricType_COUNTER, map[string]string{"method": "approle", "mount": "auth/approle/", "role": "", "result": "failure"}, 1},
		{"vault_audit_log_entries_total", dto.MetricType_COUNTER, map[string]string{"device": "file/"}, 10},
		{"vault_audit_log_failures_total", dto.MetricType_COUNTER, map[string]string{"device": "file/"}, 0},
		{"vault_audit_device_healthy", dto.MetricType_GAUGE, map[string]string{"device": "file/"}, 1},
		{"vault_expire_num_leases", dto.MetricType_GAUGE, map[string]string{"mount": "auth/approle/"}, 1},
		{"vault_expire_num_leases", dto.MetricType_GAUGE, map[string]string{"mount": "secret/"}, 0},
		{"vault_expire_num_irrevocable_leases", dto.MetricType_GAUGE, nil, 0},
		{"vault_expire_leases_expired_total", dto.MetricType_COUNTER, nil, 0},
		{"vault_expire_revoke_failures_total", dto.MetricType_COUNTER, nil, 0},
		{"vault_core_unsealed", dto.MetricType_GAUGE, nil, 1},
		{"vault_storage_operation_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"backend": "inmem", "operation": "get"}, 1},
		{"vault_storage_operation_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"backend": "inmem", "operation": "put"}, 1},
		{"go_goroutines", dto.MetricType_GAUGE, nil, 1},
	} {
		f := fams[tc.name]
		if f == nil {
			t.Errorf("no family %s", tc.name)
			continue
		}
		if f.GetType() != tc.typ {
			t.Errorf("%s is a %v, want %v", tc.name, f.GetType(), tc.typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s has no help text", tc.name)
		}
		m := find(fams, tc.name, tc.labels)
		if m == nil {
			t.Errorf("no series %s%v", tc.name, tc.labels)
			continue
		}
		if v := value(m); v < tc.min {
			t.Errorf("%s%v = %v, want at least %v", tc.name, tc.labels, v, tc.min)
		}
	}
	if v := value(find(fams, "vault_expire_num_leases", map[string]string{"mount": "auth/approle/"})); v != 1 {
		t.Errorf("leases of auth/approle/ = %v, want the one login's", v)
	}
	// Exact label sets (sorted by name, as the text format has them): a
	// new label is a deliberate change of this test.
	for name, want := range map[string]string{
		"vault_request_duration_seconds":           "mount,operation,status",
		"vault_logins_total":                       "method,mount,result,role",
		"vault_audit_log_entries_total":            "device",
		"vault_expire_num_leases":                  "mount",
		"vault_storage_operation_duration_seconds": "backend,operation",
		"vault_core_unsealed":                      "",
	} {
		if got := strings.Join(labelNames(fams, name), ","); got != want {
			t.Errorf("%s labels = %q, want %q", name, got, want)
		}
	}
	// A failed login's role is whatever the client sent: it never
	// becomes a label value.
	for _, m := range fams["vault_logins_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "attacker") || strings.Contains(l.GetValue(), "wrong") {
				t.Errorf("client input became a label: %v", m)
			}
		}
	}
}

// TestJSON checks the default format: Vault's in-memory dump shape.
func TestJSON(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	if status, _, body := get(t, s, "/v1/sys/mounts", s.RootToken, nil); status != http.StatusOK {
		t.Fatalf("sys/mounts: %d %s", status, body)
	}
	status, hdr, body := get(t, s, "/v1/sys/metrics", s.RootToken, nil)
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s: %s", status, hdr.Get("Content-Type"), body)
	}
	var d struct {
		Timestamp string
		Gauges    []struct {
			Name   string
			Value  float64
			Labels map[string]string
		}
		Points   []any
		Counters []struct {
			Name  string
			Count int64
			Sum   float64
		}
		Samples []struct {
			Name   string
			Count  uint64
			Sum    float64
			Mean   float64
			Labels map[string]string
		}
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Timestamp == "" || d.Points == nil {
		t.Errorf("timestamp %q, points %v", d.Timestamp, d.Points)
	}
	unsealed := false
	for _, g := range d.Gauges {
		if g.Name == "vault_core_unsealed" && g.Value == 1 {
			unsealed = true
		}
	}
	if !unsealed {
		t.Error("no vault_core_unsealed gauge of 1")
	}
	found := false
	for _, sm := range d.Samples {
		if sm.Name == "vault_request_duration_seconds" && sm.Labels["mount"] == "sys/" && sm.Count > 0 && sm.Mean > 0 && sm.Mean*float64(sm.Count)-sm.Sum < 1e-9 {
			found = true
		}
	}
	if !found {
		t.Errorf("no sample of the request histogram for sys/: %s", body)
	}
	if len(d.Counters) == 0 {
		t.Error("no counters")
	}
}

// TestAccessAndFormats covers who may read sys/metrics and how the format
// is chosen.
func TestAccessAndFormats(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{InMemory: true})
	root := client(t, s, s.RootToken)
	if err := root.Sys().PutPolicy("scraper", `path "sys/metrics" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"scraper"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	if status, _, body := get(t, s, "/v1/sys/metrics", "", nil); status != http.StatusForbidden {
		t.Errorf("without a token: %d %s", status, body)
	}
	if status, _, body := get(t, s, "/v1/sys/metrics", other.Auth.ClientToken, nil); status != http.StatusForbidden {
		t.Errorf("default policy: %d %s", status, body)
	}
	scrape(t, s, tok.Auth.ClientToken)
	// A scraper's Accept header asks for the text format.
	status, hdr, _ := get(t, s, "/v1/sys/metrics", tok.Auth.ClientToken, map[string]string{
		"Accept": "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1",
	})
	if status != http.StatusOK || hdr.Get("Content-Type") != metrics.PrometheusContentType {
		t.Errorf("Accept of a scraper: %d %q", status, hdr.Get("Content-Type"))
	}
	status, _, body := get(t, s, "/v1/sys/metrics?format=xml", s.RootToken, nil)
	if status != http.StatusBadRequest || !strings.Contains(string(body), `unknown metrics format`) {
		t.Errorf("format=xml: %d %s", status, body)
	}
	if status, _, body := get(t, s, "/v1/sys/metrics", "", nil); status != http.StatusForbidden {
		t.Errorf("after all that, without a token: %d %s", status, body)
	}
}

func TestPrometheusDisabled(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{InMemory: true, DisablePrometheus: true})
	status, _, body := get(t, s, "/v1/sys/metrics?format=prometheus", s.RootToken, nil)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "prometheus is not enabled") {
		t.Errorf("%d %s", status, body)
	}
	if status, _, body := get(t, s, "/v1/sys/metrics", s.RootToken, nil); status != http.StatusOK {
		t.Errorf("JSON: %d %s", status, body)
	}
}

// TestUnauthenticated is a scraper's listener: no token, and it answers
// while sealed (with the seal gauge at 0).
func TestUnauthenticated(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{InMemory: true, Sealed: true, UnauthenticatedMetrics: true})
	status, hdr, body := get(t, s, "/v1/sys/metrics", "", map[string]string{"Accept": "text/plain"})
	if status != http.StatusOK || hdr.Get("Content-Type") != metrics.PrometheusContentType {
		t.Fatalf("sealed, no token: %d %q %s", status, hdr.Get("Content-Type"), body)
	}
	fams := parse(t, body)
	if v := value(find(fams, "vault_core_unsealed", nil)); v != 0 {
		t.Errorf("sealed: vault_core_unsealed = %v", v)
	}
	if fams["vault_expire_num_leases"] != nil || fams["vault_audit_log_entries_total"] != nil {
		t.Error("sealed server reports leases or audit devices")
	}
	// Everything else still needs the server unsealed.
	if status, _, _ := get(t, s, "/v1/sys/mounts", s.RootToken, nil); status != http.StatusServiceUnavailable {
		t.Errorf("sys/mounts while sealed: %d", status)
	}
	s.Unseal(t)
	fams = scrape(t, s, "")
	if v := value(find(fams, "vault_core_unsealed", nil)); v != 1 {
		t.Errorf("unsealed: vault_core_unsealed = %v", v)
	}
	if find(fams, "vault_request_duration_seconds", map[string]string{"mount": "none", "operation": "read", "status": "503"}) == nil {
		t.Error("the 503 of sys/mounts while sealed was not counted")
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/sys/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST sys/metrics: %d", resp.StatusCode)
	}
}
