// Package template renders Vault Agent templates: consul-template's
// language (Go's text/template with consul-template's functions) over
// secrets read from Vigil, so that a template written for Vault Agent
// renders unchanged:
//
//	{{ with secret "secret/data/db" }}password={{ .Data.data.password }}{{ end }}
//	{{ with secret "database/creds/app" }}{{ .Data.username }}:{{ .Data.password }}{{ end }}
//	{{ with secret "pki/issue/web" "common_name=web.internal" }}{{ .Data.certificate }}{{ end }}
//
// A template is parsed once ([Parse]) and rendered as often as its secrets
// change ([Template.Render]). Rendering reads through a [Source], which the
// agent implements over the HTTP API; wrapping it in a [Cache] makes every
// template rendered against the cache see one answer per secret (so a
// username and a password rendered by two templates come from one lease).
// A render reports the secrets and files it used ([Dependency]), with
// their leases, so the agent knows what to renew, when to read again and
// which templates to render again ([Dependency.Plan]). [WriteFile] writes a
// rendering to its destination atomically.
//
// # Functions
//
// Besides text/template's built-ins, a template may call secret, secrets,
// file, env, mustEnv, envOrDefault, executeTemplate, scratch,
// base64Decode, base64Encode, base64URLDecode, base64URLEncode, contains,
// containsAll, containsAny, containsNone, containsNotAll, in, explodeMap,
// indent, loop, join, mergeMap, mergeMapWithOverride, trimSpace, trim,
// trimPrefix, trimSuffix, parseBool, parseFloat, parseInt, parseUint,
// parseJSON, regexMatch, regexReplaceAll, replaceAll, sha256Hex, md5sum,
// hmacSHA256Hex, split, splitToMap, timestamp, toJSON, toJSONPretty,
// toUnescapedJSON, toUnescapedJSONPretty, toLower, toUpper, toTitle,
// toYAML, add, subtract, multiply, divide, modulo, minimum and maximum,
// with consul-template's arguments and results. Consul's and Nomad's
// functions, pkiCert, writeToFile, plugin, sockaddr, parseYAML, toTOML,
// the spew_ debugging functions and the sprig_ library are refused when
// the template is parsed, with the reason; any other unknown function is
// a parse error naming it.
//
// # Missing keys
//
// As in consul-template, a missing map key renders "<no value>" unless
// the template sets error_on_missing_key ([Options.ErrorOnMissingKey]),
// which makes it an error naming the key. A missing secret is always an
// error ([ErrNotFound]).
//
// # Secrets in errors
//
// Render errors name the template, the line, the expression and the
// secret's path, never a value: messages are built here, and those that
// text/template builds are scrubbed of every value the render read.
//
// The package imports only the standard library.
package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	gotemplate "text/template"
	"text/template/parse"
	"time"
)

// ErrNotFound is what a [Source] returns (wrapped) when no secret exists at
// a path; a render fails with an error that wraps it.
var ErrNotFound = errors.New("no secret at this path")

// Source is where templates read secrets: the agent's client of the
// server. Implementations return errors that carry no secret values.
type Source interface {
	// Read reads the secret at path (a Vault read, HTTP GET). The path
	// may carry a query, as in "secret/data/x?version=2". A missing
	// secret is an error wrapping ErrNotFound.
	Read(ctx context.Context, path string) (*Secret, error)
	// Write writes data at path and returns the response (a Vault write:
	// secret "path" "k=v" ..., used to issue certificates or credentials
	// with parameters).
	Write(ctx context.Context, path string, data map[string]string) (*Secret, error)
	// List lists the keys under path.
	List(ctx context.Context, path string) ([]string, error)
}

