package config

import (
	"strings"
	"time"

	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
)

// unflatten undoes what the HCL library does to JSON: it turns
// {"auto_auth": {"method": {"approle": {...}}}} into one item with the keys
// auto_auth, method, approle. Rebuilt, every item has one key and nested
// objects are nested again, so that the block parsers read HCL and JSON
// alike. Items that share their first key (the pieces of one JSON object,
// or HCL's labelled blocks such as listener "tcp" and listener "unix") are
// gathered into one object, in file order: listener { tcp {...} unix {...} }.
func unflatten(list *ast.ObjectList) {
	var out []*ast.ObjectItem
	gathered := map[string]*ast.ObjectList{}
	for _, it := range list.Items {
		if len(it.Keys) <= 1 {
			out = append(out, it)
			continue
		}
		inner := &ast.ObjectItem{Keys: it.Keys[1:], Assign: it.Assign, Val: it.Val}
		k := keyName(it.Keys[0])
		if l, ok := gathered[k]; ok {
			l.Items = append(l.Items, inner)
			continue
		}
		l := &ast.ObjectList{Items: []*ast.ObjectItem{inner}}
		gathered[k] = l
		out = append(out, &ast.ObjectItem{Keys: it.Keys[:1], Val: &ast.ObjectType{List: l, Lbrace: it.Pos()}})
	}
	list.Items = out
	for _, it := range out {
		switch v := it.Val.(type) {
		case *ast.ObjectType:
			unflatten(v.List)
		case *ast.ListType:
			for _, n := range v.List {
				if o, ok := n.(*ast.ObjectType); ok {
					unflatten(o.List)
				}
			}
		}
	}
}

// typedBlocks returns the blocks of an item that names its type either as
// a label (method "approle" { ... }, after unflatten method { approle {
// ... } }) or with a type key (method { type = "approle" ... }). bodyKeys
// are the keys such a block may hold, to tell a label from a body.
func (p *parser) typedBlocks(item *ast.ObjectItem, bodyKeys ...string) ([]block, error) {
	name := keyName(item.Keys[0])
	objs, err := p.objects(item, name, "%s must be a %s, as in %s \"type\" { ... }", "block")
	if err != nil {
		return nil, err
	}
	var out []block
	for _, o := range objs {
		typ, rest, err := p.typeKey(o.List)
		if err != nil {
			return nil, err
		}
		if typ != "" {
			out = append(out, block{label: typ, body: rest, pos: item.Pos()})
			continue
		}
		// Labelled: every item is a label whose value is the body.
		if len(o.List.Items) == 0 {
			return nil, p.errorf(item.Pos(), "%s needs a type, as in %s \"type\" { ... }", name, name)
		}
		for _, inner := range o.List.Items {
			label := keyName(inner.Keys[0])
			body, ok := inner.Val.(*ast.ObjectType)
			if !ok || oneOf(label, bodyKeys...) {
				return nil, p.errorf(inner.Pos(), "%s needs a type, as in %s \"type\" { ... } or type = \"...\"", name, name)
			}
			typ, rest, err := p.typeKey(body.List)
			if err != nil {
				return nil, err
			}
			if typ != "" && typ != label {
				return nil, p.errorf(inner.Pos(), "%s %q says type = %q", name, label, typ)
			}
			out = append(out, block{label: label, body: rest, pos: inner.Pos()})
		}
	}
	return out, nil
}

// typeKey returns the value of a type key in body, and body without it.
func (p *parser) typeKey(body *ast.ObjectList) (string, *ast.ObjectList, error) {
	rest := &ast.ObjectList{}
	typ := ""
	for _, it := range body.Items {
		if keyName(it.Keys[0]) != "type" {
			rest.Items = append(rest.Items, it)
			continue
		}
		s, err := p.str(it)
		if err != nil {
			return "", nil, err
		}
		if s == "" {
			return "", nil, p.errorf(it.Pos(), "type must not be empty")
		}
		typ = strings.ToLower(s)
	}
	return typ, rest, nil
}

// once records the first line of a block that may appear once.
type once map[string]int

