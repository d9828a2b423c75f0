// Package framework is the toolkit for writing mounts (secrets engines and
// auth methods): a declarative, ordered table of paths, each a regular
// expression with typed fields and one handler per operation.
//
// A [Backend] built by [NewBackend] implements [logical.Backend]. For each
// request it finds the first [Path] whose pattern matches the whole request
// path, checks and coerces the request data against the path's
// [FieldSchema]s with Vault's loose rules (spec §2), and calls the
// operation's handler with a [FieldData] whose typed getters cannot fail.
// It answers on its own:
//
//   - no path matches: [logical.ErrUnsupportedPath] (404);
//   - the path does not serve the operation: [logical.ErrUnsupportedOperation] (405);
//   - a field of the wrong shape: a 400 [logical.CodedError] naming the field;
//   - a required field missing on create or update: 400;
//   - unknown parameters: ignored, with the warning
//     "Endpoint ignored these unrecognized parameters: [a b]", unless the
//     path sets [Path.TakesArbitraryInput];
//   - [logical.HelpOperation]: the path's help text as data.
//
// Handlers decode the FieldData into typed values at their top and never
// pass map[string]any further.
//
// For auth methods it also provides the token fields every role-based
// method shares (token_ttl, token_policies...: see [TokenFields] and
// [TokenParams]) and the options for logins ([WithSpecialPaths],
// [WithAuthRenew]).
//
// Engines that create things outside Vigil (database users) record their
// intent first with [PutIntent] and undo what stale records describe
// ([ListIntents], [DeleteIntent]; see wal.go), the write-ahead log of
// DESIGN.md §5.
//
// Beyond these, the package owns only request dispatch, field decoding
// and the format of intent records. It must not import anything internal
// but package logical, and it keeps no state between requests: storage
// (intent records included), locks and caches belong to the mount.
package framework

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// OperationFunc serves one operation on a path. It returns a response or an
// error; a nil response with a nil error is answered as an empty response
// (204).
type OperationFunc func(ctx context.Context, req *logical.Request, d *FieldData) (*logical.Response, error)

// ExistenceFunc reports whether the target of a create/update request
// already exists.
type ExistenceFunc func(ctx context.Context, req *logical.Request, d *FieldData) (bool, error)

// OperationHandler is the handler of one operation on a path.
type OperationHandler struct {
	// Handler serves the operation; it must be set.
	Handler OperationFunc
	// Summary is a one-line description shown in help.
	Summary string
}

// Path is one entry of a backend's path table.
type Path struct {
	// Pattern is a regular expression matched against the whole request
	// path (the framework anchors it). Named groups become fields: a group
	// not declared in Fields is a TypeString field.
	Pattern string
	// Fields are the parameters the path accepts, from the path pattern and
	// from the request data.
	Fields map[string]*FieldSchema
	// Operations maps each served operation to its handler. A create
	// request on a path without a create handler goes to the update
	// handler.
	Operations map[logical.Operation]OperationHandler
	// ExistenceCheck, when set, decides between create and update for
	// POST/PUT requests (see [logical.Backend]).
	ExistenceCheck ExistenceFunc
	// TakesArbitraryInput turns off the unknown-parameter warning, for
	// paths whose data is the user's own object (a KV v1 secret).
	TakesArbitraryInput bool
	// HelpSynopsis is a one-line description of the path.
	HelpSynopsis string
	// HelpDescription is the long help text.
	HelpDescription string
}

// Backend is a [logical.Backend] built from a path table. It is safe for
// concurrent use and immutable once built.
type Backend struct {
	help      string
	paths     []*compiledPath
	special   logical.PathsSpecial
	authRenew AuthRenewFunc
	secrets   map[string]*SecretType
}

// AuthRenewFunc serves [logical.RenewOperation] for a token one of the
// mount's logins created: req.Auth is the Auth the login returned. It
// returns the Auth to renew with (TTL and MaxTTL recomputed, say, from the
// role's current settings), or an error to refuse the renewal (the role
// was deleted).
type AuthRenewFunc func(ctx context.Context, req *logical.Request) (*logical.Auth, error)

// Option sets an optional part of a backend.
type Option func(*Backend)

// WithSpecialPaths declares the backend's unauthenticated and root paths
// (see [logical.PathsSpecial]).
func WithSpecialPaths(ps logical.PathsSpecial) Option {
	return func(b *Backend) { b.special = ps }
}

// WithAuthRenew sets the handler of token renewals. Without one, the
// backend refuses them.
func WithAuthRenew(f AuthRenewFunc) Option {
	return func(b *Backend) { b.authRenew = f }
}

// SpecialPaths implements [logical.SpecialPather].
func (b *Backend) SpecialPaths() logical.PathsSpecial { return b.special }

var (
	_ logical.Backend        = (*Backend)(nil)
	_ logical.LeaseConfirmer = (*Backend)(nil)
)