// Secret is what the secret function returns, shaped as Vault's response
// (and consul-template's value) so that .Data.data.key (KV v2),
// .Data.metadata.version, .Data.key (KV v1, dynamic credentials),
// .LeaseID, .LeaseDuration, .Renewable and .Auth.ClientToken work.
// Numbers in Data are json.Number values, as the API decodes them.
//
// Printing a Secret with fmt or slog shows its path-free summary, never
// its data: templates reach the data through its fields.
type Secret struct {
	RequestID     string
	LeaseID       string
	LeaseDuration int
	Renewable     bool
	Data          map[string]any
	Warnings      []string
	Auth          *SecretAuth
	WrapInfo      *SecretWrapInfo
}

// SecretAuth is a Secret's auth object (a login's or a token creation's).
type SecretAuth struct {
	ClientToken   string
	Accessor      string
	Policies      []string
	TokenPolicies []string
	Metadata      map[string]string
	LeaseDuration int
	Renewable     bool
	EntityID      string
	Orphan        bool
}

// SecretWrapInfo is a Secret's wrap_info object.
type SecretWrapInfo struct {
	Token           string
	Accessor        string
	TTL             int
	CreationTime    time.Time
	CreationPath    string
	WrappedAccessor string
}

// String shows the secret without its data.
func (s *Secret) String() string {
	if s == nil {
		return "<nil secret>"
	}
	return fmt.Sprintf("secret{lease_id=%q lease_duration=%d renewable=%v data=[redacted]}", s.LeaseID, s.LeaseDuration, s.Renewable)
}

// GoString is String, for %#v.
func (s *Secret) GoString() string { return s.String() }

// LogValue is String, for slog.
func (s *Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Options configure a template. The zero value is consul-template's
// defaults.
type Options struct {
	// Name identifies the template in errors: its destination or its
	// environment variable.
	Name string
	// LeftDelim and RightDelim default to "{{" and "}}".
	LeftDelim, RightDelim string
	// ErrorOnMissingKey makes a missing map key an error instead of
	// "<no value>".
	ErrorOnMissingKey bool
	// FunctionDenylist names functions the template may not call; using
	// one is a parse error.
	FunctionDenylist []string
	// SandboxPath, when set, confines the file function to files under it.
	SandboxPath string
	// LookupEnv reads the environment for env, mustEnv and envOrDefault;
	// os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
	// Now is the clock of timestamp; time.Now when nil.
	Now func() time.Time
	// MaxOutput bounds a rendering's size; DefaultMaxOutput when 0.
	MaxOutput int
}

// DefaultMaxOutput bounds a rendering when Options.MaxOutput is 0.
const DefaultMaxOutput = 32 << 20

// Template is a parsed template, safe for concurrent renders.
type Template struct {
	opts Options
	tmpl *gotemplate.Template
}

// ParseError is a template that does not parse, or uses a function that
// does not exist, is refused or is denied.
type ParseError struct {
	// Name is the template's Options.Name.
	Name string
	// Line is the line of the problem, 0 when unknown.
	Line int
	// Func is the function at fault, "" for other errors.
	Func string
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("template %s: line %d: %s", e.Name, e.Line, e.Msg)
	}
	return fmt.Sprintf("template %s: %s", e.Name, e.Msg)
}