func (p *parser) once(seen once, item *ast.ObjectItem, name string) error {
	if prev, ok := seen[name]; ok {
		return p.errorf(item.Pos(), "only one %s block is allowed (the first is at line %d)", name, prev)
	}
	seen[name] = item.Pos().Line
	return nil
}

func (p *parser) refuse(item *ast.ObjectItem, why string) error {
	return p.errorf(item.Pos(), "%s is not supported: %s", keyName(item.Keys[0]), why)
}

func (p *parser) agent(list *ast.ObjectList) (*Agent, error) {
	a := &Agent{
		Vault: Vault{NumRetries: DefaultAgentRetries},
		TemplateConfig: TemplateConfig{
			StaticSecretRenderInterval: DefaultStaticSecretRenderInterval,
			MaxConnectionsPerHost:      DefaultMaxConnectionsPerHost,
		},
	}
	seen := once{}
	for _, item := range list.Items {
		if len(item.Keys) == 0 {
			continue
		}
		key := keyName(item.Keys[0])
		var err error
		switch key {
		case "vault", "vigil":
			if err = p.once(seen, item, "vault (or vigil)"); err == nil {
				a.Vault, err = p.vault(item)
			}
		case "auto_auth":
			if err = p.once(seen, item, key); err == nil {
				a.AutoAuth, err = p.autoAuth(item)
			}
		case "cache":
			if err = p.once(seen, item, key); err == nil {
				a.Cache, err = p.cache(item)
			}
		case "api_proxy":
			if err = p.once(seen, item, key); err == nil {
				var c *Cache
				if c, err = p.cache(item); err == nil {
					a.APIProxy = &APIProxy{UseAutoAuthToken: c.UseAutoAuthToken, ForceAutoAuthToken: c.ForceAutoAuthToken, Line: c.Line}
				}
			}
		case "listener":
			var bs []block
			if bs, err = p.typedBlocks(item, "address", "tls_disable"); err == nil {
				for _, b := range bs {
					l, lerr := p.agentListener(b)
					if lerr != nil {
						return nil, lerr
					}
					a.Listeners = append(a.Listeners, l)
				}
			}
		case "template_config":
			if err = p.once(seen, item, key); err == nil {
				a.TemplateConfig, err = p.templateConfig(item)
			}
		case "template":
			var t Template
			if t, err = p.template(item); err == nil {
				a.Templates = append(a.Templates, t)
			}
		case "env_template":
			var ts []EnvTemplate
			if ts, err = p.envTemplates(item); err == nil {
				a.EnvTemplates = append(a.EnvTemplates, ts...)
			}
		case "exec":
			if err = p.once(seen, item, key); err == nil {
				a.Exec, err = p.exec(item)
			}
		case "pid_file":
			a.PidFile, err = p.str(item)
		case "exit_after_auth":
			a.ExitAfterAuth, err = p.boolean(item)
		case "log_level":
			a.LogLevel, err = p.logLevel(item)
		case "log_format":
			a.LogFormat, err = p.logFormat(item)
		case "log_file":
			a.LogFile, err = p.str(item)
		case "disable_idle_connections":
			a.DisableIdleConnections, err = p.strList(item)
		case "disable_keep_alives":
			a.DisableKeepAlives, err = p.strList(item)
		case "disable_mlock":
			// Accepted for Vault configurations: the agent locks no memory.
			_, err = p.boolean(item)
		case "log_rotate_duration", "log_rotate_bytes", "log_rotate_max_files":
			err = p.refuse(item, "the agent does not rotate its log file; use logrotate or the service manager")
		case "telemetry":
			err = p.refuse(item, "the agent exports no metrics")
		default:
			err = p.errorf(item.Pos(), "unknown key %q", key)
		}
		if err != nil {
			return nil, err
		}
	}
	// As in Vault, cache { use_auto_auth_token } stands for api_proxy's.
	if c := a.Cache; c != nil && c.UseAutoAuthToken {
		if a.APIProxy != nil {
			return nil, p.errorf(token.Pos{Line: c.Line}, "use_auto_auth_token is set in both cache and api_proxy: keep the one in api_proxy")
		}
		a.APIProxy = &APIProxy{UseAutoAuthToken: true, ForceAutoAuthToken: c.ForceAutoAuthToken, Line: c.Line}
	}
	if err := p.wrappedLoginUsers(a); err != nil {
		return nil, err
	}
	return a, nil
}

