// Package config reads the server configuration file: HCL (or its JSON
// form), the same shape as Vault's, decoded from the syntax tree so that
// every unknown key and bad value is reported with its file and line.
//
//	storage "bolt" { path = "/var/lib/vigil/vigil.db" }
//	listener "tcp" {
//	  address       = "0.0.0.0:8200"
//	  tls_cert_file = "/etc/vigil/tls.crt"
//	  tls_key_file  = "/etc/vigil/tls.key"
//	}
//	api_addr  = "https://vigil.internal:8200"
//	log_level = "info"
//
// and optionally a seal block for auto-unseal (see [Seal]). Several
// servers share one PostgreSQL database with
//
//	storage "postgresql" {
//	  connection_url = "postgres://vigil:...@db.internal:5432/vigil"
//	  ha_enabled     = true
//	}
//
// It imports nothing of Vigil's: the server turns the typed result into
// running parts.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
)

// Defaults.
const (
	DefaultAddress            = "127.0.0.1:8200"
	DefaultMaxRequestSize     = 32 << 20
	DefaultMaxRequestDuration = 90 * time.Second
)

// Server is a parsed server configuration.
type Server struct {
	Storage Storage
	// Seal protects the root key: Shamir's unseal keys when there is no
	// seal block (Type "shamir"), or an auto seal.
	Seal            Seal
	Listeners       []Listener
	APIAddr         string
	ClusterAddr     string
	ClusterName     string
	LogLevel        string
	LogFormat       string
	UI              bool
	DisableMlock    bool
	PidFile         string
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
	// LoginRateLimit and LoginBurst limit login attempts per client
	// address (per second, and at once); zero means the server's
	// defaults. Vigil's own keys: Vault has no such setting.
	LoginRateLimit int64
	LoginBurst     int64
	// Audit are the audit devices the server always has; the API cannot
	// disable them.
	Audit []AuditDevice
	// Telemetry is the telemetry block.
	Telemetry Telemetry
}

// Telemetry is the telemetry { ... } block. Vigil's metrics are
// Prometheus collectors, always on; the block keeps Vault's keys that
// still mean something.
type Telemetry struct {
	// DisablePrometheus is set by prometheus_retention_time = 0, which in
	// Vault turns the Prometheus format off (sys/metrics?format=prometheus
	// answers 400). Any other retention is accepted: Vigil's counters
	// and histograms are cumulative and need none.
	DisablePrometheus bool
	// DisableHostname is accepted for Vault configurations; Vigil never
	// puts the host name into metric names.
	DisableHostname bool
}

// AuditDevice is one audit "type" { ... } block.
type AuditDevice struct {
	// Type is "file", "socket" or "syslog".
	Type string
	// Path is the device's path ("<type>/" unless set).
	Path        string
	Description string
	// Options are the other keys, as strings (file_path, mode, prefix,
	// hmac_accessor, ...); the device checks them when it opens.
	Options map[string]string
	Line    int
}

// Storage is the storage block.
type Storage struct {
	// Type is "inmem", "bolt" or "postgresql".
	Type string
	// Bolt is set when Type is "bolt".
	Bolt *BoltStorage
	// Postgres is set when Type is "postgresql".
	Postgres *PostgresStorage
	Line     int
}

// BoltStorage configures the embedded bbolt store.
type BoltStorage struct {
	Path string
}

// PostgresStorage configures the PostgreSQL store (storage "postgresql"),
// with Vault's keys. Zero values mean the backend's defaults.
type PostgresStorage struct {
	// ConnectionURL may be empty: the server then takes the URL from the
	// VIGIL_PG_CONNECTION_URL environment variable (which, as in Vault,
	// overrides it when set), keeping the password out of the file.
	ConnectionURL string
	// Table and HATable name the data and lock tables.
	Table   string
	HATable string
	// HAEnabled makes the servers sharing the database elect one active.
	HAEnabled bool
	// MaxParallel bounds the connections to the database.
	MaxParallel int
	// MaxIdleConnections bounds the unused connections kept open.
	MaxIdleConnections int
	// LeaderCACertFile holds the CA certificates a standby trusts for the
	// active server's listener when it forwards requests (Vault's raft
	// key name): then only these, not the system's roots.
	LeaderCACertFile string
	// LeaderClientCertFile and LeaderClientKeyFile are the certificate a
	// standby presents when the active server asks for one.
	LeaderClientCertFile, LeaderClientKeyFile string
}

