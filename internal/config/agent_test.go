package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// realAgent is a Vault Agent configuration as a platform team writes it
// for a model-serving VM: AppRole login, a token sink, API proxy on
// loopback, and templates for a database password, a TLS bundle and a
// JSON settings file. It must parse unchanged.
const realAgent = `# /etc/vault-agent.d/agent.hcl
pid_file        = "/run/vault-agent/agent.pid"
exit_after_auth = false
log_level       = "info"

vault {
  address         = "https://vault.prod.internal:8200"
  ca_cert         = "/etc/ssl/vault/ca.pem"
  tls_server_name = "vault.prod.internal"
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle-ml"
    config = {
      role_id_file_path                   = "/etc/vault-agent.d/role-id"
      secret_id_file_path                 = "/etc/vault-agent.d/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }

  sink "file" {
    config = {
      path = "/run/vault-agent/token"
      mode = 0600
    }
  }
}

api_proxy {
  use_auto_auth_token = true
}

listener "tcp" {
  address     = "127.0.0.1:8100"
  tls_disable = true
}

template_config {
  static_secret_render_interval = "10m"
  exit_on_retry_failure         = true
}

template {
  source      = "/etc/vault-agent.d/templates/db.ctmpl"
  destination = "/run/model-server/db.env"
  perms       = "0640"
  error_on_missing_key = true
  command     = "systemctl reload model-server"
}

template {
  contents = <<EOT
{{ with secret "pki/issue/model-server" "common_name=models.prod.internal" "ttl=72h" }}
{{ .Data.certificate }}
{{ .Data.private_key }}
{{ end }}
EOT
  destination      = "/etc/model-server/tls/bundle.pem"
  perms            = 0600
  backup           = true
  create_dest_dirs = false
  wait {
    min = "2s"
    max = "10s"
  }
  exec {
    command = ["/usr/bin/systemctl", "restart", "model-server"]
    timeout = "45s"
  }
}

template {
  contents        = "<% with secret \"secret/data/ml/settings\" %><% .Data.data | toJSON %><% end %>"
  destination     = "/etc/model-server/settings.json"
  left_delimiter  = "<%"
  right_delimiter = "%>"
  wait            = "1s"
}
`

func TestRealWorldAgentConfig(t *testing.T) {
	a, err := ParseAgent("agent.hcl", []byte(realAgent))
	if err != nil {
		t.Fatal(err)
	}
	if a.PidFile != "/run/vault-agent/agent.pid" || a.ExitAfterAuth || a.LogLevel != "info" {
		t.Fatalf("top level %+v", a)
	}
	wantVault := Vault{Address: "https://vault.prod.internal:8200", CACert: "/etc/ssl/vault/ca.pem", TLSServerName: "vault.prod.internal", NumRetries: 5, Line: 6}
	if a.Vault != wantVault {
		t.Fatalf("vault %+v", a.Vault)
	}
	m := a.AutoAuth.Method
	if m.Type != "approle" || m.MountPath != "auth/approle-ml" || m.MinBackoff != time.Second || m.MaxBackoff != 5*time.Minute || m.Line != 16 {
		t.Fatalf("method %+v", m)
	}
	if *m.AppRole != (AppRoleMethod{RoleIDFilePath: "/etc/vault-agent.d/role-id", SecretIDFilePath: "/etc/vault-agent.d/secret-id"}) {
		t.Fatalf("approle %+v", *m.AppRole)
	}
	if len(a.AutoAuth.Sinks) != 1 || a.AutoAuth.Sinks[0] != (Sink{Type: "file", Path: "/run/vault-agent/token", Mode: 0o600, Owner: -1, Group: -1, Line: 25}) {
		t.Fatalf("sinks %+v", a.AutoAuth.Sinks)
	}
	if a.APIProxy == nil || !a.APIProxy.UseAutoAuthToken || a.APIProxy.ForceAutoAuthToken || a.Cache != nil {
		t.Fatalf("api_proxy %+v cache %+v", a.APIProxy, a.Cache)
	}
	if len(a.Listeners) != 1 || a.Listeners[0].Address != "127.0.0.1:8100" || !a.Listeners[0].TLSDisable || a.Listeners[0].Type != "tcp" {
		t.Fatalf("listeners %+v", a.Listeners)
	}
	if a.TemplateConfig != (TemplateConfig{ExitOnRetryFailure: true, StaticSecretRenderInterval: 10 * time.Minute, MaxConnectionsPerHost: 10, Line: 42}) {
		t.Fatalf("template_config %+v", a.TemplateConfig)
	}
	if len(a.Templates) != 3 {
		t.Fatalf("%d templates", len(a.Templates))
	}
	t0 := a.Templates[0]
	if t0.Source != "/etc/vault-agent.d/templates/db.ctmpl" || t0.Contents != "" || t0.Destination != "/run/model-server/db.env" ||
		t0.Perms != 0o640 || !t0.ErrorOnMissingKey || !t0.CreateDestDirs || t0.Backup || !t0.ErrorFatal ||
		t0.LeftDelimiter != "{{" || t0.RightDelimiter != "}}" || t0.Wait != nil {
		t.Fatalf("template 0 %+v", t0)
	}
	if t0.Exec == nil || !reflect.DeepEqual(t0.Exec.Command, []string{"systemctl reload model-server"}) || t0.Exec.Timeout != 30*time.Second {
		t.Fatalf("template 0 exec %+v", t0.Exec)
	}
	t1 := a.Templates[1]
	if !strings.Contains(t1.Contents, `{{ with secret "pki/issue/model-server" "common_name=models.prod.internal" "ttl=72h" }}`) ||
		t1.Perms != 0o600 || !t1.Backup || t1.CreateDestDirs || *t1.Wait != (Wait{Min: 2 * time.Second, Max: 10 * time.Second}) {
		t.Fatalf("template 1 %+v", t1)
	}
	if !reflect.DeepEqual(t1.Exec.Command, []string{"/usr/bin/systemctl", "restart", "model-server"}) || t1.Exec.Timeout != 45*time.Second {
		t.Fatalf("template 1 exec %+v", t1.Exec)
	}
	t2 := a.Templates[2]
	if t2.LeftDelimiter != "<%" || t2.RightDelimiter != "%>" || *t2.Wait != (Wait{Min: time.Second, Max: 4 * time.Second}) || t2.Perms != 0 || t2.Exec != nil {
		t.Fatalf("template 2 %+v", t2)
	}
	if t2.Line != 76 || a.Templates[0].Line != 47 {
		t.Fatalf("template 2 line %d", t2.Line)
	}
}