// Parse parses a template. Every function it names must be one this
// package provides and not in the denylist.
func Parse(text string, opts Options) (*Template, error) {
	if opts.LeftDelim == "" {
		opts.LeftDelim = "{{"
	}
	if opts.RightDelim == "" {
		opts.RightDelim = "}}"
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	if err := checkFuncs(text, opts); err != nil {
		return nil, err
	}
	missing := "missingkey=zero"
	if opts.ErrorOnMissingKey {
		missing = "missingkey=error"
	}
	// The functions are bound to a render's state when it starts
	// (Render clones the template and installs them); parsing needs only
	// their names.
	t, err := gotemplate.New(opts.Name).Delims(opts.LeftDelim, opts.RightDelim).
		Option(missing).Funcs(placeholderFuncs()).Parse(text)
	if err != nil {
		return nil, &ParseError{Name: opts.Name, Msg: strings.TrimPrefix(err.Error(), "template: ")}
	}
	return &Template{opts: opts, tmpl: t}, nil
}

// checkFuncs walks the parse trees, with the function check of
// text/template off, for functions that are unknown, refused or denied,
// so that each gets an error of its own.
func checkFuncs(text string, opts Options) error {
	trees := map[string]*parse.Tree{}
	t := parse.New(opts.Name)
	t.Mode = parse.SkipFuncCheck
	if _, err := t.Parse(text, opts.LeftDelim, opts.RightDelim, trees); err != nil {
		return &ParseError{Name: opts.Name, Msg: strings.TrimPrefix(err.Error(), "template: ")}
	}
	names := make([]string, 0, len(trees))
	for name := range trees {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		tree := trees[name]
		var bad error
		walk(tree.Root, func(id *parse.IdentifierNode) {
			if bad != nil {
				return
			}
			line := lineOf(tree, id)
			fn := id.Ident
			switch {
			case slices.Contains(opts.FunctionDenylist, fn):
				bad = &ParseError{Name: opts.Name, Line: line, Func: fn, Msg: fmt.Sprintf("function %q is denied by this template's function_denylist", fn)}
			case builtin[fn] || supported[fn]:
			case refused[fn] != "":
				bad = &ParseError{Name: opts.Name, Line: line, Func: fn, Msg: fmt.Sprintf("function %q is not supported: %s", fn, refused[fn])}
			case strings.HasPrefix(fn, "sprig_"):
				bad = &ParseError{Name: opts.Name, Line: line, Func: fn, Msg: fmt.Sprintf("function %q is not supported: the Sprig library is not included", fn)}
			default:
				bad = &ParseError{Name: opts.Name, Line: line, Func: fn, Msg: fmt.Sprintf("unknown function %q", fn)}
			}
		})
		if bad != nil {
			return bad
		}
	}
	return nil
}

func lineOf(tree *parse.Tree, n parse.Node) int {
	loc, _ := tree.ErrorContext(n)
	// loc is "name:line:col".
	parts := strings.Split(loc, ":")
	if len(parts) < 3 {
		return 0
	}
	var line int
	fmt.Sscanf(parts[len(parts)-2], "%d", &line)
	return line
}

// walk calls fn for every function name in the tree under n.
func walk(n parse.Node, fn func(*parse.IdentifierNode)) {
	switch n := n.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, fn)
		}
	case *parse.ActionNode:
		walk(n.Pipe, fn)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walk(c, fn)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walk(a, fn)
		}
	case *parse.IdentifierNode:
		fn(n)
	case *parse.ChainNode:
		walk(n.Node, fn)
	case *parse.IfNode:
		walk(n.Pipe, fn)
		walk(n.List, fn)
		walk(n.ElseList, fn)
	case *parse.RangeNode:
		walk(n.Pipe, fn)
		walk(n.List, fn)
		walk(n.ElseList, fn)
	case *parse.WithNode:
		walk(n.Pipe, fn)
		walk(n.List, fn)
		walk(n.ElseList, fn)
	case *parse.TemplateNode:
		walk(n.Pipe, fn)
	}
}

// Render runs the template against src and returns the rendering with
// the secrets and files it used. The error, if any, is a *RenderError.
func (t *Template) Render(ctx context.Context, src Source) (*Result, error) {
	r := &render{ctx: ctx, src: src, opts: &t.opts, memo: map[string]any{}}
	tmpl, err := t.tmpl.Clone()
	if err != nil {
		return nil, &RenderError{Name: t.opts.Name, Msg: err.Error()}
	}
	tmpl.Funcs(r.funcs(tmpl))
	out := &limitedBuffer{ctx: ctx, max: t.opts.MaxOutput}
	if err := tmpl.Execute(out, nil); err != nil {
		return nil, r.renderError(err)
	}
	return &Result{Output: out.buf, Dependencies: r.deps}, nil
}