// Listener is one listener "tcp" block.
type Listener struct {
	Type                         string
	Address                      string
	TLSCertFile, TLSKeyFile      string
	TLSMinVersion                string
	TLSDisable                   bool
	MaxRequestSize               int64
	MaxRequestDuration           time.Duration
	XForwardedForAuthorizedAddrs []netip.Prefix
	// TLSClientCAFile, when set, makes the listener ask clients for a
	// certificate signed by these CAs (verified if given, and its
	// subject recorded in the audit log); with
	// TLSRequireAndVerifyClientCert a client without one is refused.
	TLSClientCAFile               string
	TLSRequireAndVerifyClientCert bool
	// UnauthenticatedMetricsAccess (telemetry { unauthenticated_metrics_access
	// = true } in the listener, as in Vault) serves sys/metrics without a
	// token, for scrapers.
	UnauthenticatedMetricsAccess bool
	Line                         int
}

// Loopback reports whether the listener's host is a loopback address (or
// "localhost"). An empty host or an unspecified address is not.
func (l Listener) Loopback() bool {
	host, _, err := net.SplitHostPort(l.Address)
	if err != nil {
		host = l.Address
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// ParseError is a configuration error at a place in a file.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Load reads and parses the file at path.
func Load(path string) (*Server, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, src)
}

// Dev is the configuration of `vigil server -dev`: in memory, one plain
// HTTP listener on addr (loopback by default).
func Dev(addr string) *Server {
	if addr == "" {
		addr = DefaultAddress
	}
	return &Server{
		Storage: Storage{Type: "inmem"},
		Seal:    Seal{Type: "shamir"},
		Listeners: []Listener{{
			Type: "tcp", Address: addr, TLSDisable: true,
			MaxRequestSize: DefaultMaxRequestSize, MaxRequestDuration: DefaultMaxRequestDuration,
		}},
		LogLevel: "info",
	}
}

// Parse parses configuration source; name is used in errors.
func Parse(name string, src []byte) (*Server, error) {
	return parseWith(name, src, (*parser).server)
}

// parseWith parses src (HCL or its JSON form) and hands its top-level list
// to body. The HCL library panics on a few malformed literals; they are
// reported as errors instead of crashing the caller.
func parseWith[T any](name string, src []byte, body func(*parser, *ast.ObjectList) (*T, error)) (cfg *T, err error) {
	p := &parser{file: name}
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, &ParseError{File: name, Msg: fmt.Sprintf("invalid configuration: %v", r)}
		}
	}()
	f, err := hcl.ParseBytes(src)
	if err != nil {
		return nil, p.syntaxError(err)
	}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok {
		return nil, &ParseError{File: name, Msg: "the configuration must be an object"}
	}
	return body(p, list)
}

type parser struct {
	file string
}

func (p *parser) errorf(pos token.Pos, format string, args ...any) error {
	return &ParseError{File: p.file, Line: pos.Line, Msg: fmt.Sprintf(format, args...)}
}

// syntaxError turns an HCL parse error (which carries line:column) into a
// ParseError.
func (p *parser) syntaxError(err error) error {
	msg := err.Error()
	line := 0
	// Errors look like "At 3:5: ..." (HCL) or "At line 3, column 5: ...".
	if rest, ok := strings.CutPrefix(msg, "At "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			pos := rest[:i]
			if l, _, ok := strings.Cut(pos, ":"); ok {
				line, _ = strconv.Atoi(l)
			} else if after, ok := strings.CutPrefix(pos, "line "); ok {
				l, _, _ := strings.Cut(after, ",")
				line, _ = strconv.Atoi(l)
			}
			if line > 0 {
				msg = rest[i+2:]
			}
		}
	}
	return &ParseError{File: p.file, Line: line, Msg: "syntax error: " + msg}
}

