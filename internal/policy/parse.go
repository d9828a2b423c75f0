package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
)

// Sentinel errors. The API layer maps each to a status code; all of them are
// the caller's mistake (400).
var (
	// ErrParse: the policy text is not a valid policy. Errors wrapping it
	// are [*ParseError]s whose text already begins "failed to parse
	// policy: ", the message Vault answers with.
	ErrParse = errors.New("failed to parse policy")
	// ErrInvalidName: the policy name is empty or malformed.
	ErrInvalidName = errors.New("invalid policy name")
	// ErrImmutable: the named built-in policy cannot be written, or
	// deleted (see [CheckWrite] and [CheckDelete]).
	ErrImmutable = errors.New("policy is immutable")
	// ErrRootCombined: [Compile] was given the root policy with others.
	ErrRootCombined = errors.New("root policy cannot be combined with other policies")
)

// ParseError reports policy text that does not parse, with the position of
// the fault when the HCL library reports one (JSON policies usually have
// none).
type ParseError struct {
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
	// Msg says what is wrong. It quotes keys, paths and capability names
	// from the policy, which is not secret.
	Msg string
}

func (e *ParseError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%v: line %d, column %d: %s", ErrParse, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%v: line %d: %s", ErrParse, e.Line, e.Msg)
	}
	return fmt.Sprintf("%v: %s", ErrParse, e.Msg)
}

// Unwrap makes errors.Is(err, [ErrParse]) true.
func (e *ParseError) Unwrap() error { return ErrParse }

// Policy is one parsed ACL policy.
type Policy struct {
	// Name is the normalized name (trimmed, lowercase).
	Name string
	// Raw is the text exactly as submitted; the API returns it unchanged.
	Raw string
	// Rules are the path blocks, one per distinct path in order of first
	// appearance. Blocks repeating a path are merged as [Compile] merges
	// them across policies, so the result is the same either way.
	Rules []PathRule
	// Templated reports whether any rule's path holds an identity
	// template, so that an ACL built from the policy depends on who asks.
	Templated bool
}

// PathRule is one `path "<pattern>" { ... }` block.
type PathRule struct {
	// Path is the pattern as written without its leading '/'. It may end
	// in '*' (a prefix rule), hold "+" segments (segment wildcards) and
	// hold identity templates ("{{identity.entity.id}}").
	Path string
	// Line is the block's line in the source, 0 when unknown (JSON).
	Line int
	// Capabilities is the granted set, legacy "policy" expansion
	// included, normalized so that Deny stands alone.
	Capabilities Capability
	// AllowedParameters maps lowercase parameter names ("*" for any
	// other name) to the values allowed; an empty list allows any value.
	// Nil when the block sets none.
	AllowedParameters map[string][]string
	// DeniedParameters maps lowercase parameter names ("*" for all) to
	// the values denied; an empty list denies any value.
	DeniedParameters map[string][]string
	// RequiredParameters are lowercase names a request must supply.
	RequiredParameters []string
	// MinWrappingTTL and MaxWrappingTTL bound the response-wrapping TTL a
	// request must ask for; 0 means no bound.
	MinWrappingTTL, MaxWrappingTTL time.Duration
	// SubscribeEventTypes are the event type patterns ('*' globs) whose
	// events a token with the subscribe capability on the path may
	// receive (Vault 1.16's subscribe_event_types); see [ACL.EventAccess].
	SubscribeEventTypes []string
	// MFAMethods is kept as written; Vigil does not enforce MFA yet.
	MFAMethods []string
	// Comment is the block's comment key.
	Comment string
	// Templated reports whether Path holds an identity template.
	Templated bool
}

// NormalizeName returns name trimmed of spaces and lowercased, as Vault
// stores policy names, or an error wrapping [ErrInvalidName] when it is
// empty, holds a '/' (names are single storage keys) or a control
// character.
func NormalizeName(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		return "", fmt.Errorf("%w: the name is empty", ErrInvalidName)
	}
	for _, r := range n {
		if r == '/' {
			return "", fmt.Errorf("%w: %q contains '/'", ErrInvalidName, n)
		}
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: %q contains a control character", ErrInvalidName, n)
		}
	}
	return n, nil
}

