package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const full = `# a production-like server
storage "bolt" {
  path = "/var/lib/vigil/vigil.db"
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  tls_cert_file   = "/etc/vigil/tls.crt"
  tls_key_file    = "/etc/vigil/tls.key"
  tls_min_version = "tls13"
  max_request_size = 1048576
  max_request_duration = "30s"
  x_forwarded_for_authorized_addrs = "10.0.0.0/8, 192.168.1.1"
}

listener "tcp" {
  address     = "127.0.0.1:8201"
  tls_disable = "true"
  x_forwarded_for_authorized_addrs = ["::1"]
  telemetry {
    unauthenticated_metrics_access = true
  }
}

api_addr          = "https://vigil.internal:8200"
cluster_name      = "ml-platform"
log_level         = "debug"
log_format        = "json"
ui                = true
disable_mlock     = 1
default_lease_ttl = "1h"
max_lease_ttl     = 86400
login_rate_limit  = 200
login_burst       = 400

audit "file" {
  file_path = "/var/log/vigil/audit.log"
  mode      = "0640"
  fsync     = true
}

audit "socket" {
  path          = "siem"
  description   = "to the SIEM"
  address       = "10.0.0.9:9090"
  write_timeout = 2
}

telemetry {
  prometheus_retention_time = "30s"
  disable_hostname          = true
}
`