func keyName(k *ast.ObjectKey) string {
	s := k.Token.Text
	if k.Token.Type == token.STRING {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return strings.Trim(s, `"`)
	}
	return s
}

// block is one labelled block such as storage "bolt" { ... }.
type block struct {
	label string
	body  *ast.ObjectList
	pos   token.Pos
}

// blocks returns the labelled blocks of an item, in its HCL form
// (storage "bolt" {}) or JSON form ({"storage": {"bolt": {}}} or a list of
// such objects).
func (p *parser) blocks(item *ast.ObjectItem) ([]block, error) {
	name := keyName(item.Keys[0])
	if len(item.Keys) == 2 {
		obj, ok := item.Val.(*ast.ObjectType)
		if !ok {
			return nil, p.errorf(item.Pos(), "%s %q must be a block", name, keyName(item.Keys[1]))
		}
		return []block{{label: keyName(item.Keys[1]), body: obj.List, pos: item.Pos()}}, nil
	}
	if len(item.Keys) > 2 {
		return nil, p.errorf(item.Pos(), "%s takes one label", name)
	}
	objs, err := p.objects(item, name, "%s must be a %s, as in %s \"type\" { ... }", "labelled block")
	if err != nil {
		return nil, err
	}
	var out []block
	for _, o := range objs {
		for _, inner := range o.List.Items {
			body, ok := inner.Val.(*ast.ObjectType)
			if !ok || len(inner.Keys) != 1 {
				return nil, p.errorf(inner.Pos(), "%s must be a labelled block, as in %s \"type\" { ... }", name, name)
			}
			out = append(out, block{label: keyName(inner.Keys[0]), body: body.List, pos: inner.Pos()})
		}
	}
	return out, nil
}

