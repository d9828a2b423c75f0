package config

import (
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/hcl/ast"
)

// Agent is the configuration of `vigil agent`: Vault Agent's file format,
// read as is, so that an existing Vault Agent configuration works
// unchanged (with vigil { ... } accepted as a synonym of vault { ... }):
//
//	vault {
//	  address = "https://vigil.internal:8200"
//	  ca_cert = "/etc/vigil/ca.pem"
//	}
//	auto_auth {
//	  method "approle" {
//	    config = {
//	      role_id_file_path   = "/etc/vigil/role-id"
//	      secret_id_file_path = "/etc/vigil/secret-id"
//	    }
//	  }
//	  sink "file" {
//	    config = { path = "/run/vigil/token", mode = 0600 }
//	  }
//	}
//	template {
//	  contents    = "{{ with secret \"secret/data/db\" }}{{ .Data.data.password }}{{ end }}"
//	  destination = "/run/app/db-password"
//	  perms       = "0600"
//	}
//
// Every key Vault Agent knows is either read with Vault's meaning and
// default, or refused with an error saying why (response wrapping,
// Diffie-Hellman sinks, namespaces, the persistent cache and the auth
// methods Vigil does not have). Unknown keys are errors. Each error names
// the file and line. [ParseAgent] checks the combinations of blocks with
// [Agent.Validate].
type Agent struct {
	// Vault is the server the agent talks to (the vault or vigil block).
	Vault Vault
	// AutoAuth is the auto_auth block, nil without one.
	AutoAuth *AutoAuth
	// Cache is the cache block, nil without one. Its presence enables the
	// cache.
	Cache *Cache
	// APIProxy is the api_proxy block. When the file has none but its
	// cache block sets use_auto_auth_token, it is made from that, as in
	// Vault.
	APIProxy *APIProxy
	// Listeners are the listener "tcp" and listener "unix" blocks.
	Listeners []AgentListener
	// TemplateConfig is the template_config block, with Vault's defaults
	// when absent.
	TemplateConfig TemplateConfig
	// Templates are the template blocks, rendered to files.
	Templates []Template
	// EnvTemplates are the env_template "NAME" blocks, rendered into the
	// environment of the Exec child process.
	EnvTemplates []EnvTemplate
	// Exec is the exec block (process supervisor mode), nil without one.
	Exec *Exec
	// PidFile is where the agent writes its process ID ("" for nowhere).
	PidFile string
	// ExitAfterAuth makes the agent exit after the first successful login
	// (and the first render of its templates).
	ExitAfterAuth bool
	// LogLevel, LogFormat and LogFile are the equivalents of the
	// -log-level, -log-format and -log-file flags.
	LogLevel, LogFormat, LogFile string
	// DisableIdleConnections and DisableKeepAlives list the parts of the
	// agent ("auto-auth", "caching", "proxying", "templating") whose HTTP
	// clients keep no idle connections or use no keep-alives.
	DisableIdleConnections []string
	DisableKeepAlives      []string

	// file names the configuration in Validate's errors.
	file string
}

// Agent defaults, Vault Agent's.
const (
	// DefaultAgentRetries is vault.retry.num_retries when unset or 0.
	DefaultAgentRetries = 12
	// DefaultStaticSecretRenderInterval is how often templates re-read
	// secrets that have no lease (KV).
	DefaultStaticSecretRenderInterval = 5 * time.Minute
	// DefaultMaxConnectionsPerHost bounds the template engine's connections.
	DefaultMaxConnectionsPerHost = 10
	// DefaultTemplateCommandTimeout bounds a template's exec command.
	DefaultTemplateCommandTimeout = 30 * time.Second
	// DefaultTemplatePerms is the mode of a rendered file when the
	// template sets no perms and no file exists at the destination yet
	// (an existing file keeps its mode), as in Vault.
	DefaultTemplatePerms fs.FileMode = 0o644
	// DefaultSinkMode is the mode of a file sink's token file.
	DefaultSinkMode fs.FileMode = 0o640
	// DefaultMinBackoff and DefaultMaxBackoff bound auto-auth's retries.
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultKubernetesTokenPath is where a pod's service account token is.
	DefaultKubernetesTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	// DefaultAgentListenerAddress is a tcp listener's address when unset.
	DefaultAgentListenerAddress = "127.0.0.1:8200"
)