func TestFullConfig(t *testing.T) {
	cfg, err := Parse("vigil.hcl", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.Type != "bolt" || cfg.Storage.Bolt.Path != "/var/lib/vigil/vigil.db" || cfg.Storage.Line != 2 {
		t.Fatalf("storage %+v", cfg.Storage)
	}
	if len(cfg.Listeners) != 2 {
		t.Fatalf("%d listeners", len(cfg.Listeners))
	}
	l := cfg.Listeners[0]
	if l.Address != "0.0.0.0:8200" || l.TLSCertFile == "" || l.TLSMinVersion != "tls13" || l.TLSDisable ||
		l.MaxRequestSize != 1<<20 || l.MaxRequestDuration != 30*time.Second || l.Line != 6 {
		t.Fatalf("listener 0 %+v", l)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32")}
	if len(l.XForwardedForAuthorizedAddrs) != 2 || l.XForwardedForAuthorizedAddrs[0] != want[0] || l.XForwardedForAuthorizedAddrs[1] != want[1] {
		t.Fatalf("xff %v", l.XForwardedForAuthorizedAddrs)
	}
	l = cfg.Listeners[1]
	if cfg.Listeners[0].UnauthenticatedMetricsAccess {
		t.Fatal("listener 0 serves metrics without a token")
	}
	if !l.TLSDisable || l.MaxRequestSize != DefaultMaxRequestSize || l.MaxRequestDuration != DefaultMaxRequestDuration ||
		l.XForwardedForAuthorizedAddrs[0] != netip.MustParsePrefix("::1/128") || !l.UnauthenticatedMetricsAccess {
		t.Fatalf("listener 1 %+v", l)
	}
	if cfg.APIAddr != "https://vigil.internal:8200" || cfg.ClusterName != "ml-platform" || cfg.LogLevel != "debug" ||
		cfg.LogFormat != "json" || !cfg.UI || !cfg.DisableMlock || cfg.DefaultLeaseTTL != time.Hour || cfg.MaxLeaseTTL != 24*time.Hour ||
		cfg.LoginRateLimit != 200 || cfg.LoginBurst != 400 {
		t.Fatalf("top level %+v", cfg)
	}
	if cfg.Telemetry.DisablePrometheus || !cfg.Telemetry.DisableHostname {
		t.Fatalf("telemetry %+v", cfg.Telemetry)
	}
	if len(cfg.Audit) != 2 {
		t.Fatalf("%d audit devices", len(cfg.Audit))
	}
	if a := cfg.Audit[0]; a.Type != "file" || a.Path != "file/" || a.Options["file_path"] != "/var/log/vigil/audit.log" ||
		a.Options["mode"] != "0640" || a.Options["fsync"] != "true" || a.Line != 36 {
		t.Fatalf("audit 0 %+v", a)
	}
	if a := cfg.Audit[1]; a.Type != "socket" || a.Path != "siem/" || a.Description != "to the SIEM" ||
		a.Options["address"] != "10.0.0.9:9090" || a.Options["write_timeout"] != "2" || len(a.Options) != 2 {
		t.Fatalf("audit 1 %+v", a)
	}
}

func TestInmemAndDefaults(t *testing.T) {
	cfg, err := Parse("c.hcl", []byte("storage \"inmem\" {}\nlistener \"tcp\" {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.Type != "inmem" || cfg.Storage.Bolt != nil || cfg.Listeners[0].Address != DefaultAddress {
		t.Fatalf("%+v", cfg)
	}
}

func TestPostgresStorage(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      PostgresStorage
	}{
		{"typed values", `storage "postgresql" {
  connection_url       = "postgres://vigil:pw@db:5432/vigil?sslmode=verify-full"
  table                = "vigil.kv"
  ha_enabled           = true
  ha_table             = "vigil.locks"
  max_parallel         = 64
  max_idle_connections = 4
}
listener "tcp" {}
`, PostgresStorage{
			ConnectionURL: "postgres://vigil:pw@db:5432/vigil?sslmode=verify-full",
			Table:         "vigil.kv", HAEnabled: true, HATable: "vigil.locks",
			MaxParallel: 64, MaxIdleConnections: 4,
		}},
		// Vault's documentation writes these as strings.
		{"strings as in Vault", `storage "postgresql" {
  connection_url = "postgres://db/vigil"
  ha_enabled     = "true"
  max_parallel   = "128"
  max_idle_connections = "0"
}
listener "tcp" {}
`, PostgresStorage{ConnectionURL: "postgres://db/vigil", HAEnabled: true, MaxParallel: 128}},
		// What a standby trusts and presents when it forwards.
		{"leader TLS", `storage "postgresql" {
  ha_enabled              = true
  leader_ca_cert_file     = "/etc/vigil/ca.pem"
  leader_client_cert_file = "/etc/vigil/node.pem"
  leader_client_key_file  = "/etc/vigil/node-key.pem"
}
listener "tcp" {}
`, PostgresStorage{HAEnabled: true, LeaderCACertFile: "/etc/vigil/ca.pem",
			LeaderClientCertFile: "/etc/vigil/node.pem", LeaderClientKeyFile: "/etc/vigil/node-key.pem"}},
		// The URL may come from the environment instead.
		{"no connection_url", "storage \"postgresql\" {}\nlistener \"tcp\" {}\n", PostgresStorage{}},
		{"json", `{"storage": {"postgresql": {"connection_url": "postgres://db/v", "ha_enabled": "false", "max_parallel": 8}}, "listener": {"tcp": {}}}`,
			PostgresStorage{ConnectionURL: "postgres://db/v", MaxParallel: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("vigil.hcl", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Storage.Type != "postgresql" || cfg.Storage.Postgres == nil || cfg.Storage.Bolt != nil {
				t.Fatalf("storage = %+v", cfg.Storage)
			}
			if *cfg.Storage.Postgres != tc.want {
				t.Fatalf("postgresql = %+v, want %+v", *cfg.Storage.Postgres, tc.want)
			}
		})
	}
}

func TestJSONConfig(t *testing.T) {
	src := `{"storage": {"bolt": {"path": "/tmp/v.db"}}, "listener": [{"tcp": {"address": "127.0.0.1:9200", "tls_disable": true}}], "ui": false}`
	cfg, err := Parse("c.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.Bolt.Path != "/tmp/v.db" || cfg.Listeners[0].Address != "127.0.0.1:9200" || !cfg.Listeners[0].TLSDisable {
		t.Fatalf("%+v", cfg)
	}
}

func TestErrorsNameTheLine(t *testing.T) {
	base := "storage \"inmem\" {}\nlistener \"tcp\" {}\n"
	for _, tc := range []struct {
		name, src string
		line      int
		text      string
	}{
		{"unknown top-level key", base + "listner \"tcp\" {}\n", 3, `unknown key "listner"`},
		{"unknown listener key", "storage \"inmem\" {}\nlistener \"tcp\" {\n  adress = \"x\"\n}\n", 3, `unknown key "adress"`},
		{"unknown bolt key", "storage \"bolt\" {\n  path = \"x\"\n  pth = \"y\"\n}\nlistener \"tcp\" {}\n", 3, `unknown key "pth"`},
		{"inmem takes no keys", "storage \"inmem\" {\n  path = \"x\"\n}\nlistener \"tcp\" {}\n", 2, `unknown key "path"`},
		{"bolt without path", "storage \"bolt\" {}\nlistener \"tcp\" {}\n", 1, "needs a path"},
		{"unknown storage", "storage \"consul\" {}\nlistener \"tcp\" {}\n", 1, "supported types are bolt, inmem and postgresql"},
		{"postgres is spelled postgresql", "storage \"postgres\" {}\nlistener \"tcp\" {}\n", 1, "unsupported storage type \"postgres\""},
		{"unknown postgresql key", "storage \"postgresql\" {\n  connection_url = \"x\"\n  upsert_function = \"f\"\n}\nlistener \"tcp\" {}\n", 3, `unknown key "upsert_function" in storage "postgresql"`},
		{"bad ha_enabled", "storage \"postgresql\" {\n  ha_enabled = \"yes\"\n}\nlistener \"tcp\" {}\n", 2, "ha_enabled must be true or false"},
		{"bad max_parallel", "storage \"postgresql\" {\n  max_parallel = \"lots\"\n}\nlistener \"tcp\" {}\n", 2, "max_parallel must be a whole number"},
		{"zero max_parallel", "storage \"postgresql\" {\n\n  max_parallel = 0\n}\nlistener \"tcp\" {}\n", 3, "max_parallel must be between 1"},
		{"leader client cert without key", "listener \"tcp\" {}\nstorage \"postgresql\" {\n  leader_client_cert_file = \"c.pem\"\n}\n", 2, "both leader_client_cert_file and leader_client_key_file"},
		{"negative max_idle_connections", "storage \"postgresql\" {\n  max_idle_connections = -1\n}\nlistener \"tcp\" {}\n", 2, "max_idle_connections must be between 0"},
		{"table not a string", "storage \"postgresql\" {\n  table = 5\n}\nlistener \"tcp\" {}\n", 2, "table must be a string"},
		{"two storages", base + "storage \"inmem\" {}\n", 3, "only one storage"},
		{"bad bool", "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = \"maybe\"\n}\n", 3, "tls_disable must be true or false"},
		{"bad ui", base + "ui = \"yes\"\n", 3, "ui must be true or false"},
		{"bad duration", base + "max_lease_ttl = \"forever\"\n", 3, "max_lease_ttl must be a duration"},
		{"bad level", base + "log_level = \"loud\"\n", 3, "invalid log_level"},
		{"bad format", base + "log_format = \"xml\"\n", 3, "invalid log_format"},
		{"bad tls version", "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_min_version = \"tls10\"\n}\n", 3, "tls_min_version"},
		{"cert without key", "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_cert_file = \"c\"\n}\n", 2, "must be set together"},
		{"negative size", "storage \"inmem\" {}\nlistener \"tcp\" {\n  max_request_size = -1\n}\n", 3, "negative"},
		{"bad cidr", "storage \"inmem\" {}\nlistener \"tcp\" {\n  x_forwarded_for_authorized_addrs = \"10.0.0.0/99\"\n}\n", 3, "invalid address"},
		{"bad listener type", "storage \"inmem\" {}\nlistener \"unix\" {}\n", 2, "unsupported listener type"},
		{"bad address", "storage \"inmem\" {}\nlistener \"tcp\" {\n address = \"nope\"\n}\n", 2, "host:port"},
		{"string for a string key", base + "api_addr = 8200\n", 3, "api_addr must be a string"},
		{"syntax", base + "ui = {\n", 0, "syntax error"},
		{"ttl order", base + "default_lease_ttl = \"2h\"\nmax_lease_ttl = \"1h\"\n", 0, "must not exceed"},
		{"zero login rate", base + "login_rate_limit = 0\n", 3, "login_rate_limit must be at least 1"},
		{"login burst not a number", base + "login_burst = \"many\"\n", 3, "login_burst"},
		{"unknown audit type", base + "audit \"http\" {\n}\n", 3, "unsupported audit device type"},
		{"file audit without a path", base + "audit \"file\" {\n  mode = \"0600\"\n}\n", 3, "needs file_path"},
		{"audit option not a literal", base + "audit \"file\" {\n  file_path = [\"a\"]\n}\n", 4, "must be a string, number or boolean"},
		{"audit path twice", base + "audit \"file\" {\n  file_path = \"a\"\n}\naudit \"file\" {\n  file_path = \"b\"\n}\n", 6, "declared twice"},
		{"telemetry push sink", base + "telemetry {\n  statsd_address = \"x:8125\"\n}\n", 4, `unknown key "statsd_address" in telemetry`},
		{"telemetry with a label", base + "telemetry \"x\" {\n}\n", 3, "telemetry takes no label"},
		{"bad retention", base + "telemetry {\n  prometheus_retention_time = \"soon\"\n}\n", 4, "prometheus_retention_time must be a duration"},
		{"unauthenticated metrics at the top", base + "telemetry {\n  unauthenticated_metrics_access = true\n}\n", 4, "belongs in a listener"},
		{"unknown listener telemetry key", "storage \"inmem\" {}\nlistener \"tcp\" {\n  telemetry {\n    usage = 1\n  }\n}\n", 4, `unknown key "usage" in listener telemetry`},
		{"bad unauthenticated metrics", "storage \"inmem\" {}\nlistener \"tcp\" {\n  telemetry {\n    unauthenticated_metrics_access = \"sure\"\n  }\n}\n", 4, "must be true or false"},
		{"client cert without a CA", "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_require_and_verify_client_cert = true\n}\n", 2, "needs tls_client_ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantParseError(t, tc.src, tc.line, tc.text) })
	}
	for _, src := range []string{"listener \"tcp\" {}\n", "storage \"inmem\" {}\n"} {
		if _, err := Parse("x.hcl", []byte(src)); err == nil {
			t.Errorf("accepted %q", src)
		}
	}
}

// wantParseError parses src as vigil.hcl and checks that it fails with a
// ParseError at line (any line when 0) whose text has text.
func wantParseError(t *testing.T, src string, line int, text string) error {
	t.Helper()
	_, err := Parse("vigil.hcl", []byte(src))
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a ParseError", err)
	}
	if line != 0 && pe.Line != line {
		t.Errorf("line %d, want %d (%v)", pe.Line, line, err)
	}
	if !strings.Contains(err.Error(), text) || !strings.HasPrefix(err.Error(), "vigil.hcl") {
		t.Errorf("error %q lacks %q", err, text)
	}
	return err
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.hcl")
	os.WriteFile(path, []byte(full), 0o600)
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path + ".missing"); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8200": true, "[::1]:8200": true, "localhost:8200": true, "127.1.2.3:1": true,
		"0.0.0.0:8200": false, ":8200": false, "10.0.0.1:8200": false, "[::]:8200": false, "vigil.internal:8200": false,
	} {
		if got := (Listener{Address: addr}).Loopback(); got != want {
			t.Errorf("Loopback(%s) = %v", addr, got)
		}
	}
}

func TestDev(t *testing.T) {
	cfg := Dev("")
	if cfg.Storage.Type != "inmem" || cfg.Listeners[0].Address != DefaultAddress || !cfg.Listeners[0].TLSDisable {
		t.Fatalf("%+v", cfg)
	}
	if Dev("127.0.0.1:9999").Listeners[0].Address != "127.0.0.1:9999" {
		t.Fatal("address ignored")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(`{"storage":{"inmem":{}}}`))
	f.Add([]byte("max_lease_ttl = 99999999999999999999999\n"))
	f.Add([]byte("storage \"postgresql\" {\n connection_url = \"postgres://db/v\"\n ha_enabled = \"true\"\n max_parallel = \"99999999999999999999\"\n}\nlistener \"tcp\" {}\n"))
	f.Add([]byte(sealBase + "seal \"pkcs11\" {\n lib = \"/l.so\"\n slot = 99999999999\n key_label = \"k\"\n mechanism = 0x1087\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		_, _ = Parse("fuzz.hcl", src) // must not panic
	})
}

func TestTelemetry(t *testing.T) {
	base := "storage \"inmem\" {}\nlistener \"tcp\" {}\n"
	for src, off := range map[string]bool{
		"":               false,
		"telemetry {}\n": false,
		"telemetry {\n prometheus_retention_time = 0\n}\n":       true,
		"telemetry {\n prometheus_retention_time = \"0s\"\n}\n":  true,
		"telemetry {\n prometheus_retention_time = \"24h\"\n}\n": false,
	} {
		cfg, err := Parse("c.hcl", []byte(base+src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if cfg.Telemetry.DisablePrometheus != off {
			t.Errorf("%q: DisablePrometheus = %v, want %v", src, cfg.Telemetry.DisablePrometheus, off)
		}
	}
	cfg, err := Parse("c.json", []byte(`{"storage": {"inmem": {}}, "listener": {"tcp": {"address": "127.0.0.1:8200", "telemetry": {"unauthenticated_metrics_access": true}}}, "telemetry": {"prometheus_retention_time": "0"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Listeners[0].UnauthenticatedMetricsAccess || !cfg.Telemetry.DisablePrometheus {
		t.Fatalf("JSON telemetry: %+v %+v", cfg.Listeners[0], cfg.Telemetry)
	}
}