// compiledPath is a Path with its regular expression and defaults prepared.
type compiledPath struct {
	*Path
	re *regexp.Regexp
	// prefix is a literal every match begins with: a cheap pre-filter.
	prefix string
	// tail, when set, matches the pattern without re.
	tail *tailMatch
	// groups maps submatch index to field name ("" for unnamed groups).
	groups []string
	// fields is Fields plus the undeclared named groups.
	fields map[string]*FieldSchema
	// defaults holds each field's default, coerced (or its zero value).
	defaults map[string]any
	// required lists the required fields, sorted.
	required []string
}

// NewBackend builds a backend from help (the mount's help text), an
// ordered path table (a request goes to the first path whose pattern
// matches) and options. It checks every pattern, field type and default,
// and returns an error for the first that is invalid.
func NewBackend(help string, paths []*Path, opts ...Option) (*Backend, error) {
	b := &Backend{help: help}
	for _, o := range opts {
		o(b)
	}
	for i, p := range paths {
		cp, err := compilePath(p)
		if err != nil {
			return nil, fmt.Errorf("framework: path %d (%q): %w", i, p.Pattern, err)
		}
		b.paths = append(b.paths, cp)
	}
	return b, nil
}

func compilePath(p *Path) (*compiledPath, error) {
	re, err := regexp.Compile(`^(?:` + p.Pattern + `)$`)
	if err != nil {
		return nil, fmt.Errorf("compile pattern: %w", err)
	}
	cp := &compiledPath{
		Path:     p,
		re:       re,
		groups:   re.SubexpNames(),
		fields:   make(map[string]*FieldSchema, len(p.Fields)+1),
		defaults: make(map[string]any, len(p.Fields)+1),
	}
	// The literal prefix of the unanchored pattern begins every match.
	if un, err := regexp.Compile(strings.TrimPrefix(p.Pattern, "^")); err == nil {
		cp.prefix, _ = un.LiteralPrefix()
	}
	if t, ok := compileTail(p.Pattern); ok && re.NumSubexp() == 1 {
		cp.tail = &t
	}
	for name, schema := range p.Fields {
		if schema == nil || !schema.Type.valid() {
			return nil, fmt.Errorf("field %q: invalid type", name)
		}
		if schema.Required && schema.Default != nil {
			return nil, fmt.Errorf("field %q: a required field has no default", name)
		}
		cp.fields[name] = schema
	}
	for _, name := range cp.groups {
		if name == "" {
			continue
		}
		if _, ok := cp.fields[name]; !ok {
			cp.fields[name] = &FieldSchema{Type: TypeString}
		}
	}
	for name, schema := range cp.fields {
		def := zeroValue(schema.Type)
		if schema.Default != nil {
			def, err = schema.Type.coerce(schema.Default)
			if err != nil {
				return nil, fmt.Errorf("field %q: default: %w", name, err)
			}
		}
		cp.defaults[name] = def
		if schema.Required {
			cp.required = append(cp.required, name)
		}
	}
	sort.Strings(cp.required)
	if len(p.Operations) == 0 {
		return nil, fmt.Errorf("no operations")
	}
	for op, h := range p.Operations {
		if h.Handler == nil {
			return nil, fmt.Errorf("operation %q: nil handler", op)
		}
	}
	return cp, nil
}

// zeroValue is what a getter returns for an unsupplied field without a
// default.
func zeroValue(t FieldType) any {
	switch t {
	case TypeString, TypeNameString:
		return ""
	case TypeInt:
		return 0
	case TypeInt64:
		return int64(0)
	case TypeBool:
		return false
	case TypeDurationSecond, TypeSignedDurationSecond:
		return time.Duration(0)
	case TypeCommaStringSlice, TypeStringSlice:
		return []string(nil)
	case TypeCommaIntSlice:
		return []int(nil)
	case TypeMap:
		return map[string]any(nil)
	case TypeKVPairs:
		return map[string]string(nil)
	}
	return nil
}

// match returns the first path matching reqPath and its submatch indices.
func (b *Backend) match(reqPath string, dst []int) (*compiledPath, []int) {
	for _, p := range b.paths {
		if !strings.HasPrefix(reqPath, p.prefix) {
			continue
		}
		var loc []int
		if p.tail != nil {
			loc = p.tail.match(reqPath, dst)
		} else {
			loc = p.re.FindStringSubmatchIndex(reqPath)
		}
		if loc != nil {
			return p, loc
		}
	}
	return nil, nil
}

// fieldData checks req.Data and the path captures against p's schema. It
// returns the sorted names of the unknown parameters (nil when the path
// takes arbitrary input).
func (p *compiledPath) fieldData(req *logical.Request, loc []int) (*FieldData, []string, error) {
	d := &FieldData{path: p}
	d.values = d.buf[:0]
	for i, name := range p.groups {
		if name == "" || loc[2*i] < 0 {
			continue
		}
		// Boxed once: coerce gives a string field's value back as is.
		var raw any = req.Path[loc[2*i]:loc[2*i+1]]
		schema := p.fields[name]
		v, err := schema.Type.coerce(raw)
		if err != nil {
			return nil, nil, fieldError(name, schema, raw, err)
		}
		d.values = append(d.values, fieldValue{name: name, raw: raw, value: v})
	}
	var unknown []string
	for name, raw := range req.Data {
		schema, ok := p.fields[name]
		if !ok {
			if !p.TakesArbitraryInput {
				unknown = append(unknown, name)
			}
			continue
		}
		if d.Has(name) {
			// The path's own segments win over the data.
			continue
		}
		v, err := schema.Type.coerce(raw)
		if err != nil {
			return nil, nil, fieldError(name, schema, raw, err)
		}
		d.values = append(d.values, fieldValue{name: name, raw: raw, value: v})
	}
	sort.Strings(unknown)
	return d, unknown, nil
}