// Vault is the vault { ... } (or vigil { ... }) block: how the agent
// reaches the server. The VIGIL_ADDR/VAULT_ADDR family of environment
// variables override it when the agent starts, as in Vault.
type Vault struct {
	Address       string
	CACert        string
	CAPath        string
	ClientCert    string
	ClientKey     string
	TLSSkipVerify bool
	TLSServerName string
	// NumRetries is how many times a failing request from the template
	// engine is retried: retry { num_retries } with 0 meaning the default
	// (12) and -1 meaning none, resolved here (so 0 means none).
	NumRetries int
	Line       int
}

// AutoAuth is the auto_auth block: one login method and the sinks its
// token is written to.
type AutoAuth struct {
	Method AuthMethod
	Sinks  []Sink
	Line   int
}

// AuthMethod is auto_auth's method block. Exactly one of the per-type
// fields is set, the one named by Type.
type AuthMethod struct {
	// Type is "approle", "jwt", "kubernetes" or "token_file".
	Type string
	// MountPath is where the method is mounted, "auth/<type>" by default,
	// without a trailing slash.
	MountPath string
	// MinBackoff and MaxBackoff bound the waits between failed logins.
	MinBackoff, MaxBackoff time.Duration
	// ExitOnError makes a failed login (not a failed renewal) fatal.
	ExitOnError bool
	// WrapTTL, when set, response-wraps the login itself: the one sink
	// gets the wrap_info of the login (its creation path the method's
	// login path), and the agent holds no token of its own, so it renews
	// nothing and serves no template, exec or auto-auth proxy.
	WrapTTL time.Duration

	AppRole    *AppRoleMethod
	JWT        *JWTMethod
	Kubernetes *KubernetesMethod
	TokenFile  *TokenFileMethod
	Line       int
}

// AppRoleMethod is the config of method "approle".
type AppRoleMethod struct {
	RoleIDFilePath string
	// SecretIDFilePath may be empty for a role without bind_secret_id.
	SecretIDFilePath string
	// RemoveSecretIDFileAfterReading defaults to true.
	RemoveSecretIDFileAfterReading bool
	// SecretIDResponseWrappingPath, when set, makes the secret ID file
	// hold a wrapping token created at that path, which the agent
	// unwraps.
	SecretIDResponseWrappingPath string
}

// JWTMethod is the config of method "jwt".
type JWTMethod struct {
	Path string
	Role string
	// RemoveJWTAfterReading defaults to true.
	RemoveJWTAfterReading    bool
	RemoveJWTFollowsSymlinks bool
	// JWTReadPeriod is how often the file is read for a new JWT, which
	// means a new login at once: 0.5s by default when the file is removed
	// after reading (a stat while it is absent), else 1m; 0 never.
	JWTReadPeriod time.Duration
}

// KubernetesMethod is the config of method "kubernetes".
type KubernetesMethod struct {
	Role string
	// TokenPath defaults to [DefaultKubernetesTokenPath].
	TokenPath string
}

// TokenFileMethod is the config of method "token_file": a token made
// elsewhere, read from a file and kept renewed.
type TokenFileMethod struct {
	TokenFilePath string
}

// Sink is one sink "file" block: where auto-auth writes its token.
type Sink struct {
	// Type is "file".
	Type string
	Path string
	// Mode defaults to [DefaultSinkMode].
	Mode fs.FileMode
	// Owner and Group are the file's uid and gid, -1 when unset (the
	// agent's own).
	Owner, Group int
	// WrapTTL, when set, makes the sink hold a wrapping token for the
	// agent's token (its wrap_info as JSON), good once for WrapTTL.
	WrapTTL time.Duration
	Line    int
}