// Parse parses policy text, HCL or its JSON form, under name. The name is
// normalized with [NormalizeName]; "root" has no text and is refused with
// [ErrImmutable]. Every other failure is a [*ParseError] wrapping
// [ErrParse]: unknown keys, invalid capabilities, "+*" in a path, malformed
// templates, bad durations and parameter values.
//
// Keys accepted in a path block: capabilities, policy (legacy: deny, read,
// write, sudo), allowed_parameters, denied_parameters, required_parameters,
// min_wrapping_ttl, max_wrapping_ttl, subscribe_event_types, mfa_methods
// (kept, not enforced),
// control_group (Vault Enterprise: checked to be a block, then ignored) and
// comment. At the top level, "name" is accepted and ignored, as Vault does.
func Parse(name, text string) (*Policy, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return nil, err
	}
	if n == RootName {
		return nil, fmt.Errorf("%w: %q is built in and has no rules", ErrImmutable, n)
	}
	if isJSON(text) {
		if err := checkJSON(text); err != nil {
			return nil, err
		}
	}
	f, err := parseHCL(text)
	if err != nil {
		return nil, err
	}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok {
		return nil, &ParseError{Msg: "the policy must be an object"}
	}
	pol := &Policy{Name: n, Raw: text}
	index := map[string]int{} // path → position in pol.Rules
	for _, e := range entries(list) {
		switch e.key {
		case "name":
			// Accepted for compatibility; the name comes from the API.
		case "path":
			blocks, err := pathBlocks(e)
			if err != nil {
				return nil, err
			}
			for _, b := range blocks {
				r, err := parseRule(b)
				if err != nil {
					return nil, err
				}
				if i, ok := index[r.Path]; ok {
					mergeRule(&pol.Rules[i], r)
					continue
				}
				index[r.Path] = len(pol.Rules)
				pol.Rules = append(pol.Rules, *r)
				pol.Templated = pol.Templated || r.Templated
			}
		default:
			return nil, errorAt(e.pos, "unknown key %q", e.key)
		}
	}
	return pol, nil
}

// parseHCL parses text with the HCL library, which panics on a few
// malformed literals: those are reported as parse errors rather than crash
// the server. Only the library call is guarded, so that a bug of ours
// still panics (and fuzzing finds it).
func parseHCL(text string) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, &ParseError{Msg: fmt.Sprintf("invalid policy text: %v", r)}
		}
	}()
	f, err = hcl.ParseString(text)
	if err != nil {
		return nil, syntaxError(err)
	}
	return f, nil
}

// isJSON reports whether the HCL library will read text as JSON: it does
// when the first non-space character is '{'.
func isJSON(text string) bool {
	t := strings.TrimLeftFunc(text, unicode.IsSpace)
	return strings.HasPrefix(t, "{")
}

// checkJSON validates a JSON policy with encoding/json before the HCL
// library sees it. That library accepts some malformed JSON and silently
// drops booleans and nested lists inside lists, which would turn
// allowed_parameters = {"x": [true]} into {"x": []}: any value.
func checkJSON(text string) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the top-level object")
	}
	if err != nil {
		pe := &ParseError{Msg: "syntax error: " + err.Error()}
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			pe.Line = 1 + strings.Count(text[:min(int(se.Offset), len(text))], "\n")
		}
		return pe
	}
	return checkJSONLists(v)
}