func (p *parser) server(list *ast.ObjectList) (*Server, error) {
	cfg := &Server{Seal: Seal{Type: "shamir"}}
	var storages, seals []block
	for _, item := range list.Items {
		if len(item.Keys) == 0 {
			continue
		}
		key := keyName(item.Keys[0])
		var err error
		switch key {
		case "storage", "backend":
			var bs []block
			bs, err = p.blocks(item)
			storages = append(storages, bs...)
		case "seal":
			var bs []block
			bs, err = p.blocks(item)
			seals = append(seals, bs...)
		case "listener":
			var bs []block
			if bs, err = p.blocks(item); err == nil {
				for _, b := range bs {
					l, lerr := p.listener(b)
					if lerr != nil {
						return nil, lerr
					}
					cfg.Listeners = append(cfg.Listeners, l)
				}
			}
		case "api_addr":
			cfg.APIAddr, err = p.str(item)
		case "cluster_addr":
			cfg.ClusterAddr, err = p.str(item)
		case "cluster_name":
			cfg.ClusterName, err = p.str(item)
		case "pid_file":
			cfg.PidFile, err = p.str(item)
		case "log_level":
			cfg.LogLevel, err = p.logLevel(item)
		case "log_format":
			cfg.LogFormat, err = p.logFormat(item)
		case "ui":
			cfg.UI, err = p.boolean(item)
		case "disable_mlock":
			cfg.DisableMlock, err = p.boolean(item)
		case "default_lease_ttl":
			cfg.DefaultLeaseTTL, err = p.duration(item)
		case "max_lease_ttl":
			cfg.MaxLeaseTTL, err = p.duration(item)
		case "audit":
			var bs []block
			if bs, err = p.blocks(item); err == nil {
				for _, b := range bs {
					d, aerr := p.audit(b)
					if aerr != nil {
						return nil, aerr
					}
					for _, o := range cfg.Audit {
						if o.Path == d.Path {
							return nil, p.errorf(b.pos, "audit device path %q is declared twice (line %d)", d.Path, o.Line)
						}
					}
					cfg.Audit = append(cfg.Audit, d)
				}
			}
		case "telemetry":
			var body *ast.ObjectList
			if body, err = p.object(item); err == nil {
				cfg.Telemetry, err = p.telemetry(body)
			}
		case "login_rate_limit", "login_burst":
			var n int64
			if n, err = p.integer(item); err == nil && n < 1 {
				err = p.errorf(item.Pos(), "%s must be at least 1, got %d", key, n)
			}
			if key == "login_rate_limit" {
				cfg.LoginRateLimit = n
			} else {
				cfg.LoginBurst = n
			}
		default:
			err = p.errorf(item.Pos(), "unknown key %q", key)
		}
		if err != nil {
			return nil, err
		}
	}
	switch len(storages) {
	case 0:
		return nil, &ParseError{File: p.file, Msg: `no storage block: add storage "bolt" { path = "..." } or storage "inmem" {}`}
	case 1:
	default:
		return nil, p.errorf(storages[1].pos, "only one storage block is allowed")
	}
	st, err := p.storage(storages[0])
	if err != nil {
		return nil, err
	}
	cfg.Storage = st
	if len(seals) > 1 {
		return nil, p.errorf(seals[1].pos, "only one seal block is allowed (seal migration is not supported)")
	}
	if len(seals) == 1 {
		if cfg.Seal, err = p.seal(seals[0]); err != nil {
			return nil, err
		}
	}
	if len(cfg.Listeners) == 0 {
		return nil, &ParseError{File: p.file, Msg: `at least one listener is required: listener "tcp" { address = "127.0.0.1:8200" }`}
	}
	if cfg.MaxLeaseTTL > 0 && cfg.DefaultLeaseTTL > cfg.MaxLeaseTTL {
		return nil, &ParseError{File: p.file, Msg: "default_lease_ttl must not exceed max_lease_ttl"}
	}
	return cfg, nil
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

func (p *parser) storage(b block) (Storage, error) {
	st := Storage{Type: b.label, Line: b.pos.Line}
	switch b.label {
	case "inmem":
		return st, p.noKeys(b)
	case "bolt":
		bs := &BoltStorage{}
		for _, item := range b.body.Items {
			key := keyName(item.Keys[0])
			var err error
			switch key {
			case "path":
				bs.Path, err = p.str(item)
			default:
				err = p.errorf(item.Pos(), "unknown key %q in storage %q", key, b.label)
			}
			if err != nil {
				return Storage{}, err
			}
		}
		if bs.Path == "" {
			return Storage{}, p.errorf(b.pos, `storage "bolt" needs a path`)
		}
		st.Bolt = bs
		return st, nil
	case "postgresql":
		ps, err := p.postgres(b)
		if err != nil {
			return Storage{}, err
		}
		st.Postgres = ps
		return st, nil
	}
	return Storage{}, p.errorf(b.pos, "unsupported storage type %q: supported types are bolt, inmem and postgresql", b.label)
}

// postgres parses a storage "postgresql" block. As Vault does, it takes
// ha_enabled, max_parallel and max_idle_connections as strings too.
func (p *parser) postgres(b block) (*PostgresStorage, error) {
	ps := &PostgresStorage{}
	for _, item := range b.body.Items {
		key := keyName(item.Keys[0])
		var err error
		var n int64
		switch key {
		case "connection_url":
			ps.ConnectionURL, err = p.str(item)
		case "table":
			ps.Table, err = p.str(item)
		case "ha_table":
			ps.HATable, err = p.str(item)
		case "ha_enabled":
			ps.HAEnabled, err = p.boolean(item)
		case "max_parallel":
			if n, err = p.integer(item); err == nil && (n < 1 || n > 1<<20) {
				err = p.errorf(item.Pos(), "max_parallel must be between 1 and %d, got %d", 1<<20, n)
			}
			ps.MaxParallel = int(n)
		case "max_idle_connections":
			if n, err = p.integer(item); err == nil && (n < 0 || n > 1<<20) {
				err = p.errorf(item.Pos(), "max_idle_connections must be between 0 and %d, got %d", 1<<20, n)
			}
			ps.MaxIdleConnections = int(n)
		case "leader_ca_cert_file":
			ps.LeaderCACertFile, err = p.str(item)
		case "leader_client_cert_file":
			ps.LeaderClientCertFile, err = p.str(item)
		case "leader_client_key_file":
			ps.LeaderClientKeyFile, err = p.str(item)
		default:
			err = p.errorf(item.Pos(), "unknown key %q in storage %q", key, b.label)
		}
		if err != nil {
			return nil, err
		}
	}
	if (ps.LeaderClientCertFile == "") != (ps.LeaderClientKeyFile == "") {
		return nil, p.errorf(b.pos, `storage "postgresql" needs both leader_client_cert_file and leader_client_key_file, or neither`)
	}
	return ps, nil
}

func (p *parser) noKeys(b block) error {
	if len(b.body.Items) > 0 {
		it := b.body.Items[0]
		return p.errorf(it.Pos(), "unknown key %q in storage %q", keyName(it.Keys[0]), b.label)
	}
	return nil
}

func (p *parser) listener(b block) (Listener, error) {
	if b.label != "tcp" {
		return Listener{}, p.errorf(b.pos, "unsupported listener type %q: the only type is tcp", b.label)
	}
	l := Listener{Type: "tcp", Address: DefaultAddress, MaxRequestSize: DefaultMaxRequestSize, MaxRequestDuration: DefaultMaxRequestDuration, Line: b.pos.Line}
	for _, item := range b.body.Items {
		key := keyName(item.Keys[0])
		var err error
		switch key {
		case "address":
			l.Address, err = p.str(item)
		case "tls_cert_file":
			l.TLSCertFile, err = p.str(item)
		case "tls_key_file":
			l.TLSKeyFile, err = p.str(item)
		case "tls_min_version":
			if l.TLSMinVersion, err = p.str(item); err == nil {
				if _, verr := TLSVersion(l.TLSMinVersion); verr != nil {
					err = p.errorf(item.Pos(), "%v", verr)
				}
			}
		case "tls_disable":
			l.TLSDisable, err = p.boolean(item)
		case "max_request_size":
			var n int64
			if n, err = p.integer(item); err == nil {
				switch {
				case n < 0:
					err = p.errorf(item.Pos(), "max_request_size must not be negative")
				case n > 0:
					l.MaxRequestSize = n
				}
			}
		case "max_request_duration":
			var d time.Duration
			if d, err = p.duration(item); err == nil && d > 0 {
				l.MaxRequestDuration = d
			}
		case "x_forwarded_for_authorized_addrs":
			l.XForwardedForAuthorizedAddrs, err = p.prefixes(item)
		case "tls_client_ca_file":
			l.TLSClientCAFile, err = p.str(item)
		case "tls_require_and_verify_client_cert":
			l.TLSRequireAndVerifyClientCert, err = p.boolean(item)
		case "telemetry":
			var body *ast.ObjectList
			if body, err = p.object(item); err == nil {
				l.UnauthenticatedMetricsAccess, err = p.listenerTelemetry(body)
			}
		default:
			err = p.errorf(item.Pos(), "unknown key %q in listener %q", key, b.label)
		}
		if err != nil {
			return Listener{}, err
		}
	}
	if _, _, err := net.SplitHostPort(l.Address); err != nil {
		return Listener{}, p.errorf(b.pos, "invalid listener address %q: want host:port", l.Address)
	}
	if l.TLSRequireAndVerifyClientCert && l.TLSClientCAFile == "" {
		return Listener{}, p.errorf(b.pos, "tls_require_and_verify_client_cert needs tls_client_ca_file")
	}
	if (l.TLSCertFile == "") != (l.TLSKeyFile == "") && !l.TLSDisable {
		return Listener{}, p.errorf(b.pos, "tls_cert_file and tls_key_file must be set together")
	}
	return l, nil
}

// object returns the body of an unlabelled block (telemetry { ... }), in
// its HCL or JSON form.
func (p *parser) object(item *ast.ObjectItem) (*ast.ObjectList, error) {
	name := keyName(item.Keys[0])
	if len(item.Keys) != 1 {
		return nil, p.errorf(item.Pos(), "%s takes no label", name)
	}
	switch v := item.Val.(type) {
	case *ast.ObjectType:
		return v.List, nil
	case *ast.ListType:
		if len(v.List) == 1 {
			if o, ok := v.List[0].(*ast.ObjectType); ok {
				return o.List, nil
			}
		}
	}
	return nil, p.errorf(item.Pos(), "%s must be a block, as in %s { ... }", name, name)
}

func (p *parser) telemetry(body *ast.ObjectList) (Telemetry, error) {
	var t Telemetry
	for _, item := range body.Items {
		key := keyName(item.Keys[0])
		var err error
		switch key {
		case "prometheus_retention_time":
			var d time.Duration
			if d, err = p.duration(item); err == nil {
				t.DisablePrometheus = d == 0
			}
		case "disable_hostname":
			t.DisableHostname, err = p.boolean(item)
		case "unauthenticated_metrics_access":
			err = p.errorf(item.Pos(), "unauthenticated_metrics_access belongs in a listener's telemetry block")
		default:
			err = p.errorf(item.Pos(), "unknown key %q in telemetry: Vigil serves its metrics at sys/metrics for Prometheus to scrape, and pushes them nowhere", key)
		}
		if err != nil {
			return Telemetry{}, err
		}
	}
	return t, nil
}

func (p *parser) listenerTelemetry(body *ast.ObjectList) (bool, error) {
	var unauth bool
	for _, item := range body.Items {
		key := keyName(item.Keys[0])
		if key != "unauthenticated_metrics_access" {
			return false, p.errorf(item.Pos(), "unknown key %q in listener telemetry: the only key is unauthenticated_metrics_access", key)
		}
		var err error
		if unauth, err = p.boolean(item); err != nil {
			return false, err
		}
	}
	return unauth, nil
}

// auditTypes are the audit device types a config may declare.
var auditTypes = []string{"file", "socket", "syslog"}

func (p *parser) audit(b block) (AuditDevice, error) {
	if !oneOf(b.label, auditTypes...) {
		return AuditDevice{}, p.errorf(b.pos, "unsupported audit device type %q: want file, socket or syslog", b.label)
	}
	d := AuditDevice{Type: b.label, Path: b.label + "/", Options: map[string]string{}, Line: b.pos.Line}
	for _, item := range b.body.Items {
		key := keyName(item.Keys[0])
		tok, err := p.literal(item, "a string, number or boolean")
		if err != nil {
			return AuditDevice{}, err
		}
		val := tok.Text
		if tok.Type == token.STRING || tok.Type == token.HEREDOC {
			val = tok.Value().(string)
		}
		switch key {
		case "path":
			val = strings.Trim(val, "/")
			if val == "" || strings.Contains(val, "//") {
				return AuditDevice{}, p.errorf(item.Pos(), "invalid audit device path %q", tok.Text)
			}
			d.Path = val + "/"
		case "description":
			d.Description = val
		default:
			d.Options[key] = val
		}
	}
	if d.Type == "file" && d.Options["file_path"] == "" {
		return AuditDevice{}, p.errorf(b.pos, `audit "file" needs file_path (a path, "stdout" or "discard")`)
	}
	if d.Type == "socket" && d.Options["address"] == "" {
		return AuditDevice{}, p.errorf(b.pos, `audit "socket" needs an address`)
	}
	return d, nil
}

// literal returns an item's value as a literal token.
func (p *parser) literal(item *ast.ObjectItem, want string) (token.Token, error) {
	lit, ok := item.Val.(*ast.LiteralType)
	if !ok || len(item.Keys) != 1 {
		return token.Token{}, p.errorf(item.Pos(), "%s must be %s", keyName(item.Keys[0]), want)
	}
	return lit.Token, nil
}

func (p *parser) str(item *ast.ObjectItem) (string, error) {
	tok, err := p.literal(item, "a string")
	if err != nil {
		return "", err
	}
	switch tok.Type {
	case token.STRING, token.HEREDOC:
		return tok.Value().(string), nil
	}
	return "", p.errorf(item.Pos(), "%s must be a string", keyName(item.Keys[0]))
}

// boolean accepts true/false and, as Vault does, the strings and numbers
// "true"/"false"/"1"/"0".
func (p *parser) boolean(item *ast.ObjectItem) (bool, error) {
	name := keyName(item.Keys[0])
	tok, err := p.literal(item, "a boolean")
	if err != nil {
		return false, err
	}
	text := tok.Text
	if tok.Type == token.STRING {
		text = tok.Value().(string)
	}
	switch strings.ToLower(text) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, p.errorf(item.Pos(), "%s must be true or false, not %s", name, tok.Text)
}

func (p *parser) integer(item *ast.ObjectItem) (int64, error) {
	name := keyName(item.Keys[0])
	tok, err := p.literal(item, "a number")
	if err != nil {
		return 0, err
	}
	text := tok.Text
	if tok.Type == token.STRING {
		text = tok.Value().(string)
	} else if tok.Type != token.NUMBER {
		return 0, p.errorf(item.Pos(), "%s must be a whole number", name)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	if err != nil {
		return 0, p.errorf(item.Pos(), "%s must be a whole number, not %s", name, tok.Text)
	}
	return n, nil
}

// duration accepts a Go duration ("768h", "30s"), whole seconds as a
// number, or seconds in a string.
func (p *parser) duration(item *ast.ObjectItem) (time.Duration, error) {
	name := keyName(item.Keys[0])
	tok, err := p.literal(item, "a duration")
	if err != nil {
		return 0, err
	}
	text := strings.TrimSpace(tok.Text)
	if tok.Type == token.STRING {
		text = strings.TrimSpace(tok.Value().(string))
	} else if tok.Type != token.NUMBER {
		return 0, p.errorf(item.Pos(), "%s must be a duration such as \"768h\" or a number of seconds", name)
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil && n >= 0 && n <= int64(1<<63-1)/int64(time.Second) {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil || d < 0 {
		return 0, p.errorf(item.Pos(), "%s must be a duration such as \"768h\" or a number of seconds, not %s", name, tok.Text)
	}
	return d, nil
}

func (p *parser) prefixes(item *ast.ObjectItem) ([]netip.Prefix, error) {
	name := keyName(item.Keys[0])
	var raw []string
	switch v := item.Val.(type) {
	case *ast.LiteralType:
		s, err := p.str(item)
		if err != nil {
			return nil, err
		}
		raw = strings.Split(s, ",")
	case *ast.ListType:
		for _, n := range v.List {
			lit, ok := n.(*ast.LiteralType)
			if !ok || lit.Token.Type != token.STRING {
				return nil, p.errorf(n.Pos(), "%s must list addresses as strings", name)
			}
			raw = append(raw, lit.Token.Value().(string))
		}
	default:
		return nil, p.errorf(item.Pos(), "%s must be a string or a list of strings", name)
	}
	var out []netip.Prefix
	for _, s := range raw {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, p.errorf(item.Pos(), "%s: invalid address or CIDR %q", name, s)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// objects returns the bodies of a block item: one, or a list of them
// (the JSON form). A value of another kind is an error, worded by format
// (with the item's name, kind and name again).
func (p *parser) objects(item *ast.ObjectItem, name, format, kind string) ([]*ast.ObjectType, error) {
	switch v := item.Val.(type) {
	case *ast.ObjectType:
		return []*ast.ObjectType{v}, nil
	case *ast.ListType:
		var objs []*ast.ObjectType
		for _, n := range v.List {
			o, ok := n.(*ast.ObjectType)
			if !ok {
				return nil, p.errorf(n.Pos(), "%s must be a block", name)
			}
			objs = append(objs, o)
		}
		return objs, nil
	}
	return nil, p.errorf(item.Pos(), format, name, kind, name)
}

// logLevel reads a log_level value (the server's and the agent's).
func (p *parser) logLevel(item *ast.ObjectItem) (string, error) {
	v, err := p.str(item)
	if err == nil && !oneOf(strings.ToLower(v), "trace", "debug", "info", "warn", "warning", "error", "err") {
		err = p.errorf(item.Pos(), "invalid log_level %q: want trace, debug, info, warn or error", v)
	}
	return v, err
}

// logFormat reads a log_format value (the server's and the agent's).
func (p *parser) logFormat(item *ast.ObjectItem) (string, error) {
	v, err := p.str(item)
	if err == nil && !oneOf(strings.ToLower(v), "standard", "text", "json") {
		err = p.errorf(item.Pos(), "invalid log_format %q: want standard, text or json", v)
	}
	return v, err
}
