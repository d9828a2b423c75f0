package config

import (
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
)

// The agent's template blocks (template_config, template, env_template,
// exec) and the value readers they share with the other agent blocks.

func (p *parser) templateConfig(item *ast.ObjectItem) (TemplateConfig, error) {
	tc := TemplateConfig{StaticSecretRenderInterval: DefaultStaticSecretRenderInterval, MaxConnectionsPerHost: DefaultMaxConnectionsPerHost, Line: item.Pos().Line}
	body, err := p.object(item)
	if err != nil {
		return TemplateConfig{}, err
	}
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "exit_on_retry_failure":
			tc.ExitOnRetryFailure, err = p.boolean(it)
		case "static_secret_render_interval":
			var d time.Duration
			if d, err = p.duration(it); err == nil && d > 0 {
				tc.StaticSecretRenderInterval = d
			}
		case "max_connections_per_host":
			var n int64
			if n, err = p.integer(it); err == nil && (n < 1 || n > 1<<16) {
				err = p.errorf(it.Pos(), "max_connections_per_host must be between 1 and %d, got %d", 1<<16, n)
			}
			if err == nil {
				tc.MaxConnectionsPerHost = int(n)
			}
		default:
			err = p.errorf(it.Pos(), "unknown key %q in template_config", key)
		}
		if err != nil {
			return TemplateConfig{}, err
		}
	}
	return tc, nil
}

// templateOption reads a key file and environment templates share; it
// reports false for any other key.
func (p *parser) templateOption(o *TemplateOptions, it *ast.ObjectItem) (bool, error) {
	var err error
	switch keyName(it.Keys[0]) {
	case "source":
		o.Source, err = p.str(it)
	case "contents":
		o.Contents, err = p.str(it)
	case "error_on_missing_key":
		o.ErrorOnMissingKey, err = p.boolean(it)
	case "error_fatal":
		o.ErrorFatal, err = p.boolean(it)
	case "left_delimiter":
		o.LeftDelimiter, err = p.str(it)
	case "right_delimiter":
		o.RightDelimiter, err = p.str(it)
	case "function_denylist", "function_blacklist":
		var names []string
		names, err = p.strList(it)
		o.FunctionDenylist = append(o.FunctionDenylist, names...)
	default:
		return false, nil
	}
	return true, err
}

func defaultTemplateOptions() TemplateOptions {
	return TemplateOptions{ErrorFatal: true, LeftDelimiter: "{{", RightDelimiter: "}}"}
}

func (p *parser) template(item *ast.ObjectItem) (Template, error) {
	body, err := p.object(item)
	if err != nil {
		return Template{}, err
	}
	t := Template{TemplateOptions: defaultTemplateOptions(), CreateDestDirs: true, Line: item.Pos().Line}
	var command []string
	var commandTimeout time.Duration
	var exec *ast.ObjectItem
	for _, it := range body.Items {
		if ok, err := p.templateOption(&t.TemplateOptions, it); ok {
			if err != nil {
				return Template{}, err
			}
			continue
		}
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "destination":
			t.Destination, err = p.str(it)
		case "create_dest_dirs":
			t.CreateDestDirs, err = p.boolean(it)
		case "perms":
			t.Perms, err = p.fileMode(it)
		case "backup":
			t.Backup, err = p.boolean(it)
		case "user", "uid":
			t.User, err = p.owner(it)
		case "group", "gid":
			t.Group, err = p.owner(it)
		case "sandbox_path":
			t.SandboxPath, err = p.str(it)
		case "wait":
			t.Wait, err = p.wait(it)
		case "command":
			command, err = p.command(it)
		case "command_timeout":
			commandTimeout, err = p.duration(it)
		case "exec":
			exec = it
		default:
			err = p.errorf(it.Pos(), "unknown key %q in template", key)
		}
		if err != nil {
			return Template{}, err
		}
	}
	switch {
	case exec != nil && command != nil:
		return Template{}, p.errorf(exec.Pos(), "template has both exec and the deprecated command: keep exec")
	case exec != nil:
		if t.Exec, err = p.templateExec(exec); err != nil {
			return Template{}, err
		}
	case command != nil:
		t.Exec = &TemplateExec{Command: command, Timeout: DefaultTemplateCommandTimeout}
		if commandTimeout > 0 {
			t.Exec.Timeout = commandTimeout
		}
	}
	return t, nil
}