func checkJSONLists(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if err := checkJSONLists(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			switch e.(type) {
			case bool:
				return &ParseError{Msg: "booleans inside lists are not supported in JSON policies; quote them"}
			case []any:
				return &ParseError{Msg: "nested lists are not supported in policies"}
			case nil:
				return &ParseError{Msg: "null inside a list is not supported in policies"}
			}
			if err := checkJSONLists(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// syntaxError turns an HCL error ("At 3:5: ..." or, for JSON, "At line 3,
// column 5: ...") into a ParseError with the position split out.
func syntaxError(err error) error {
	msg := err.Error()
	var pe ParseError
	if rest, ok := strings.CutPrefix(msg, "At "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			pos := rest[:i]
			if l, c, ok := strings.Cut(pos, ":"); ok {
				pe.Line, _ = strconv.Atoi(l)
				pe.Column, _ = strconv.Atoi(c)
			} else if after, ok := strings.CutPrefix(pos, "line "); ok {
				l, c, _ := strings.Cut(after, ", column ")
				pe.Line, _ = strconv.Atoi(l)
				pe.Column, _ = strconv.Atoi(c)
			}
			if pe.Line > 0 {
				msg = rest[i+2:]
			}
		}
	} else if _, after, ok := strings.Cut(msg, " at "); ok {
		// The duplicate-key error puts the position mid-sentence:
		// `The argument "x" at 3:2 was already set. ...`.
		pos, _, _ := strings.Cut(after, " ")
		if l, c, ok := strings.Cut(pos, ":"); ok {
			pe.Line, _ = strconv.Atoi(l)
			pe.Column, _ = strconv.Atoi(c)
		}
	}
	pe.Msg = "syntax error: " + msg
	return &pe
}

func errorAt(pos token.Pos, format string, args ...any) *ParseError {
	return &ParseError{Line: pos.Line, Column: pos.Column, Msg: fmt.Sprintf(format, args...)}
}

// entry is one key of an object and its value. The JSON parser flattens
// nested objects into items with several keys ({"path": {"a": {...}}}
// becomes one item keyed path, a); entries undoes that, so the HCL and JSON
// forms are walked alike.
type entry struct {
	key string
	pos token.Pos
	val ast.Node
}

func entries(list *ast.ObjectList) []entry {
	out := make([]entry, 0, len(list.Items))
	for _, it := range list.Items {
		if len(it.Keys) == 0 {
			continue
		}
		e := entry{key: keyName(it.Keys[0]), pos: it.Keys[0].Pos(), val: it.Val}
		if len(it.Keys) > 1 {
			inner := &ast.ObjectItem{Keys: it.Keys[1:], Assign: it.Assign, Val: it.Val}
			e.val = &ast.ObjectType{List: &ast.ObjectList{Items: []*ast.ObjectItem{inner}}}
		}
		out = append(out, e)
	}
	return out
}

func keyName(k *ast.ObjectKey) string {
	if k.Token.Type == token.STRING {
		if s, ok := stringValue(k.Token); ok {
			return s
		}
		return strings.Trim(k.Token.Text, `"`)
	}
	return k.Token.Text
}

// stringValue unquotes a STRING or HEREDOC token. The library panics on a
// malformed escape; that is reported as not ok.
func stringValue(t token.Token) (s string, ok bool) {
	if t.Type != token.STRING && t.Type != token.HEREDOC {
		return "", false
	}
	defer func() {
		if recover() != nil {
			s, ok = "", false
		}
	}()
	v, ok := t.Value().(string)
	return v, ok
}

// block is one path block: its pattern and body.
type block struct {
	path string
	pos  token.Pos
	body *ast.ObjectList
}

// pathBlocks returns the blocks under a "path" key: path "p" { ... } in
// HCL, {"path": {"p": {...}}} or {"path": [{"p": {...}}]} in JSON.
func pathBlocks(e entry) ([]block, error) {
	var objs []*ast.ObjectType
	switch v := e.val.(type) {
	case *ast.ObjectType:
		objs = []*ast.ObjectType{v}
	case *ast.ListType:
		for _, n := range v.List {
			o, ok := n.(*ast.ObjectType)
			if !ok {
				return nil, errorAt(n.Pos(), `"path" must be a block, as in path "secret/*" { ... }`)
			}
			objs = append(objs, o)
		}
	default:
		return nil, errorAt(e.pos, `"path" must be a block, as in path "secret/*" { ... }`)
	}
	var out []block
	for _, o := range objs {
		for _, pe := range entries(o.List) {
			body, ok := pe.val.(*ast.ObjectType)
			if !ok {
				return nil, errorAt(pe.pos, "path %q must be a block", pe.key)
			}
			pos := pe.pos
			if !pos.IsValid() {
				pos = e.pos
			}
			out = append(out, block{path: pe.key, pos: pos, body: body.List})
		}
	}
	return out, nil
}

func parseRule(b block) (*PathRule, error) {
	p := strings.TrimPrefix(b.path, "/")
	r := &PathRule{Path: p, Line: b.pos.Line}
	if p == "" {
		// Vault accepts it, but an empty pattern matches only the empty
		// path, which no request has: it is a mistake.
		return nil, errorAt(b.pos, "path %q: the path is empty", b.path)
	}
	if strings.Contains(p, "+*") {
		return nil, errorAt(b.pos, "path %q: invalid use of wildcards ('+*' is forbidden)", p)
	}
	templated, err := checkTemplates(p)
	if err != nil {
		return nil, errorAt(b.pos, "path %q: %v", p, err)
	}
	r.Templated = templated

	seen := map[string]bool{}
	var caps, legacy Capability
	for _, e := range entries(b.body) {
		if seen[e.key] {
			return nil, errorAt(e.pos, "path %q: %q is set twice", p, e.key)
		}
		seen[e.key] = true
		pos := e.pos
		if !pos.IsValid() {
			pos = b.pos
		}
		fail := func(format string, args ...any) error {
			return errorAt(pos, "path %q: %s: %s", p, e.key, fmt.Sprintf(format, args...))
		}
		switch e.key {
		case "capabilities":
			names, err := stringList(e.val)
			if err != nil {
				return nil, fail("%v", err)
			}
			for _, n := range names {
				c, err := ParseCapability(n)
				if err != nil {
					return nil, fail("%v", err)
				}
				caps |= c
			}
		case "policy":
			s, ok := literalString(e.val)
			if !ok {
				return nil, fail("must be a string")
			}
			c, ok := legacyPolicies[s]
			if !ok {
				return nil, fail("invalid policy %q (want deny, read, write or sudo)", s)
			}
			legacy = c
		case "allowed_parameters", "denied_parameters":
			m, err := paramMap(e.val)
			if err != nil {
				return nil, fail("%v", err)
			}
			if e.key == "allowed_parameters" {
				r.AllowedParameters = m
			} else {
				r.DeniedParameters = m
			}
		case "required_parameters":
			names, err := stringList(e.val)
			if err != nil {
				return nil, fail("%v", err)
			}
			for _, n := range names {
				r.RequiredParameters = appendUnique(r.RequiredParameters, strings.ToLower(n))
			}
		case "min_wrapping_ttl", "max_wrapping_ttl":
			d, err := durationValue(e.val)
			if err != nil {
				return nil, fail("%v", err)
			}
			if e.key == "min_wrapping_ttl" {
				r.MinWrappingTTL = d
			} else {
				r.MaxWrappingTTL = d
			}
		case "subscribe_event_types":
			names, err := stringList(e.val)
			if err != nil {
				return nil, fail("%v", err)
			}
			for _, n := range names {
				if n == "" {
					return nil, fail("an event type pattern is empty")
				}
				r.SubscribeEventTypes = appendUnique(r.SubscribeEventTypes, n)
			}
		case "mfa_methods":
			names, err := stringList(e.val)
			if err != nil {
				return nil, fail("%v", err)
			}
			r.MFAMethods = names
		case "control_group":
			if _, ok := e.val.(*ast.ObjectType); !ok {
				return nil, fail("must be a block")
			}
		case "comment":
			s, ok := literalString(e.val)
			if !ok {
				return nil, fail("must be a string")
			}
			r.Comment = s
		default:
			return nil, errorAt(pos, "path %q: unknown key %q", p, e.key)
		}
	}
	if r.MinWrappingTTL > 0 && r.MaxWrappingTTL > 0 && r.MaxWrappingTTL < r.MinWrappingTTL {
		return nil, errorAt(b.pos, "path %q: max_wrapping_ttl cannot be less than min_wrapping_ttl", p)
	}
	r.Capabilities = (caps | legacy).Normalize()
	if r.Capabilities == Deny {
		// A deny rule grants nothing, so its constraints mean nothing.
		r.dropConstraints()
	}
	return r, nil
}

func (r *PathRule) dropConstraints() {
	r.AllowedParameters, r.DeniedParameters, r.RequiredParameters = nil, nil, nil
	r.MinWrappingTTL, r.MaxWrappingTTL = 0, 0
	r.SubscribeEventTypes = nil
}

func literalString(n ast.Node) (string, bool) {
	lit, ok := n.(*ast.LiteralType)
	if !ok {
		return "", false
	}
	return stringValue(lit.Token)
}

func stringList(n ast.Node) ([]string, error) {
	l, ok := n.(*ast.ListType)
	if !ok {
		return nil, errors.New("must be a list of strings")
	}
	out := make([]string, 0, len(l.List))
	for _, el := range l.List {
		s, ok := literalString(el)
		if !ok {
			return nil, errors.New("must be a list of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// paramMap reads allowed_parameters or denied_parameters: an object from
// names to lists of values. Names are lowercased (requests are matched
// lowercase); two spellings of one name are merged.
func paramMap(n ast.Node) (map[string][]string, error) {
	o, ok := n.(*ast.ObjectType)
	if !ok {
		return nil, errors.New(`must be an object of lists, as in { "name" = ["value"] }`)
	}
	m := map[string][]string{}
	for _, e := range entries(o.List) {
		l, ok := e.val.(*ast.ListType)
		if !ok {
			return nil, fmt.Errorf("parameter %q: must be a list of values", e.key)
		}
		vals := make([]string, 0, len(l.List))
		for _, el := range l.List {
			v, err := scalarValue(el)
			if err != nil {
				return nil, fmt.Errorf("parameter %q: %v", e.key, err)
			}
			vals = append(vals, v)
		}
		name := strings.ToLower(e.key)
		old, dup := m[name]
		m[name] = mergeValues(old, dup, vals)
	}
	return m, nil
}

// mergeValues combines two value lists for one parameter name: an empty
// list on either side (any value) wins, otherwise they are concatenated.
func mergeValues(old []string, hadOld bool, add []string) []string {
	if hadOld && len(old) == 0 || len(add) == 0 {
		return []string{}
	}
	return append(old[:len(old):len(old)], add...)
}

// scalarValue returns a parameter value in the text form requests are
// compared in: strings as written, numbers in shortest decimal form, bools
// as "true" or "false".
func scalarValue(n ast.Node) (string, error) {
	lit, ok := n.(*ast.LiteralType)
	if !ok {
		return "", errors.New("values must be strings, numbers or booleans")
	}
	switch lit.Token.Type {
	case token.STRING, token.HEREDOC:
		if s, ok := stringValue(lit.Token); ok {
			return s, nil
		}
		return "", fmt.Errorf("invalid string %s", lit.Token.Text)
	case token.NUMBER:
		i, err := strconv.ParseInt(lit.Token.Text, 0, 64)
		if err != nil {
			return "", fmt.Errorf("invalid number %s", lit.Token.Text)
		}
		return strconv.FormatInt(i, 10), nil
	case token.FLOAT:
		f, err := strconv.ParseFloat(lit.Token.Text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return "", fmt.Errorf("invalid number %s", lit.Token.Text)
		}
		return formatFloat(f), nil
	case token.BOOL:
		return lit.Token.Text, nil
	}
	return "", errors.New("values must be strings, numbers or booleans")
}

func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// durationValue reads a wrapping TTL: a number of seconds, or a string
// holding seconds ("300"), days ("2d") or a Go duration ("1h30m"). Negative
// and fractional-second values are refused.
func durationValue(n ast.Node) (time.Duration, error) {
	lit, ok := n.(*ast.LiteralType)
	if !ok {
		return 0, errors.New(`must be a duration ("1h") or a number of seconds`)
	}
	switch lit.Token.Type {
	case token.NUMBER:
		i, err := strconv.ParseInt(lit.Token.Text, 0, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %s", lit.Token.Text)
		}
		return seconds(i)
	case token.FLOAT:
		f, err := strconv.ParseFloat(lit.Token.Text, 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("invalid duration %s: want whole seconds", lit.Token.Text)
		}
		return seconds(int64(f))
	case token.STRING, token.HEREDOC:
		s, ok := stringValue(lit.Token)
		if !ok {
			return 0, fmt.Errorf("invalid duration %s", lit.Token.Text)
		}
		return parseDuration(s)
	}
	return 0, errors.New(`must be a duration ("1h") or a number of seconds`)
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return seconds(i)
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		i, err := strconv.ParseInt(days, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if i < 0 || i > math.MaxInt64/int64(24*time.Hour) {
			return 0, fmt.Errorf("invalid duration %q: out of range", s)
		}
		return time.Duration(i) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", s)
	}
	return d, nil
}

func seconds(i int64) (time.Duration, error) {
	if i < 0 {
		return 0, fmt.Errorf("invalid duration %d: negative", i)
	}
	if i > math.MaxInt64/int64(time.Second) {
		return 0, fmt.Errorf("invalid duration %d: out of range", i)
	}
	return time.Duration(i) * time.Second, nil
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