// HandleRequest implements [logical.Backend].
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	switch {
	case req.Secret != nil && (req.Operation == logical.RenewOperation || req.Operation == logical.RevokeOperation):
		return b.handleSecret(ctx, req)
	case req.Operation == logical.RenewOperation:
		return b.renewAuth(ctx, req)
	case req.Operation == logical.RevokeOperation:
		return nil, logical.ErrUnsupportedOperation
	}
	var locs [4]int
	p, loc := b.match(req.Path, locs[:0])
	if req.Operation == logical.HelpOperation {
		return b.helpResponse(p), nil
	}
	if p == nil {
		return nil, logical.ErrUnsupportedPath
	}
	h, ok := p.Operations[req.Operation]
	if !ok && req.Operation == logical.CreateOperation {
		h, ok = p.Operations[logical.UpdateOperation]
	}
	if !ok {
		return nil, logical.ErrUnsupportedOperation
	}
	d, unknown, err := p.fieldData(req, loc)
	if err != nil {
		return nil, err
	}
	if req.Operation == logical.CreateOperation || req.Operation == logical.UpdateOperation {
		for _, name := range p.required {
			if v, ok := d.lookup(name); !ok || v.raw == nil {
				return nil, badRequest("missing required field %q", name)
			}
		}
	}
	resp, err := h.Handler(ctx, req, d)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		resp = &logical.Response{}
	}
	if len(unknown) > 0 {
		resp.AddWarning(fmt.Sprintf("Endpoint ignored these unrecognized parameters: %v", unknown))
	}
	return resp, nil
}

// renewAuth serves a token renewal with the backend's AuthRenewFunc.
func (b *Backend) renewAuth(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if b.authRenew == nil || req.Auth == nil {
		return nil, logical.ErrUnsupportedOperation
	}
	a, err := b.authRenew(ctx, req)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("framework: renewal handler returned no auth")
	}
	return &logical.Response{Auth: a}, nil
}

// ExistenceCheck implements [logical.Backend]: it runs the matching path's
// existence check, if it has one. A field of the wrong shape fails here
// already, with the same 400 the request would get.
func (b *Backend) ExistenceCheck(ctx context.Context, req *logical.Request) (checked, exists bool, err error) {
	var locs [4]int
	p, loc := b.match(req.Path, locs[:0])
	if p == nil || p.ExistenceCheck == nil {
		return false, false, nil
	}
	d, _, err := p.fieldData(req, loc)
	if err != nil {
		return false, false, err
	}
	exists, err = p.ExistenceCheck(ctx, req, d)
	if err != nil {
		return false, false, err
	}
	return true, exists, nil
}

// helpResponse renders the help of p, or of the backend when p is nil, as
// data{"help": text}.
func (b *Backend) helpResponse(p *compiledPath) *logical.Response {
	var sb strings.Builder
	if p == nil {
		sb.WriteString(strings.TrimSpace(b.help))
		sb.WriteString("\n")
		return &logical.Response{Data: map[string]any{"help": sb.String()}}
	}
	fmt.Fprintf(&sb, "Path pattern: %s\n\n", p.re.String())
	if s := strings.TrimSpace(p.HelpSynopsis); s != "" {
		sb.WriteString(s + "\n\n")
	}
	if names := slices.Sorted(maps.Keys(p.fields)); len(names) > 0 {
		sb.WriteString("## PARAMETERS\n\n")
		for _, name := range names {
			f := p.fields[name]
			fmt.Fprintf(&sb, "    %s (%s)\n", name, f.Type)
			if desc := strings.TrimSpace(f.Description); desc != "" {
				for _, line := range strings.Split(desc, "\n") {
					sb.WriteString("        " + line + "\n")
				}
			}
			sb.WriteString("\n")
		}
	}
	if ops := slices.Sorted(maps.Keys(p.Operations)); len(ops) > 0 {
		sb.WriteString("## OPERATIONS\n\n")
		for _, op := range ops {
			fmt.Fprintf(&sb, "    %s", op)
			if s := p.Operations[op].Summary; s != "" {
				fmt.Fprintf(&sb, ": %s", s)
			}
			sb.WriteString("\n")
		}
		sb.WriteString("\n")
	}
	if desc := strings.TrimSpace(p.HelpDescription); desc != "" {
		sb.WriteString("## DESCRIPTION\n\n" + desc + "\n")
	}
	return &logical.Response{Data: map[string]any{"help": sb.String()}}
}

// badRequest is the 400 for a caller's mistake.
func badRequest(format string, args ...any) error {
	return logical.BadRequest(format, args...)
}