// The forms Vault's documentation uses besides labels: method { type = ...
// }, a sinks { sink { ... } } wrapper, config { ... } without "=".
func TestAgentTypeKeyForms(t *testing.T) {
	src := `
vigil {
  address = "http://127.0.0.1:8200"
}
auto_auth {
  method {
    type = "jwt"
    config {
      path = "/var/run/secrets/ci/jwt"
      role = "ci"
      remove_jwt_after_reading = "false"
    }
  }
  sinks {
    sink {
      type = "file"
      config = { path = "/tmp/a" }
    }
    sink {
      type = "file"
      config = { path = "/tmp/b", mode = "0400", owner = 1000, group = 1000 }
    }
  }
}
`
	a, err := ParseAgent("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if a.Vault.Address != "http://127.0.0.1:8200" || a.Vault.NumRetries != DefaultAgentRetries {
		t.Fatalf("vault %+v", a.Vault)
	}
	m := a.AutoAuth.Method
	if m.Type != "jwt" || m.MountPath != "auth/jwt" || *m.JWT != (JWTMethod{Path: "/var/run/secrets/ci/jwt", Role: "ci", JWTReadPeriod: time.Minute}) {
		t.Fatalf("method %+v %+v", m, m.JWT)
	}
	want := []Sink{
		{Type: "file", Path: "/tmp/a", Mode: DefaultSinkMode, Owner: -1, Group: -1, Line: 15},
		{Type: "file", Path: "/tmp/b", Mode: 0o400, Owner: 1000, Group: 1000, Line: 19},
	}
	if !reflect.DeepEqual(a.AutoAuth.Sinks, want) {
		t.Fatalf("sinks %+v", a.AutoAuth.Sinks)
	}
}