// wrappedLoginUsers refuses what needs the agent's own token when its
// login is response-wrapped: the agent never sees that token.
func (p *parser) wrappedLoginUsers(a *Agent) error {
	if a.AutoAuth == nil || a.AutoAuth.Method.WrapTTL <= 0 {
		return nil
	}
	const why = "needs the agent's token, and with wrap_ttl on the auto_auth method the agent holds only the wrapping token it writes to the sink"
	switch {
	case len(a.Templates) > 0:
		return p.errorf(token.Pos{Line: a.Templates[0].Line}, "template %s", why)
	case len(a.EnvTemplates) > 0:
		return p.errorf(token.Pos{Line: a.EnvTemplates[0].Line}, "env_template %s", why)
	case a.Exec != nil:
		return p.errorf(token.Pos{Line: a.Exec.Line}, "exec %s", why)
	case a.APIProxy != nil && a.APIProxy.UseAutoAuthToken:
		return p.errorf(token.Pos{Line: a.APIProxy.Line}, "use_auto_auth_token %s", why)
	}
	return nil
}

func (p *parser) vault(item *ast.ObjectItem) (Vault, error) {
	v := Vault{NumRetries: DefaultAgentRetries, Line: item.Pos().Line}
	body, err := p.object(item)
	if err != nil {
		return Vault{}, err
	}
	name := keyName(item.Keys[0])
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "address":
			v.Address, err = p.str(it)
		case "ca_cert":
			v.CACert, err = p.str(it)
		case "ca_path":
			v.CAPath, err = p.str(it)
		case "client_cert":
			v.ClientCert, err = p.str(it)
		case "client_key":
			v.ClientKey, err = p.str(it)
		case "tls_skip_verify":
			v.TLSSkipVerify, err = p.boolean(it)
		case "tls_server_name":
			v.TLSServerName, err = p.str(it)
		case "namespace":
			err = p.rootNamespace(it)
		case "retry":
			v.NumRetries, err = p.retry(it)
		default:
			err = p.errorf(it.Pos(), "unknown key %q in %s", key, name)
		}
		if err != nil {
			return Vault{}, err
		}
	}
	return v, nil
}

// rootNamespace accepts a namespace key naming the root namespace, the
// only one Vigil has.
func (p *parser) rootNamespace(item *ast.ObjectItem) error {
	ns, err := p.str(item)
	if err != nil {
		return err
	}
	if t := strings.Trim(ns, "/ "); t != "" && t != "root" {
		return p.errorf(item.Pos(), "namespace %q is not supported: Vigil has only the root namespace", ns)
	}
	return nil
}

func (p *parser) retry(item *ast.ObjectItem) (int, error) {
	body, err := p.object(item)
	if err != nil {
		return 0, err
	}
	n := int64(0)
	for _, it := range body.Items {
		if key := keyName(it.Keys[0]); key != "num_retries" {
			return 0, p.errorf(it.Pos(), "unknown key %q in retry: the only key is num_retries", key)
		}
		if n, err = p.integer(it); err != nil {
			return 0, err
		}
		if n < -1 || n > 1<<16 {
			return 0, p.errorf(it.Pos(), "num_retries must be -1 (no retries), 0 (the default, %d) or a positive count, got %d", DefaultAgentRetries, n)
		}
	}
	switch n {
	case 0:
		return DefaultAgentRetries, nil
	case -1:
		return 0, nil
	}
	return int(n), nil
}

