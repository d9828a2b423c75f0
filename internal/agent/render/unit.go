package render

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/template"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// unit is one template block: a file template or an environment variable.
// Its configuration is set by New; its state is the loop's alone.
type unit struct {
	name  string // the destination, or the variable's name
	line  int    // the block's line in the configuration
	tmpl  *template.Template
	fatal bool // error_fatal
	env   bool

	// File templates.
	dest       string
	write      template.WriteOptions
	wait       *config.Wait
	command    []string // the argument vector to run after a change; nil for none
	cmdTimeout time.Duration

	// What the latest successful render used, by dependency key.
	deps map[string]template.Dependency
	// done: rendered and written (or set) once.
	done bool
	// written is the hash of the rendering last written (file) or set
	// (variable).
	written [sha256.Size]byte
	// value is a variable's value.
	value secret.String

	// A file's change held by wait: the rendering, its hash, when it is
	// written unless another change comes (quietAt), and at the latest.
	pending    []byte
	pendingSum [sha256.Size]byte
	quietAt    time.Time
	latest     time.Time

	// failures counts consecutive failed renders (or writes); retryAt
	// is when the next attempt is due, zero when none is.
	failures int
	retryAt  time.Time

	// The template's command: running, and to run again once it ends.
	cmdRunning, cmdAgain bool
}

// describe names the unit in messages.
func (u *unit) describe() string {
	if u.env {
		return fmt.Sprintf("env_template %q (line %d)", u.name, u.line)
	}
	return fmt.Sprintf("template %s (line %d)", u.name, u.line)
}

// parse reads and parses a template block's text.
func parse(what string, line int, o config.TemplateOptions, name, sandbox string) (*template.Template, error) {
	text := o.Contents
	if o.Source != "" {
		b, err := os.ReadFile(o.Source)
		if err != nil {
			return nil, fmt.Errorf("render: %s at line %d of the configuration: reading its source: %w", what, line, err)
		}
		text = string(b)
	}
	t, err := template.Parse(text, template.Options{
		Name:              name,
		LeftDelim:         o.LeftDelimiter,
		RightDelim:        o.RightDelimiter,
		ErrorOnMissingKey: o.ErrorOnMissingKey,
		FunctionDenylist:  o.FunctionDenylist,
		SandboxPath:       sandbox,
	})
	if err != nil {
		return nil, fmt.Errorf("render: %s at line %d of the configuration: %w", what, line, err)
	}
	return t, nil
}

func fileUnit(t config.Template) (*unit, error) {
	if t.Destination == "" {
		return nil, fmt.Errorf("render: template at line %d of the configuration has no destination", t.Line)
	}
	u := &unit{name: t.Destination, line: t.Line, fatal: t.ErrorFatal, dest: t.Destination, wait: t.Wait}
	tmpl, err := parse("template", t.Line, t.TemplateOptions, t.Destination, t.SandboxPath)
	if err != nil {
		return nil, err
	}
	u.tmpl = tmpl
	u.write = template.WriteOptions{Perms: t.Perms, Backup: t.Backup, CreateDestDirs: t.CreateDestDirs}
	if t.User != "" {
		id, err := lookupID(t.User, func(name string) (string, error) {
			usr, err := user.Lookup(name)
			if err != nil {
				return "", err
			}
			return usr.Uid, nil
		})
		if err != nil {
			return nil, fmt.Errorf("render: template at line %d of the configuration: user %q: %w", t.Line, t.User, err)
		}
		u.write.UID = &id
	}
	if t.Group != "" {
		id, err := lookupID(t.Group, func(name string) (string, error) {
			g, err := user.LookupGroup(name)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		if err != nil {
			return nil, fmt.Errorf("render: template at line %d of the configuration: group %q: %w", t.Line, t.Group, err)
		}
		u.write.GID = &id
	}
	if w := t.Wait; w != nil && (w.Min < 0 || w.Max < w.Min) {
		return nil, fmt.Errorf("render: template at line %d of the configuration: wait max (%s) is less than min (%s)", t.Line, w.Max, w.Min)
	}
	if w := t.Wait; w != nil && w.Min == 0 && w.Max == 0 {
		u.wait = nil
	}
	if e := t.Exec; e != nil {
		if len(e.Command) == 0 || e.Command[0] == "" {
			return nil, fmt.Errorf("render: template at line %d of the configuration: exec needs a command", t.Line)
		}
		u.command = argv(e.Command)
		u.cmdTimeout = e.Timeout
		if u.cmdTimeout <= 0 {
			u.cmdTimeout = config.DefaultTemplateCommandTimeout
		}
	}
	return u, nil
}

func envUnit(e config.EnvTemplate) (*unit, error) {
	if e.Name == "" || strings.ContainsAny(e.Name, "=\x00") {
		return nil, fmt.Errorf("render: env_template at line %d of the configuration: %q is not a variable name", e.Line, e.Name)
	}
	tmpl, err := parse(fmt.Sprintf("env_template %q", e.Name), e.Line, e.TemplateOptions, e.Name, "")
	if err != nil {
		return nil, err
	}
	return &unit{name: e.Name, line: e.Line, fatal: e.ErrorFatal, env: true, tmpl: tmpl}, nil
}

// lookupID reads a user or group: a number, or a name looked up.
func lookupID(s string, lookup func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	id, err := lookup(s)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(id)
	if err != nil {
		return 0, fmt.Errorf("its id %q is not a number", id)
	}
	return n, nil
}

// argv turns a configured command into an argument vector: one string
// with a space is a command line for the shell, as in Vault Agent.
func argv(cmd []string) []string {
	if len(cmd) == 1 && strings.ContainsAny(cmd[0], " \t") {
		return []string{"sh", "-c", cmd[0]}
	}
	return cmd
}