func TestAgentMethods(t *testing.T) {
	sink := "\n  sink \"file\" { config = { path = \"/t\" } }\n}\n"
	for _, tc := range []struct {
		name, method string
		check        func(t *testing.T, m AuthMethod)
	}{
		{"approle defaults", `method "approle" { config = { role_id_file_path = "/r" } }`, func(t *testing.T, m AuthMethod) {
			if *m.AppRole != (AppRoleMethod{RoleIDFilePath: "/r", RemoveSecretIDFileAfterReading: true}) {
				t.Fatalf("%+v", *m.AppRole)
			}
		}},
		{"jwt defaults", `method "jwt" { config = { path = "/j", role = "r" } }`, func(t *testing.T, m AuthMethod) {
			if *m.JWT != (JWTMethod{Path: "/j", Role: "r", RemoveJWTAfterReading: true, JWTReadPeriod: 500 * time.Millisecond}) {
				t.Fatalf("%+v", *m.JWT)
			}
		}},
		{"jwt read period", `method "jwt" { config = { path = "/j", role = "r", jwt_read_period = "10s", remove_jwt_follows_symlinks = true } }`, func(t *testing.T, m AuthMethod) {
			if m.JWT.JWTReadPeriod != 10*time.Second || !m.JWT.RemoveJWTFollowsSymlinks {
				t.Fatalf("%+v", *m.JWT)
			}
		}},
		{"kubernetes", `method "kubernetes" {
    mount_path  = "auth/k8s-prod/"
    namespace   = "root"
    min_backoff = "2s"
    max_backoff = 60
    exit_on_err = true
    config = { role = "model-server" }
  }`, func(t *testing.T, m AuthMethod) {
			if m.MountPath != "auth/k8s-prod" || m.MinBackoff != 2*time.Second || m.MaxBackoff != time.Minute || !m.ExitOnError ||
				*m.Kubernetes != (KubernetesMethod{Role: "model-server", TokenPath: DefaultKubernetesTokenPath}) {
				t.Fatalf("%+v %+v", m, *m.Kubernetes)
			}
		}},
		{"token_file", `method "token_file" { config = { token_file_path = "/home/me/.vault-token" } }`, func(t *testing.T, m AuthMethod) {
			if m.TokenFile.TokenFilePath != "/home/me/.vault-token" || m.MountPath != "auth/token_file" {
				t.Fatalf("%+v", m)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAgent("agent.hcl", []byte("auto_auth {\n  "+tc.method+sink))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, a.AutoAuth.Method)
		})
	}
}