func (p *parser) autoAuth(item *ast.ObjectItem) (*AutoAuth, error) {
	body, err := p.object(item)
	if err != nil {
		return nil, err
	}
	aa := &AutoAuth{Line: item.Pos().Line}
	var methods []block
	addSinks := func(it *ast.ObjectItem) error {
		bs, err := p.typedBlocks(it, "config", "wrap_ttl")
		if err != nil {
			return err
		}
		for _, b := range bs {
			s, err := p.sink(b)
			if err != nil {
				return err
			}
			aa.Sinks = append(aa.Sinks, s)
		}
		return nil
	}
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		switch key {
		case "method":
			bs, err := p.typedBlocks(it, "config", "mount_path")
			if err != nil {
				return nil, err
			}
			methods = append(methods, bs...)
		case "sink":
			if err := addSinks(it); err != nil {
				return nil, err
			}
		case "sinks":
			// The wrapper form: sinks { sink { ... } }, and JSON's
			// "sinks": [{"sink": {...}}].
			var objs []*ast.ObjectType
			switch v := it.Val.(type) {
			case *ast.ObjectType:
				objs = append(objs, v)
			case *ast.ListType:
				for _, n := range v.List {
					if o, ok := n.(*ast.ObjectType); ok {
						objs = append(objs, o)
					}
				}
			}
			if len(objs) == 0 {
				return nil, p.errorf(it.Pos(), "sinks must be a block of sink blocks")
			}
			for _, o := range objs {
				for _, s := range o.List.Items {
					if k := keyName(s.Keys[0]); k != "sink" {
						return nil, p.errorf(s.Pos(), "unknown key %q in sinks: it holds sink blocks", k)
					}
					if err := addSinks(s); err != nil {
						return nil, err
					}
				}
			}
		default:
			return nil, p.errorf(it.Pos(), "unknown key %q in auto_auth", key)
		}
	}
	switch len(methods) {
	case 0:
		return nil, p.errorf(item.Pos(), `auto_auth needs a method block, as in method "approle" { config = { ... } }`)
	case 1:
	default:
		return nil, p.errorf(methods[1].pos, "auto_auth takes one method block")
	}
	if aa.Method, err = p.method(methods[0]); err != nil {
		return nil, err
	}
	if m := aa.Method; m.WrapTTL > 0 {
		// The wrapping token can be unwrapped once: one sink holds it.
		switch {
		case m.TokenFile != nil:
			return nil, p.errorf(token.Pos{Line: m.Line}, "wrap_ttl: the token_file method does not log in, so there is no login to wrap")
		case len(aa.Sinks) != 1:
			return nil, p.errorf(token.Pos{Line: m.Line}, "wrap_ttl on the method needs exactly one sink, to hold the wrapping token (it has %d)", len(aa.Sinks))
		case aa.Sinks[0].WrapTTL > 0:
			return nil, p.errorf(token.Pos{Line: aa.Sinks[0].Line}, "wrap_ttl is set on both the method and the sink: keep one")
		}
	}
	return aa, nil
}

// authMethods are the auto_auth methods the agent has.
var authMethods = []string{"approle", "jwt", "kubernetes", "token_file"}

func (p *parser) method(b block) (AuthMethod, error) {
	if !oneOf(b.label, authMethods...) {
		return AuthMethod{}, p.errorf(b.pos, "unsupported auto_auth method %q: Vigil's agent has approle, jwt, kubernetes and token_file", b.label)
	}
	m := AuthMethod{Type: b.label, MountPath: "auth/" + b.label, MinBackoff: DefaultMinBackoff, MaxBackoff: DefaultMaxBackoff, Line: b.pos.Line}
	var conf *ast.ObjectItem
	for _, it := range b.body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "mount_path":
			var mp string
			if mp, err = p.str(it); err == nil {
				if mp = strings.Trim(mp, "/"); mp == "" {
					err = p.errorf(it.Pos(), "mount_path must not be empty")
				}
				m.MountPath = mp
			}
		case "namespace":
			err = p.rootNamespace(it)
		case "min_backoff":
			m.MinBackoff, err = p.duration(it)
		case "max_backoff":
			m.MaxBackoff, err = p.duration(it)
		case "exit_on_err":
			m.ExitOnError, err = p.boolean(it)
		case "wrap_ttl":
			if m.WrapTTL, err = p.duration(it); err == nil && m.WrapTTL <= 0 {
				err = p.errorf(it.Pos(), "wrap_ttl must be positive")
			}
		case "config":
			conf = it
		default:
			err = p.errorf(it.Pos(), "unknown key %q in method %q", key, b.label)
		}
		if err != nil {
			return AuthMethod{}, err
		}
	}
	var body *ast.ObjectList
	if conf != nil {
		var err error
		if body, err = p.object(conf); err != nil {
			return AuthMethod{}, err
		}
	} else {
		body = &ast.ObjectList{}
	}
	var err error
	switch m.Type {
	case "approle":
		m.AppRole, err = p.approle(body)
	case "jwt":
		m.JWT, err = p.jwtMethod(body)
	case "kubernetes":
		m.Kubernetes, err = p.kubernetes(body)
	case "token_file":
		m.TokenFile, err = p.tokenFile(body)
	}
	return m, err
}