// Cache is the cache block. Only its use_auto_auth_token keys are
// supported (kept in Vault for backwards compatibility; api_proxy is
// their newer place).
type Cache struct {
	UseAutoAuthToken   bool
	ForceAutoAuthToken bool
	Line               int
}

// APIProxy is the api_proxy block: how requests on the agent's listeners
// are forwarded to the server. With UseAutoAuthToken a request without a
// token gets the auto-auth token; with ForceAutoAuthToken ("force") every
// request gets it.
type APIProxy struct {
	UseAutoAuthToken   bool
	ForceAutoAuthToken bool
	Line               int
}

// AgentListener is one listener "tcp" or listener "unix" block of the
// agent.
type AgentListener struct {
	// Type is "tcp" or "unix".
	Type string
	// Address is host:port for tcp (default [DefaultAgentListenerAddress])
	// and a socket path for unix.
	Address       string
	TLSDisable    bool
	TLSCertFile   string
	TLSKeyFile    string
	TLSMinVersion string
	// RequireRequestHeader refuses requests without X-Vault-Request: true
	// (412), against server-side request forgery.
	RequireRequestHeader bool
	// EnableQuit serves POST /agent/v1/quit (agent_api { enable_quit }).
	EnableQuit bool
	// SocketMode, SocketUser and SocketGroup set a unix socket's
	// permissions and owner.
	SocketMode, SocketUser, SocketGroup string
	Line                                int
}

// TemplateConfig is the template_config block: settings for the template
// engine as a whole.
type TemplateConfig struct {
	// ExitOnRetryFailure makes the agent exit when a template still fails
	// after its retries.
	ExitOnRetryFailure bool
	// StaticSecretRenderInterval is how often secrets without a lease are
	// read again (default 5m).
	StaticSecretRenderInterval time.Duration
	// MaxConnectionsPerHost bounds the template engine's connections
	// (default 10).
	MaxConnectionsPerHost int
	Line                  int
}

// TemplateOptions are the settings file and environment templates share.
type TemplateOptions struct {
	// Source is a template file; Contents the template itself. Exactly
	// one is set.
	Source, Contents string
	// ErrorOnMissingKey makes a missing map key an error instead of
	// "<no value>".
	ErrorOnMissingKey bool
	// ErrorFatal (default true) makes a render error fatal to the agent
	// rather than logged and retried.
	ErrorFatal bool
	// LeftDelimiter and RightDelimiter default to "{{" and "}}".
	LeftDelimiter, RightDelimiter string
	// FunctionDenylist names template functions the template may not use
	// (function_denylist, or its old name function_blacklist).
	FunctionDenylist []string
}

// Template is one template block: a template rendered to a file.
type Template struct {
	TemplateOptions
	Destination string
	// CreateDestDirs (default true) creates the destination's missing
	// parent directories.
	CreateDestDirs bool
	// Perms is the rendered file's mode; 0 means the existing file's mode,
	// or [DefaultTemplatePerms] for a new file.
	Perms fs.FileMode
	// Backup keeps the previous rendering as <destination>.bak.
	Backup bool
	// User and Group own the rendered file (a name or a number; "" for
	// the agent's own). uid and gid are accepted as their old spellings.
	User, Group string
	// SandboxPath, when set, confines the file function to that directory.
	SandboxPath string
	// Wait is the minimum and maximum quiescence before a new rendering
	// is written; nil for none.
	Wait *Wait
	// Exec is the command run after the file changes: exec { command,
	// timeout }, or the deprecated command and command_timeout keys.
	// Nil for none.
	Exec *TemplateExec
	Line int
}

// Wait is a template's wait block (or "min:max" string).
type Wait struct {
	Min, Max time.Duration
}

// TemplateExec is the command a template runs after its file changes.
type TemplateExec struct {
	// Command is the argument vector; a single element with spaces is a
	// shell command line, as in Vault.
	Command []string
	// Timeout defaults to [DefaultTemplateCommandTimeout].
	Timeout time.Duration
}