// The process supervisor configuration Vault's generate-config writes.
func TestAgentProcessSupervisor(t *testing.T) {
	src := `
auto_auth {
  method {
    type = "token_file"
    config {
      token_file_path = "/home/me/.vault-token"
    }
  }
}
template_config {
  static_secret_render_interval = "5m"
  exit_on_retry_failure         = true
  max_connections_per_host      = 20
}
vault {
  address = "http://localhost:8200"
}
env_template "FOO_PASSWORD" {
  contents             = "{{ with secret \"secret/data/foo\" }}{{ .Data.data.password }}{{ end }}"
  error_on_missing_key = true
}
env_template "FOO_USER" {
  source = "/etc/agent/user.ctmpl"
}
exec {
  command                   = ["./my-app", "arg1", "arg2"]
  restart_on_secret_changes = "never"
  restart_stop_signal       = "int"
  child_process_stdout      = "/var/log/app.out"
}
`
	a, err := ParseAgent("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.EnvTemplates) != 2 || a.EnvTemplates[0].Name != "FOO_PASSWORD" || !a.EnvTemplates[0].ErrorOnMissingKey ||
		a.EnvTemplates[1].Name != "FOO_USER" || a.EnvTemplates[1].Source != "/etc/agent/user.ctmpl" || a.EnvTemplates[1].Line != 22 {
		t.Fatalf("env templates %+v", a.EnvTemplates)
	}
	want := Exec{Command: []string{"./my-app", "arg1", "arg2"}, RestartOnSecretChanges: "never", RestartStopSignal: "SIGINT", ChildProcessStdout: "/var/log/app.out", Line: 25}
	if !reflect.DeepEqual(*a.Exec, want) {
		t.Fatalf("exec %+v", *a.Exec)
	}
	if a.TemplateConfig.MaxConnectionsPerHost != 20 {
		t.Fatalf("template_config %+v", a.TemplateConfig)
	}
	// Defaults.
	a, err = ParseAgent("agent.hcl", []byte(strings.Replace(strings.Replace(src, `restart_on_secret_changes = "never"`, "", 1), `restart_stop_signal       = "int"`, "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Exec.RestartOnSecretChanges != "always" || a.Exec.RestartStopSignal != "SIGTERM" {
		t.Fatalf("exec defaults %+v", *a.Exec)
	}
}

func TestAgentCacheAndListeners(t *testing.T) {
	base := "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n  sink \"file\" { config = { path = \"/s\" } }\n}\n"
	for _, tc := range []struct {
		name, src string
		check     func(t *testing.T, a *Agent)
	}{
		{"cache use_auto_auth_token becomes api_proxy", base + "cache {\n use_auto_auth_token = \"force\"\n}\nlistener \"unix\" {\n address = \"/run/agent.sock\"\n tls_disable = true\n socket_mode = \"0660\"\n}\n", func(t *testing.T, a *Agent) {
			if a.Cache == nil || !a.Cache.ForceAutoAuthToken || a.APIProxy == nil || !a.APIProxy.UseAutoAuthToken || !a.APIProxy.ForceAutoAuthToken || a.APIProxy.Line != 5 {
				t.Fatalf("cache %+v api_proxy %+v", a.Cache, a.APIProxy)
			}
			if l := a.Listeners[0]; l.Type != "unix" || l.Address != "/run/agent.sock" || l.SocketMode != "0660" {
				t.Fatalf("listener %+v", l)
			}
		}},
		{"empty cache", base + "cache {}\nlistener \"tcp\" {\n tls_disable = 1\n}\n", func(t *testing.T, a *Agent) {
			if a.Cache == nil || a.Cache.UseAutoAuthToken || a.APIProxy != nil || a.Listeners[0].Address != DefaultAgentListenerAddress {
				t.Fatalf("%+v %+v %+v", a.Cache, a.APIProxy, a.Listeners)
			}
		}},
		{"tls listener with agent_api", base + "api_proxy {\n use_auto_auth_token = false\n}\nlistener \"tcp\" {\n address = \"0.0.0.0:8100\"\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n tls_min_version = \"tls13\"\n require_request_header = true\n role = \"default\"\n agent_api {\n  enable_quit = true\n }\n}\n", func(t *testing.T, a *Agent) {
			l := a.Listeners[0]
			if l.TLSDisable || l.TLSCertFile != "/c" || !l.RequireRequestHeader || !l.EnableQuit || l.TLSMinVersion != "tls13" {
				t.Fatalf("%+v", l)
			}
			if a.APIProxy == nil || a.APIProxy.UseAutoAuthToken {
				t.Fatalf("%+v", a.APIProxy)
			}
		}},
		{"listener with a type key", "listener {\n type = \"tcp\"\n address = \"127.0.0.1:9\"\n tls_disable = true\n}\n", func(t *testing.T, a *Agent) {
			if len(a.Listeners) != 1 || a.Listeners[0].Address != "127.0.0.1:9" || a.AutoAuth != nil {
				t.Fatalf("%+v", a.Listeners)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAgent("agent.hcl", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, a)
		})
	}
}

func TestAgentJSON(t *testing.T) {
	src := `{
  "pid_file": "/run/agent.pid",
  "vault": {"address": "https://vigil:8200", "tls_skip_verify": "true", "retry": {"num_retries": -1}},
  "auto_auth": {
    "method": [{"type": "approle", "mount_path": "auth/ar", "config": {"role_id_file_path": "/r", "secret_id_file_path": "/s"}}],
    "sinks": [{"sink": {"type": "file", "config": {"path": "/t1"}}}, {"sink": {"type": "file", "config": {"path": "/t2", "mode": 384}}}]
  },
  "template_config": {"static_secret_render_interval": 60},
  "template": [
    {"contents": "{{ with secret \"secret/data/x\" }}{{ .Data.data.k }}{{ end }}", "destination": "/out/a", "perms": "0600"},
    {"source": "/in/b.ctmpl", "destination": "/out/b", "wait": {"min": "1s", "max": "2s"}, "exec": {"command": "touch /x", "timeout": "5s"}}
  ],
  "listener": {"tcp": {"address": "127.0.0.1:8100", "tls_disable": true}},
  "cache": {}
}`
	a, err := ParseAgent("agent.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if a.PidFile != "/run/agent.pid" || !a.Vault.TLSSkipVerify || a.Vault.NumRetries != 0 || a.Vault.Address != "https://vigil:8200" {
		t.Fatalf("%+v", a)
	}
	if m := a.AutoAuth.Method; m.Type != "approle" || m.MountPath != "auth/ar" || m.AppRole.SecretIDFilePath != "/s" {
		t.Fatalf("method %+v", m)
	}
	if s := a.AutoAuth.Sinks; len(s) != 2 || s[0].Path != "/t1" || s[1].Path != "/t2" || s[1].Mode != 0o600 {
		t.Fatalf("sinks %+v", s)
	}
	if a.TemplateConfig.StaticSecretRenderInterval != time.Minute {
		t.Fatalf("template_config %+v", a.TemplateConfig)
	}
	if len(a.Templates) != 2 || a.Templates[0].Perms != 0o600 || a.Templates[1].Wait.Max != 2*time.Second ||
		a.Templates[1].Exec.Command[0] != "touch /x" || a.Templates[1].Exec.Timeout != 5*time.Second {
		t.Fatalf("templates %+v", a.Templates)
	}
	if len(a.Listeners) != 1 || a.Listeners[0].Address != "127.0.0.1:8100" || a.Cache == nil {
		t.Fatalf("listeners %+v cache %+v", a.Listeners, a.Cache)
	}

	// The labelled JSON form, which the HCL library flattens into one item
	// per nested object.
	src = `{"auto_auth": {"method": {"kubernetes": {"config": {"role": "r"}}}, "sink": {"file": {"config": {"path": "/t"}}}},
	        "env_template": {"A": {"contents": "a"}, "B": {"contents": "b"}},
	        "exec": {"command": ["app"]}}`
	if a, err = ParseAgent("agent.json", []byte(src)); err != nil {
		t.Fatal(err)
	}
	if a.AutoAuth.Method.Kubernetes.Role != "r" || a.AutoAuth.Sinks[0].Path != "/t" || len(a.EnvTemplates) != 2 || a.EnvTemplates[1].Name != "B" {
		t.Fatalf("%+v %+v", a.AutoAuth, a.EnvTemplates)
	}
}

func TestAgentErrorsNameTheLine(t *testing.T) {
	// aa is lines 1-4; wrapped, a wrapped login, lines 1-7.
	aa := "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n  sink \"file\" { config = { path = \"/s\" } }\n}\n"
	wrapped := "auto_auth {\n  method \"approle\" {\n    wrap_ttl = \"5m\"\n    config = { role_id_file_path = \"/r\" }\n  }\n  sink \"file\" { config = { path = \"/s\" } }\n}\n"
	for _, tc := range []struct {
		name, src string
		line      int
		text      string
	}{
		{"unknown top-level key", aa + "templates {}\n", 5, `unknown key "templates"`},
		{"unknown vault key", aa + "vault {\n  adress = \"x\"\n}\n", 6, `unknown key "adress" in vault`},
		{"unknown vigil key", aa + "vigil {\n  token = \"x\"\n}\n", 6, `unknown key "token" in vigil`},
		{"vault and vigil", aa + "vault {}\nvigil {}\n", 6, "only one vault (or vigil) block"},
		{"bad address", aa + "vault {\n  address = \"vigil:8200\"\n}\n", 5, "invalid vault address"},
		{"client cert without key", aa + "vault {\n  client_cert = \"/c\"\n}\n", 5, "client_cert and client_key"},
		{"bad num_retries", aa + "vault {\n  retry {\n    num_retries = -2\n  }\n}\n", 7, "num_retries must be -1"},
		{"unknown retry key", aa + "vault {\n  retry {\n    backoff = \"1s\"\n  }\n}\n", 7, `unknown key "backoff" in retry`},
		{"namespace", aa + "vault {\n  namespace = \"team-a\"\n}\n", 6, "only the root namespace"},
		{"unsupported method", "auto_auth {\n  method \"aws\" {\n    config = { role = \"r\" }\n  }\n}\n", 2, `unsupported auto_auth method "aws"`},
		{"method without a type", "auto_auth {\n  method {\n    config = { role = \"r\" }\n  }\n}\n", 3, "method needs a type"},
		{"two methods", "auto_auth {\n  method \"jwt\" {}\n  method \"approle\" {}\n}\n", 3, "one method block"},
		{"no method", "auto_auth {\n  sink \"file\" { config = { path = \"/s\" } }\n}\n", 1, "needs a method block"},
		{"unknown method key", "auto_auth {\n  method \"jwt\" {\n    role = \"r\"\n  }\n}\n", 3, `unknown key "role" in method "jwt"`},
		{"unknown approle config key", "auto_auth {\n  method \"approle\" {\n    config = {\n      role_id = \"r\"\n    }\n  }\n}\n", 4, `unknown key "role_id" in method "approle" config`},
		{"method wrap_ttl not positive", "auto_auth {\n  method \"approle\" {\n    wrap_ttl = 0\n  }\n}\n", 3, "wrap_ttl must be positive"},
		{"wrapped login without a sink", "auto_auth {\n  method \"approle\" {\n    wrap_ttl = \"5m\"\n    config = { role_id_file_path = \"/r\" }\n  }\n}\n", 2, "needs exactly one sink, to hold the wrapping token (it has 0)"},
		{"wrapped login with two sinks", strings.Replace(wrapped, "\n}\n", "\n  sink \"file\" { config = { path = \"/s2\" } }\n}\n", 1), 2, "(it has 2)"},
		{"wrapped login and wrapping sink", "auto_auth {\n  method \"approle\" {\n    wrap_ttl = \"5m\"\n    config = { role_id_file_path = \"/r\" }\n  }\n  sink \"file\" {\n    wrap_ttl = \"1m\"\n    config = { path = \"/s\" }\n  }\n}\n", 6, "both the method and the sink"},
		{"wrapped token_file", "auto_auth {\n  method \"token_file\" {\n    wrap_ttl = \"5m\"\n    config = { token_file_path = \"/t\" }\n  }\n  sink \"file\" { config = { path = \"/s\" } }\n}\n", 2, "token_file method does not log in"},
		{"wrapped login and a template", wrapped + "template {\n  contents = \"x\"\n  destination = \"/d\"\n}\n", 8, "template needs the agent's token"},
		{"wrapped login and exec", wrapped + "exec {\n  command = [\"app\"]\n}\n", 8, "exec needs the agent's token"},
		{"wrapped login and the proxy's token", wrapped + "api_proxy {\n  use_auto_auth_token = true\n}\nlistener \"tcp\" {\n  tls_disable = true\n}\n", 8, "use_auto_auth_token needs the agent's token"},
		{"wrapped login and the cache's token", wrapped + "cache {\n  use_auto_auth_token = \"force\"\n}\nlistener \"tcp\" {\n  tls_disable = true\n}\n", 8, "use_auto_auth_token needs the agent's token"},
		{"secret id wrapping without its file", "auto_auth {\n  method \"approle\" {\n    config = {\n      role_id_file_path = \"r\"\n      secret_id_response_wrapping_path = \"x\"\n    }\n  }\n}\n", 2, "needs config.secret_id_file_path"},
		{"method config missing", "auto_auth {\n  method \"approle\" {}\n  sink \"file\" { config = { path = \"/s\" } }\n}\n", 2, "role_id_file_path"},
		{"jwt needs role", "auto_auth {\n  method \"jwt\" { config = { path = \"/j\" } }\n  sink \"file\" { config = { path = \"/s\" } }\n}\n", 2, "config.path and config.role"},
		{"type and label disagree", "auto_auth {\n  method \"jwt\" {\n    type = \"approle\"\n  }\n}\n", 2, `says type = "approle"`},
		{"dh_type refused", "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n  sink \"file\" {\n    dh_type = \"curve25519\"\n  }\n}\n", 4, "dh_type is not supported"},
		{"sink wrap_ttl not positive", "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n  sink \"file\" {\n    wrap_ttl = 0\n    config = { path = \"/s\" }\n  }\n}\n", 4, "wrap_ttl must be positive"},
		{"unsupported sink", "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n  sink \"socket\" {}\n}\n", 3, `unsupported sink type "socket"`},
		{"sink without path", "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n  sink \"file\" { config = { mode = 0600 } }\n}\n", 3, "needs config.path"},
		{"bad sink mode", "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n  sink \"file\" {\n    config = { path = \"/s\", mode = \"rw\" }\n  }\n}\n", 4, "mode must be a file mode"},
		{"decimal sink mode with sticky bits", "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n  sink \"file\" { config = { path = \"/s\", mode = 600 } }\n}\n", 3, "bits other than permissions"},
		{"two sinks one path", "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n  sink \"file\" { config = { path = \"/s\" } }\n  sink \"file\" { config = { path = \"/s\" } }\n}\n", 4, "also the path of the sink at line 3"},
		{"auto_auth with nothing to do", "auto_auth {\n  method \"token_file\" { config = { token_file_path = \"/t\" } }\n}\n", 1, "needs at least one sink"},
		{"nothing at all", "pid_file = \"/p\"\n", 0, "no auto_auth, cache or listener"},
		{"cache persist refused", aa + "cache {\n  persist = {\n    type = \"kubernetes\"\n  }\n}\n", 6, "persist is not supported"},
		{"consistency refused", aa + "api_proxy {\n  enforce_consistency = \"always\"\n}\n", 6, "enforce_consistency is not supported"},
		{"bad use_auto_auth_token", aa + "cache {\n  use_auto_auth_token = \"sometimes\"\n}\n", 6, `true, false or "force"`},
		{"cache without listener or template", aa + "cache {}\n", 5, "the cache needs at least one listener or template"},
		{"api_proxy without listener", aa + "api_proxy {\n  use_auto_auth_token = true\n}\n", 5, "api_proxy needs at least one listener"},
		{"use_auto_auth_token in both", aa + "cache {\n  use_auto_auth_token = true\n}\napi_proxy {\n  use_auto_auth_token = true\n}\nlistener \"tcp\" {\n  tls_disable = true\n}\n", 5, "both cache and api_proxy"},
		{"use_auto_auth_token without auto_auth", "api_proxy {\n  use_auto_auth_token = true\n}\nlistener \"tcp\" {\n  tls_disable = true\n}\n", 1, "no auto_auth block"},
		{"listener without tls", aa + "listener \"tcp\" {\n  address = \"127.0.0.1:8100\"\n}\n", 5, "tls_disable = true"},
		{"listener bad address", aa + "listener \"tcp\" {\n  address = \"8100\"\n  tls_disable = true\n}\n", 5, "host:port"},
		{"listener twice", aa + "listener \"tcp\" {\n  tls_disable = true\n}\nlistener \"tcp\" {\n  tls_disable = true\n}\n", 8, "declared twice (line 5)"},
		{"unsupported listener", aa + "listener \"udp\" {}\n", 5, `unsupported listener type "udp"`},
		{"unix listener without address", aa + "listener \"unix\" {\n  tls_disable = true\n}\n", 5, "needs an address"},
		{"metrics_only refused", aa + "listener \"tcp\" {\n  role = \"metrics_only\"\n}\n", 6, "exports no metrics"},
		{"unknown listener key", aa + "listener \"tcp\" {\n  max_request_size = 5\n}\n", 6, `unknown key "max_request_size" in listener "tcp"`},
		{"unknown template_config key", aa + "template_config {\n  lease_renewal_threshold = 0.5\n}\n", 6, `unknown key "lease_renewal_threshold" in template_config`},
		{"two template_config", aa + "template_config {}\ntemplate_config {}\n", 6, "only one template_config"},
		{"bad render interval", aa + "template_config {\n  static_secret_render_interval = \"often\"\n}\n", 6, "static_secret_render_interval must be a duration"},
		{"template without destination", aa + "template {\n  contents = \"x\"\n}\n", 5, "template needs a destination"},
		{"template without source or contents", aa + "template {\n  destination = \"/d\"\n}\n", 5, "template needs source or contents"},
		{"template with both", aa + "template {\n  source = \"/s\"\n  contents = \"x\"\n  destination = \"/d\"\n}\n", 5, "both source and contents"},
		{"unknown template key", aa + "template {\n  contents = \"x\"\n  destination = \"/d\"\n  dest_perms = 1\n}\n", 8, `unknown key "dest_perms" in template`},
		{"same destination twice", aa + "template {\n  contents = \"x\"\n  destination = \"/d\"\n}\ntemplate {\n  contents = \"y\"\n  destination = \"/d\"\n}\n", 9, "also the destination of the template at line 5"},
		{"bad perms", aa + "template {\n  contents = \"x\"\n  destination = \"/d\"\n  perms = \"0999\"\n}\n", 8, "perms must be a file mode"},
		{"command and exec", aa + "template {\n  contents = \"x\"\n  destination = \"/d\"\n  command = \"a\"\n  exec {\n    command = \"b\"\n  }\n}\n", 9, "both exec and the deprecated command"},
		{"unknown exec key", aa + "template {\n  contents = \"x\"\n  destination = \"/d\"\n  exec {\n    splay = \"5s\"\n  }\n}\n", 9, `unknown key "splay" in template exec`},
		{"exec without command", aa + "template {\n  contents = \"x\"\n  destination = \"/d\"\n  exec {\n    timeout = \"5s\"\n  }\n}\n", 5, "template exec needs a command"},
		{"bad wait", aa + "template {\n  contents = \"x\"\n  destination = \"/d\"\n  wait = \"soon\"\n}\n", 8, "wait must be"},
		{"wait max below min", aa + "template {\n  contents = \"x\"\n  destination = \"/d\"\n  wait {\n    min = \"10s\"\n    max = \"1s\"\n  }\n}\n", 5, "wait max"},
		{"empty command", aa + "template {\n  contents = \"x\"\n  destination = \"/d\"\n  command = []\n}\n", 8, "must not be empty"},
		{"env_template with destination", "env_template \"A\" {\n  contents = \"x\"\n  destination = \"/d\"\n}\nexec {\n  command = [\"app\"]\n}\n", 3, "destination is not allowed in env_template"},
		{"env_template without name", "env_template {\n  contents = \"x\"\n}\nexec {\n  command = [\"app\"]\n}\n", 2, "needs the variable's name"},
		{"env_template without exec", "env_template \"A\" {\n  contents = \"x\"\n}\nlistener \"tcp\" {\n  tls_disable = true\n}\n", 1, "needs a top-level exec block"},
		{"exec without env_template", aa + "exec {\n  command = [\"app\"]\n}\n", 5, "exec needs at least one env_template"},
		{"env_template and template", aa + "env_template \"A\" {\n  contents = \"x\"\n}\ntemplate {\n  contents = \"x\"\n  destination = \"/d\"\n}\nexec {\n  command = [\"app\"]\n}\n", 8, "template cannot be used with env_template"},
		{"env_template twice", aa + "env_template \"A\" {\n  contents = \"x\"\n}\nenv_template \"A\" {\n  contents = \"y\"\n}\nexec {\n  command = [\"app\"]\n}\n", 8, `env_template "A" is declared twice`},
		{"bad env name", aa + "env_template \"A=B\" {\n  contents = \"x\"\n}\nexec {\n  command = [\"app\"]\n}\n", 5, "not a valid environment variable name"},
		{"bad restart", aa + "env_template \"A\" {\n  contents = \"x\"\n}\nexec {\n  command = [\"app\"]\n  restart_on_secret_changes = \"sometimes\"\n}\n", 8, "invalid restart_on_secret_changes"},
		{"bad signal", aa + "env_template \"A\" {\n  contents = \"x\"\n}\nexec {\n  command = [\"app\"]\n  restart_stop_signal = \"SIGBOGUS\"\n}\n", 8, "invalid restart_stop_signal"},
		{"exec command not a list", aa + "env_template \"A\" {\n  contents = \"x\"\n}\nexec {\n  command = 5\n}\n", 9, "command must be a string"},
		{"unknown exec block key", aa + "env_template \"A\" {\n  contents = \"x\"\n}\nexec {\n  command = [\"app\"]\n  env = {}\n}\n", 10, `unknown key "env" in exec`},
		{"telemetry refused", aa + "telemetry {}\n", 5, "exports no metrics"},
		{"log rotation refused", aa + "log_rotate_bytes = 100\n", 5, "does not rotate"},
		{"bad log level", aa + "log_level = \"chatty\"\n", 5, "invalid log_level"},
		{"bad disable_keep_alives", aa + "disable_keep_alives = [\"everything\"]\n", 0, "invalid disable_keep_alives value"},
		{"syntax", aa + "vault {\n", 0, "syntax error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAgent("agent.hcl", []byte(tc.src))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
			if tc.line != 0 && pe.Line != tc.line {
				t.Errorf("line %d, want %d (%v)", pe.Line, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.text) || !strings.HasPrefix(err.Error(), "agent.hcl") {
				t.Errorf("error %q lacks %q", err, tc.text)
			}
		})
	}
}

func TestAgentMiscKeys(t *testing.T) {
	src := "listener \"tcp\" {\n tls_disable = true\n}\nlog_format = \"json\"\nlog_file = \"/var/log/agent.log\"\ndisable_mlock = true\n" +
		"disable_idle_connections = [\"auto-auth\", \"templating\"]\ndisable_keep_alives = \"caching,proxying\"\n"
	a, err := ParseAgent("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if a.LogFormat != "json" || a.LogFile != "/var/log/agent.log" ||
		!reflect.DeepEqual(a.DisableIdleConnections, []string{"auto-auth", "templating"}) || !reflect.DeepEqual(a.DisableKeepAlives, []string{"caching", "proxying"}) {
		t.Fatalf("%+v", a)
	}
}

// Validate is also the check of a configuration built in code.
func TestAgentValidateInCode(t *testing.T) {
	a := &Agent{
		Listeners:      []AgentListener{{Type: "tcp", Address: "127.0.0.1:8100", TLSDisable: true}},
		TemplateConfig: TemplateConfig{StaticSecretRenderInterval: time.Minute, MaxConnectionsPerHost: 1},
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	a.Templates = []Template{{TemplateOptions: TemplateOptions{Contents: "x"}, Destination: "/d"}}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "empty delimiter") {
		t.Fatalf("err = %v", err)
	}
	a.Templates[0].TemplateOptions = defaultTemplateOptions()
	a.Templates[0].Contents = "x"
	a.Templates[0].Perms = 0o4755
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "bits other than permissions") {
		t.Fatalf("err = %v", err)
	}
	a.Templates[0].Perms = 0o600
	a.TemplateConfig.StaticSecretRenderInterval = 0
	if err := a.Validate(); err == nil {
		t.Fatal("zero render interval accepted")
	}
}

func TestLoadAgent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(path, []byte(realAgent), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAgent(path); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAgent(path + ".missing"); err == nil {
		t.Fatal("missing file accepted")
	}
}

func FuzzParseAgent(f *testing.F) {
	f.Add([]byte(realAgent))
	f.Add([]byte(`{"auto_auth": {"method": {"kubernetes": {"config": {"role": "r"}}}, "sink": {"file": {"config": {"path": "/t"}}}}}`))
	f.Add([]byte("env_template \"A\" {\n contents = \"x\"\n}\nexec {\n command = [\"a\"]\n}\n"))
	f.Add([]byte("listener { type = \"tcp\" }\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		a, err := ParseAgent("fuzz.hcl", src)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
			return
		}
		// What parses validates.
		if err := a.Validate(); err != nil {
			t.Fatalf("parsed but does not validate: %v", err)
		}
	})
}