func (p *parser) approle(body *ast.ObjectList) (*AppRoleMethod, error) {
	m := &AppRoleMethod{RemoveSecretIDFileAfterReading: true}
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "role_id_file_path":
			m.RoleIDFilePath, err = p.str(it)
		case "secret_id_file_path":
			m.SecretIDFilePath, err = p.str(it)
		case "remove_secret_id_file_after_reading":
			m.RemoveSecretIDFileAfterReading, err = p.boolean(it)
		case "secret_id_response_wrapping_path":
			m.SecretIDResponseWrappingPath, err = p.str(it)
		default:
			err = p.errorf(it.Pos(), "unknown key %q in method \"approle\" config", key)
		}
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (p *parser) jwtMethod(body *ast.ObjectList) (*JWTMethod, error) {
	m := &JWTMethod{RemoveJWTAfterReading: true}
	period := time.Duration(-1)
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "path":
			m.Path, err = p.str(it)
		case "role":
			m.Role, err = p.str(it)
		case "remove_jwt_after_reading":
			m.RemoveJWTAfterReading, err = p.boolean(it)
		case "remove_jwt_follows_symlinks":
			m.RemoveJWTFollowsSymlinks, err = p.boolean(it)
		case "jwt_read_period":
			period, err = p.duration(it)
		default:
			err = p.errorf(it.Pos(), "unknown key %q in method \"jwt\" config", key)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case period >= 0:
		m.JWTReadPeriod = period
	case m.RemoveJWTAfterReading:
		// A file that is removed once read costs a stat to watch.
		m.JWTReadPeriod = 500 * time.Millisecond
	default:
		m.JWTReadPeriod = time.Minute
	}
	return m, nil
}

func (p *parser) kubernetes(body *ast.ObjectList) (*KubernetesMethod, error) {
	m := &KubernetesMethod{TokenPath: DefaultKubernetesTokenPath}
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "role":
			m.Role, err = p.str(it)
		case "token_path":
			m.TokenPath, err = p.str(it)
		default:
			err = p.errorf(it.Pos(), "unknown key %q in method \"kubernetes\" config", key)
		}
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (p *parser) tokenFile(body *ast.ObjectList) (*TokenFileMethod, error) {
	m := &TokenFileMethod{}
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		if key != "token_file_path" {
			return nil, p.errorf(it.Pos(), "unknown key %q in method \"token_file\" config: the only key is token_file_path", key)
		}
		var err error
		if m.TokenFilePath, err = p.str(it); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (p *parser) sink(b block) (Sink, error) {
	if b.label != "file" {
		return Sink{}, p.errorf(b.pos, "unsupported sink type %q: the only sink is file", b.label)
	}
	s := Sink{Type: "file", Mode: DefaultSinkMode, Owner: -1, Group: -1, Line: b.pos.Line}
	for _, it := range b.body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "config":
			var body *ast.ObjectList
			if body, err = p.object(it); err == nil {
				err = p.sinkConfig(&s, body)
			}
		case "wrap_ttl":
			if s.WrapTTL, err = p.duration(it); err == nil && s.WrapTTL <= 0 {
				err = p.errorf(it.Pos(), "wrap_ttl must be positive")
			}
		case "dh_type", "dh_path", "derive_key", "aad", "aad_env_var":
			err = p.refuse(it, "sinks write the token itself; encrypted (Diffie-Hellman) sinks are not implemented, so protect the file with its mode and a private directory")
		default:
			err = p.errorf(it.Pos(), "unknown key %q in sink \"file\"", key)
		}
		if err != nil {
			return Sink{}, err
		}
	}
	return s, nil
}