// EnvTemplate is one env_template "NAME" block: a template rendered into
// the environment variable NAME of the exec child process.
type EnvTemplate struct {
	TemplateOptions
	Name string
	Line int
}

// Exec is the exec block of process supervisor mode: the child process
// that receives the env_template variables.
type Exec struct {
	// Command is the argument vector; a single element with spaces is a
	// shell command line, as in Vault.
	Command []string
	// RestartOnSecretChanges is "always" (default) or "never".
	RestartOnSecretChanges string
	// RestartStopSignal is the signal that stops the child before a
	// restart, by name ("SIGTERM", the default); SIGKILL follows after 30s.
	RestartStopSignal string
	// ChildProcessStdout and ChildProcessStderr are files the child's
	// output goes to instead of the agent's.
	ChildProcessStdout, ChildProcessStderr string
	Line                                   int
}

// LoadAgent reads and parses the agent configuration at path.
func LoadAgent(path string) (*Agent, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseAgent(path, src)
}

// ParseAgent parses an agent configuration (HCL or its JSON form) and
// validates it; name is used in errors.
func ParseAgent(name string, src []byte) (*Agent, error) {
	return parseWith(name, src, func(p *parser, list *ast.ObjectList) (*Agent, error) {
		unflatten(list)
		cfg, err := p.agent(list)
		if err != nil {
			return nil, err
		}
		cfg.file = name
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return cfg, nil
	})
}