// Result is a rendering.
type Result struct {
	// Output is the rendered text. It holds secrets: write it to its
	// destination and nowhere else.
	Output []byte
	// Dependencies are the secrets and files the render used, each once,
	// in the order of first use.
	Dependencies []Dependency
}

// RenderError is a render that failed. Its message names the template,
// the place and the secret's path, never a secret's value.
type RenderError struct {
	Name string
	Msg  string
	// cause is the Source's error (ErrNotFound, a context error, an API
	// error), for errors.Is and errors.As.
	cause error
}

func (e *RenderError) Error() string { return "render " + e.Name + ": " + e.Msg }

// Unwrap returns the Source's error that made the render fail, if one did.
func (e *RenderError) Unwrap() error { return e.cause }

// limitedBuffer collects the rendering, up to max bytes, and stops the
// render when its context ends (text/template stops at a write error).
type limitedBuffer struct {
	ctx context.Context
	buf []byte
	max int
}

var errTooLarge = errors.New("the rendering exceeds the size limit")

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if len(b.buf)+len(p) > b.max {
		return 0, errTooLarge
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// render is the state of one Render call.
type render struct {
	ctx  context.Context
	src  Source
	opts *Options
	// memo holds each Source answer of this render by dependency key, so
	// that a secret named twice is read (or issued) once.
	memo map[string]any
	deps []Dependency
	// values are the strings this render read (secret data, files,
	// environment), scrubbed from error messages.
	values []string
	// cause is the first Source error.
	cause error
	// depth is the nesting of executeTemplate calls.
	depth int
}

func (r *render) addDep(d Dependency) {
	for _, o := range r.deps {
		if o.key == d.key {
			return
		}
	}
	r.deps = append(r.deps, d)
}

// remember records strings to scrub from errors.
func (r *render) remember(v any) {
	switch v := v.(type) {
	case string:
		if len(v) >= minScrub {
			r.values = append(r.values, v)
			for _, line := range strings.Split(v, "\n") {
				if len(line) >= minScrub && line != v {
					r.values = append(r.values, line)
				}
			}
		}
	case json.Number:
		r.remember(string(v))
	case map[string]any:
		for _, e := range v {
			r.remember(e)
		}
	case []any:
		for _, e := range v {
			r.remember(e)
		}
	case map[string]string:
		for _, e := range v {
			r.remember(e)
		}
	case []string:
		for _, e := range v {
			r.remember(e)
		}
	case *Secret:
		if v == nil {
			return
		}
		r.remember(v.Data)
		if v.Auth != nil {
			r.remember(v.Auth.ClientToken)
			r.remember(v.Auth.Accessor)
			r.remember(v.Auth.Metadata)
		}
		if v.WrapInfo != nil {
			r.remember(v.WrapInfo.Token)
			r.remember(v.WrapInfo.Accessor)
		}
	}
}

// minScrub is the shortest value scrubbed from errors: shorter ones would
// mangle the message and reveal next to nothing.
const minScrub = 4

// valuePhrases introduce a value in text/template's own messages; what
// follows them is dropped.
var valuePhrases = []string{"range can't iterate over ", "if/with can't use ", "can't use ", "range over send-only channel "}

func (r *render) renderError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "template: ")
	for _, p := range valuePhrases {
		if i := strings.Index(msg, p); i >= 0 {
			msg = msg[:i+len(p)] + "a value of the wrong kind"
			break
		}
	}
	// Longest first, so that a value containing another is replaced whole.
	vals := slices.Clone(r.values)
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	for _, v := range vals {
		msg = strings.ReplaceAll(msg, v, "[redacted]")
	}
	cause := r.cause
	if cause == nil && errors.Is(err, errTooLarge) {
		cause = errTooLarge
	}
	if cause == nil {
		if ctxErr := r.ctx.Err(); ctxErr != nil {
			cause = ctxErr
		}
	}
	return &RenderError{Name: r.opts.Name, Msg: msg, cause: cause}
}