func (p *parser) sinkConfig(s *Sink, body *ast.ObjectList) error {
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "path":
			s.Path, err = p.str(it)
		case "mode":
			s.Mode, err = p.fileMode(it)
		case "owner", "group":
			var n int64
			if n, err = p.integer(it); err == nil && (n < 0 || n > 1<<31-1) {
				err = p.errorf(it.Pos(), "%s must be a uid or gid (a number), got %d", key, n)
			}
			if key == "owner" {
				s.Owner = int(n)
			} else {
				s.Group = int(n)
			}
		default:
			err = p.errorf(it.Pos(), "unknown key %q in sink \"file\" config", key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// cache parses a cache or api_proxy block (they share their keys).
func (p *parser) cache(item *ast.ObjectItem) (*Cache, error) {
	name := keyName(item.Keys[0])
	body, err := p.object(item)
	if err != nil {
		return nil, err
	}
	c := &Cache{Line: item.Pos().Line}
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "use_auto_auth_token":
			c.UseAutoAuthToken, c.ForceAutoAuthToken, err = p.useAutoAuthToken(it)
		case "enforce_consistency", "when_inconsistent":
			err = p.refuse(it, "it is Vault Enterprise's read-after-write consistency for performance standbys; Vigil's standbys forward every request to the active server")
		case "persist":
			if name == "cache" {
				err = p.refuse(it, "the agent's cache is in memory only")
				break
			}
			fallthrough
		default:
			err = p.errorf(it.Pos(), "unknown key %q in %s", key, name)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// useAutoAuthToken reads true, false or "force".
func (p *parser) useAutoAuthToken(item *ast.ObjectItem) (use, force bool, err error) {
	if lit, ok := item.Val.(*ast.LiteralType); ok && lit.Token.Type == token.STRING {
		if s, _ := lit.Token.Value().(string); strings.EqualFold(s, "force") {
			return true, true, nil
		}
	}
	use, err = p.boolean(item)
	if err != nil {
		return false, false, p.errorf(item.Pos(), "use_auto_auth_token must be true, false or \"force\"")
	}
	return use, false, nil
}

func (p *parser) agentListener(b block) (AgentListener, error) {
	l := AgentListener{Type: b.label, Line: b.pos.Line}
	switch b.label {
	case "tcp":
		l.Address = DefaultAgentListenerAddress
	case "unix":
	default:
		return AgentListener{}, p.errorf(b.pos, "unsupported listener type %q: want tcp or unix", b.label)
	}
	for _, it := range b.body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "address":
			l.Address, err = p.str(it)
		case "tls_disable":
			l.TLSDisable, err = p.boolean(it)
		case "tls_cert_file":
			l.TLSCertFile, err = p.str(it)
		case "tls_key_file":
			l.TLSKeyFile, err = p.str(it)
		case "tls_min_version":
			l.TLSMinVersion, err = p.str(it)
		case "require_request_header":
			l.RequireRequestHeader, err = p.boolean(it)
		case "role":
			var role string
			if role, err = p.str(it); err == nil && role != "default" {
				if role == "metrics_only" {
					err = p.refuse(it, "role \"metrics_only\": the agent exports no metrics")
				} else {
					err = p.errorf(it.Pos(), "invalid listener role %q: want default", role)
				}
			}
		case "agent_api":
			var body *ast.ObjectList
			if body, err = p.object(it); err == nil {
				for _, a := range body.Items {
					if k := keyName(a.Keys[0]); k != "enable_quit" {
						return AgentListener{}, p.errorf(a.Pos(), "unknown key %q in agent_api: the only key is enable_quit", k)
					}
					if l.EnableQuit, err = p.boolean(a); err != nil {
						break
					}
				}
			}
		case "socket_mode":
			l.SocketMode, err = p.str(it)
		case "socket_user":
			l.SocketUser, err = p.str(it)
		case "socket_group":
			l.SocketGroup, err = p.str(it)
		default:
			err = p.errorf(it.Pos(), "unknown key %q in listener %q", key, b.label)
		}
		if err != nil {
			return AgentListener{}, err
		}
	}
	return l, nil
}