func (p *parser) templateExec(item *ast.ObjectItem) (*TemplateExec, error) {
	body, err := p.object(item)
	if err != nil {
		return nil, err
	}
	e := &TemplateExec{Timeout: DefaultTemplateCommandTimeout}
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "command":
			e.Command, err = p.command(it)
		case "timeout":
			var d time.Duration
			if d, err = p.duration(it); err == nil && d > 0 {
				e.Timeout = d
			}
		default:
			err = p.errorf(it.Pos(), "unknown key %q in template exec: it takes command and timeout", key)
		}
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

// wait reads wait { min, max } or "min:max"; a missing max is 4 × min, as
// in consul-template.
func (p *parser) wait(item *ast.ObjectItem) (*Wait, error) {
	w := &Wait{}
	hasMax := false
	if lit, ok := item.Val.(*ast.LiteralType); ok && lit.Token.Type == token.STRING {
		s := lit.Token.Value().(string)
		lo, hi, two := strings.Cut(s, ":")
		var err error
		if w.Min, err = parseDuration(lo); err == nil && two {
			w.Max, err = parseDuration(hi)
			hasMax = true
		}
		if err != nil {
			return nil, p.errorf(item.Pos(), "wait must be \"min:max\" durations such as \"5s:30s\", not %q", s)
		}
	} else {
		body, err := p.object(item)
		if err != nil {
			return nil, err
		}
		for _, it := range body.Items {
			key := keyName(it.Keys[0])
			switch key {
			case "min":
				w.Min, err = p.duration(it)
			case "max":
				w.Max, err = p.duration(it)
				hasMax = true
			default:
				err = p.errorf(it.Pos(), "unknown key %q in wait: it takes min and max", key)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if !hasMax {
		w.Max = 4 * w.Min
	}
	return w, nil
}

// parseDuration reads a Go duration or whole seconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n <= int64(1<<63-1)/int64(time.Second) {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		err = strconv.ErrRange
	}
	return d, err
}

// envFileKeys are template keys about files, which env_template refuses.
var envFileKeys = []string{"destination", "create_dest_dirs", "perms", "backup", "command", "command_timeout", "exec", "user", "uid", "group", "gid", "wait", "sandbox_path"}

func (p *parser) envTemplates(item *ast.ObjectItem) ([]EnvTemplate, error) {
	o, ok := item.Val.(*ast.ObjectType)
	if !ok {
		return nil, p.errorf(item.Pos(), `env_template must be a block named after its variable, as in env_template "DB_PASSWORD" { ... }`)
	}
	var out []EnvTemplate
	for _, inner := range o.List.Items {
		name := keyName(inner.Keys[0])
		body, ok := inner.Val.(*ast.ObjectType)
		if !ok || oneOf(name, "contents", "source") {
			return nil, p.errorf(inner.Pos(), `env_template needs the variable's name, as in env_template "DB_PASSWORD" { ... }`)
		}
		e := EnvTemplate{TemplateOptions: defaultTemplateOptions(), Name: name, Line: inner.Pos().Line}
		for _, it := range body.List.Items {
			ok, err := p.templateOption(&e.TemplateOptions, it)
			if err != nil {
				return nil, err
			}
			if ok {
				continue
			}
			key := keyName(it.Keys[0])
			if oneOf(key, envFileKeys...) {
				return nil, p.errorf(it.Pos(), "%s is not allowed in env_template: it applies to files", key)
			}
			return nil, p.errorf(it.Pos(), "unknown key %q in env_template %q", key, name)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, p.errorf(item.Pos(), `env_template needs the variable's name, as in env_template "DB_PASSWORD" { ... }`)
	}
	return out, nil
}

func (p *parser) exec(item *ast.ObjectItem) (*Exec, error) {
	body, err := p.object(item)
	if err != nil {
		return nil, err
	}
	e := &Exec{RestartOnSecretChanges: "always", RestartStopSignal: "SIGTERM", Line: item.Pos().Line}
	for _, it := range body.Items {
		key := keyName(it.Keys[0])
		var err error
		switch key {
		case "command":
			e.Command, err = p.command(it)
		case "restart_on_secret_changes":
			e.RestartOnSecretChanges, err = p.str(it)
		case "restart_stop_signal":
			var s string
			if s, err = p.str(it); err == nil {
				s = strings.ToUpper(strings.TrimSpace(s))
				if !strings.HasPrefix(s, "SIG") {
					s = "SIG" + s
				}
				e.RestartStopSignal = s
			}
		case "child_process_stdout":
			e.ChildProcessStdout, err = p.str(it)
		case "child_process_stderr":
			e.ChildProcessStderr, err = p.str(it)
		default:
			err = p.errorf(it.Pos(), "unknown key %q in exec", key)
		}
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

// strList reads a string or a list of strings.
func (p *parser) strList(item *ast.ObjectItem) ([]string, error) {
	name := keyName(item.Keys[0])
	switch v := item.Val.(type) {
	case *ast.LiteralType:
		s, err := p.str(item)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out, nil
	case *ast.ListType:
		out := []string{}
		for _, n := range v.List {
			lit, ok := n.(*ast.LiteralType)
			if !ok || (lit.Token.Type != token.STRING && lit.Token.Type != token.HEREDOC) {
				return nil, p.errorf(n.Pos(), "%s must be a list of strings", name)
			}
			out = append(out, lit.Token.Value().(string))
		}
		return out, nil
	}
	return nil, p.errorf(item.Pos(), "%s must be a string or a list of strings", name)
}

// command reads a command as a list of strings (the argument vector) or
// one string (kept whole: a command line for the shell).
func (p *parser) command(item *ast.ObjectItem) ([]string, error) {
	name := keyName(item.Keys[0])
	if _, ok := item.Val.(*ast.LiteralType); ok {
		s, err := p.str(item)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(s) == "" {
			return nil, p.errorf(item.Pos(), "%s must not be empty", name)
		}
		return []string{s}, nil
	}
	list, ok := item.Val.(*ast.ListType)
	if !ok {
		return nil, p.errorf(item.Pos(), "%s must be a list of strings, as in [\"/usr/bin/app\", \"-flag\"]", name)
	}
	cmd, err := p.strList(item)
	if err != nil {
		return nil, err
	}
	if len(list.List) == 0 || cmd[0] == "" {
		return nil, p.errorf(item.Pos(), "%s must not be empty", name)
	}
	return cmd, nil
}

// fileMode reads a file mode: a string is octal ("0600", "600"), a number
// is read as HCL writes it (0600 is octal, 384 decimal), as in Vault.
func (p *parser) fileMode(item *ast.ObjectItem) (fs.FileMode, error) {
	name := keyName(item.Keys[0])
	tok, err := p.literal(item, "a file mode such as \"0600\"")
	if err != nil {
		return 0, err
	}
	var n uint64
	switch tok.Type {
	case token.STRING:
		n, err = strconv.ParseUint(strings.TrimSpace(tok.Value().(string)), 8, 32)
	case token.NUMBER:
		n, err = strconv.ParseUint(tok.Text, 0, 32)
	default:
		err = strconv.ErrSyntax
	}
	if err != nil || n > 0o7777 {
		return 0, p.errorf(item.Pos(), "%s must be a file mode such as \"0600\", not %s", name, tok.Text)
	}
	return fs.FileMode(n), nil
}

// owner reads a user or group: a name, or a number.
func (p *parser) owner(item *ast.ObjectItem) (string, error) {
	tok, err := p.literal(item, "a name or a number")
	if err != nil {
		return "", err
	}
	switch tok.Type {
	case token.STRING:
		return tok.Value().(string), nil
	case token.NUMBER:
		if n, err := strconv.ParseUint(tok.Text, 10, 31); err == nil {
			return strconv.FormatUint(n, 10), nil
		}
	}
	return "", p.errorf(item.Pos(), "%s must be a name or a number", keyName(item.Keys[0]))
}