// Validate checks what the parser cannot see block by block: which blocks
// need which others, as Vault Agent does, and the values of a
// configuration built in code.
func (a *Agent) Validate() error {
	fail := func(line int, format string, args ...any) error {
		return &ParseError{File: a.file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if a.Vault.Address != "" {
		u, err := url.Parse(a.Vault.Address)
		if err != nil || !oneOf(u.Scheme, "http", "https", "unix") || (u.Scheme != "unix" && u.Host == "") {
			return fail(a.Vault.Line, "invalid vault address %q: want a URL such as https://vigil.internal:8200", a.Vault.Address)
		}
	}
	if (a.Vault.ClientCert == "") != (a.Vault.ClientKey == "") {
		return fail(a.Vault.Line, "client_cert and client_key must be set together")
	}
	if a.Vault.NumRetries < 0 {
		return fail(a.Vault.Line, "num_retries must not be negative once resolved, got %d", a.Vault.NumRetries)
	}
	if aa := a.AutoAuth; aa != nil {
		if err := aa.validate(fail); err != nil {
			return err
		}
		useToken := a.APIProxy != nil && a.APIProxy.UseAutoAuthToken
		if len(aa.Sinks) == 0 && !useToken && len(a.Templates) == 0 && len(a.EnvTemplates) == 0 {
			return fail(aa.Line, "auto_auth needs at least one sink, template or env_template, or api_proxy { use_auto_auth_token = true }: otherwise its token is used for nothing")
		}
	}
	if a.Cache != nil {
		if len(a.Listeners) == 0 && len(a.Templates) == 0 && len(a.EnvTemplates) == 0 {
			return fail(a.Cache.Line, "the cache needs at least one listener or template to serve")
		}
		if a.Cache.UseAutoAuthToken && a.AutoAuth == nil {
			return fail(a.Cache.Line, "cache.use_auto_auth_token is set but there is no auto_auth block")
		}
	}
	if a.APIProxy != nil {
		if len(a.Listeners) == 0 {
			return fail(a.APIProxy.Line, "api_proxy needs at least one listener")
		}
		if a.APIProxy.UseAutoAuthToken && a.AutoAuth == nil {
			return fail(a.APIProxy.Line, "api_proxy.use_auto_auth_token is set but there is no auto_auth block")
		}
	}
	if a.AutoAuth == nil && a.Cache == nil && len(a.Listeners) == 0 {
		return fail(0, "no auto_auth, cache or listener block: the agent would have nothing to do")
	}
	addrs := map[string]int{}
	for _, l := range a.Listeners {
		if err := l.validate(fail); err != nil {
			return err
		}
		key := l.Type + " " + l.Address
		if prev, ok := addrs[key]; ok {
			return fail(l.Line, "listener %s %q is declared twice (line %d)", l.Type, l.Address, prev)
		}
		addrs[key] = l.Line
	}
	tc := a.TemplateConfig
	if tc.StaticSecretRenderInterval <= 0 {
		return fail(tc.Line, "static_secret_render_interval must be positive")
	}
	if tc.MaxConnectionsPerHost <= 0 {
		return fail(tc.Line, "max_connections_per_host must be positive")
	}
	dests := map[string]int{}
	for _, t := range a.Templates {
		if err := t.TemplateOptions.validate(fail, t.Line, "template"); err != nil {
			return err
		}
		if t.Destination == "" {
			return fail(t.Line, "template needs a destination")
		}
		if prev, ok := dests[t.Destination]; ok {
			return fail(t.Line, "template destination %q is also the destination of the template at line %d", t.Destination, prev)
		}
		dests[t.Destination] = t.Line
		if t.Perms&^fs.ModePerm != 0 {
			return fail(t.Line, "perms %#o has bits other than permissions", t.Perms)
		}
		if w := t.Wait; w != nil && (w.Min < 0 || w.Max < w.Min) {
			return fail(t.Line, "wait max (%s) must not be less than min (%s)", w.Max, w.Min)
		}
		if e := t.Exec; e != nil && (len(e.Command) == 0 || e.Command[0] == "") {
			return fail(t.Line, "template exec needs a command")
		}
	}
	names := map[string]int{}
	for _, e := range a.EnvTemplates {
		if e.Name == "" || strings.ContainsAny(e.Name, "=\x00") {
			return fail(e.Line, "env_template name %q is not a valid environment variable name", e.Name)
		}
		if prev, ok := names[e.Name]; ok {
			return fail(e.Line, "env_template %q is declared twice (line %d)", e.Name, prev)
		}
		names[e.Name] = e.Line
		if err := e.TemplateOptions.validate(fail, e.Line, fmt.Sprintf("env_template %q", e.Name)); err != nil {
			return err
		}
	}
	if a.Exec != nil || len(a.EnvTemplates) > 0 {
		switch {
		case a.Exec == nil:
			return fail(a.EnvTemplates[0].Line, "env_template needs a top-level exec block: the variables are for its child process")
		case len(a.EnvTemplates) == 0:
			return fail(a.Exec.Line, "exec needs at least one env_template")
		case len(a.Templates) > 0:
			return fail(a.Templates[0].Line, "template cannot be used with env_template: process supervisor mode renders only into the environment")
		case a.APIProxy != nil:
			return fail(a.APIProxy.Line, "api_proxy cannot be used with env_template")
		}
		if err := a.Exec.validate(fail); err != nil {
			return err
		}
	}
	for _, list := range []struct {
		key  string
		vals []string
	}{{"disable_idle_connections", a.DisableIdleConnections}, {"disable_keep_alives", a.DisableKeepAlives}} {
		for _, v := range list.vals {
			if !oneOf(v, "auto-auth", "caching", "proxying", "templating") {
				return fail(0, "invalid %s value %q: want auto-auth, caching, proxying or templating", list.key, v)
			}
		}
	}
	return nil
}

type failFunc func(line int, format string, args ...any) error

func (aa *AutoAuth) validate(fail failFunc) error {
	m := aa.Method
	set := 0
	for _, ok := range []bool{m.AppRole != nil, m.JWT != nil, m.Kubernetes != nil, m.TokenFile != nil} {
		if ok {
			set++
		}
	}
	want := map[string]bool{"approle": m.AppRole != nil, "jwt": m.JWT != nil, "kubernetes": m.Kubernetes != nil, "token_file": m.TokenFile != nil}
	if set != 1 || !want[m.Type] {
		return fail(m.Line, "auto_auth method %q needs its own config and no other", m.Type)
	}
	switch {
	case m.AppRole != nil && m.AppRole.RoleIDFilePath == "":
		return fail(m.Line, `method "approle" needs config.role_id_file_path`)
	case m.AppRole != nil && m.AppRole.SecretIDResponseWrappingPath != "" && m.AppRole.SecretIDFilePath == "":
		return fail(m.Line, `method "approle": config.secret_id_response_wrapping_path needs config.secret_id_file_path, the file holding the wrapping token`)
	case m.JWT != nil && (m.JWT.Path == "" || m.JWT.Role == ""):
		return fail(m.Line, `method "jwt" needs config.path and config.role`)
	case m.Kubernetes != nil && m.Kubernetes.Role == "":
		return fail(m.Line, `method "kubernetes" needs config.role`)
	case m.TokenFile != nil && m.TokenFile.TokenFilePath == "":
		return fail(m.Line, `method "token_file" needs config.token_file_path`)
	}
	if m.MountPath == "" || strings.HasSuffix(m.MountPath, "/") {
		return fail(m.Line, "mount_path %q must be set, without a trailing slash", m.MountPath)
	}
	if m.MinBackoff <= 0 || m.MaxBackoff < m.MinBackoff {
		return fail(m.Line, "min_backoff (%s) must be positive and not above max_backoff (%s)", m.MinBackoff, m.MaxBackoff)
	}
	paths := map[string]int{}
	for _, s := range aa.Sinks {
		if s.Type != "file" || s.Path == "" {
			return fail(s.Line, `sink "file" needs config.path`)
		}
		if s.Mode&^fs.ModePerm != 0 {
			return fail(s.Line, "sink mode %#o has bits other than permissions", s.Mode)
		}
		if prev, ok := paths[s.Path]; ok {
			return fail(s.Line, "sink path %q is also the path of the sink at line %d", s.Path, prev)
		}
		paths[s.Path] = s.Line
	}
	return nil
}

func (l AgentListener) validate(fail failFunc) error {
	switch l.Type {
	case "tcp":
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			return fail(l.Line, "invalid listener address %q: want host:port", l.Address)
		}
	case "unix":
		if l.Address == "" {
			return fail(l.Line, `listener "unix" needs an address (the socket's path)`)
		}
	default:
		return fail(l.Line, "unsupported listener type %q: want tcp or unix", l.Type)
	}
	if !l.TLSDisable && (l.TLSCertFile == "" || l.TLSKeyFile == "") {
		return fail(l.Line, "listener needs tls_cert_file and tls_key_file, or tls_disable = true")
	}
	if _, err := TLSVersion(l.TLSMinVersion); err != nil {
		return fail(l.Line, "%v", err)
	}
	return nil
}

func (o TemplateOptions) validate(fail failFunc, line int, what string) error {
	switch {
	case o.Source == "" && o.Contents == "":
		return fail(line, "%s needs source or contents", what)
	case o.Source != "" && o.Contents != "":
		return fail(line, "%s has both source and contents: set one", what)
	case o.LeftDelimiter == "" || o.RightDelimiter == "":
		return fail(line, "%s has an empty delimiter", what)
	}
	return nil
}

func (e *Exec) validate(fail failFunc) error {
	if len(e.Command) == 0 || e.Command[0] == "" {
		return fail(e.Line, "exec needs a command")
	}
	if !oneOf(e.RestartOnSecretChanges, "always", "never") {
		return fail(e.Line, "invalid restart_on_secret_changes %q: want always or never", e.RestartOnSecretChanges)
	}
	if !oneOf(e.RestartStopSignal, signalNames...) {
		return fail(e.Line, "invalid restart_stop_signal %q: want one of %s", e.RestartStopSignal, strings.Join(signalNames, ", "))
	}
	return nil
}

// signalNames are the signals restart_stop_signal may name.
var signalNames = []string{"SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGTERM", "SIGUSR1", "SIGUSR2"}
