package template

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	gotemplate "text/template"
	"time"
	"unicode"
)

// builtin are text/template's own functions.
var builtin = map[string]bool{
	"and": true, "call": true, "html": true, "index": true, "slice": true, "js": true, "len": true,
	"not": true, "or": true, "print": true, "printf": true, "println": true, "urlquery": true,
	"eq": true, "ge": true, "gt": true, "le": true, "lt": true, "ne": true,
}

// supported are the functions this package provides (render.funcs).
var supported = map[string]bool{
	"secret": true, "secrets": true, "file": true, "env": true, "mustEnv": true, "envOrDefault": true,
	"executeTemplate": true, "scratch": true,
	"base64Decode": true, "base64Encode": true, "base64URLDecode": true, "base64URLEncode": true,
	"contains": true, "containsAll": true, "containsAny": true, "containsNone": true, "containsNotAll": true, "in": true,
	"explodeMap": true, "indent": true, "loop": true, "join": true, "mergeMap": true, "mergeMapWithOverride": true,
	"trimSpace": true, "trim": true, "trimPrefix": true, "trimSuffix": true,
	"parseBool": true, "parseFloat": true, "parseInt": true, "parseUint": true, "parseJSON": true,
	"regexMatch": true, "regexReplaceAll": true, "replaceAll": true,
	"sha256Hex": true, "md5sum": true, "hmacSHA256Hex": true,
	"split": true, "splitToMap": true, "timestamp": true,
	"toJSON": true, "toJSONPretty": true, "toUnescapedJSON": true, "toUnescapedJSONPretty": true,
	"toLower": true, "toUpper": true, "toTitle": true, "toYAML": true,
	"add": true, "subtract": true, "multiply": true, "divide": true, "modulo": true, "minimum": true, "maximum": true,
}

const (
	whyConsul = "it reads Consul; Vigil's templates read only from Vigil"
	whyNomad  = "it reads Nomad; Vigil's templates read only from Vigil"
)

// refused are consul-template's functions this package does not provide,
// with the reason.
var refused = map[string]string{
	"caLeaf": whyConsul, "caRoots": whyConsul, "connect": whyConsul, "datacenters": whyConsul,
	"key": whyConsul, "keyExists": whyConsul, "keyOrDefault": whyConsul, "ls": whyConsul, "safeLs": whyConsul,
	"node": whyConsul, "nodes": whyConsul, "partitions": whyConsul, "peerings": whyConsul,
	"service": whyConsul, "services": whyConsul, "tree": whyConsul, "safeTree": whyConsul,
	"byKey": whyConsul, "byTag": whyConsul, "byMeta": whyConsul, "explode": whyConsul + " (use explodeMap on a map)",
	"nomadServices": whyNomad, "nomadService": whyNomad, "nomadVarList": whyNomad, "nomadVarListSafe": whyNomad,
	"nomadVar": whyNomad, "nomadVarExists": whyNomad,
	"pkiCert":      "Vigil has no PKI secrets engine",
	"writeToFile":  "a template writes only its own destination; use one template block per file",
	"plugin":       "templates run no programs; use the template's exec command after rendering",
	"sockaddr":     "network address templates (go-sockaddr) are not included",
	"parseYAML":    "no YAML parser is included; store the value as JSON and use parseJSON",
	"toTOML":       "no TOML encoder is included; use toJSON or toYAML",
	"spew_dump":    "debugging functions print whole values, secrets included",
	"spew_sdump":   "debugging functions print whole values, secrets included",
	"spew_printf":  "debugging functions print whole values, secrets included",
	"spew_sprintf": "debugging functions print whole values, secrets included",
}

// maxLoop bounds loop, so that a template cannot spin without end.
const maxLoop = 1 << 20

// maxExecuteDepth bounds executeTemplate's recursion.
const maxExecuteDepth = 100

// placeholderFuncs are the functions' names for parsing; Render installs
// the ones bound to its state.
func placeholderFuncs() gotemplate.FuncMap {
	return (&render{opts: &Options{}}).funcs(nil)
}

// funcs returns the template functions bound to this render; tmpl is the
// template being executed (for executeTemplate).
func (r *render) funcs(tmpl *gotemplate.Template) gotemplate.FuncMap {
	sc := &scratch{}
	return gotemplate.FuncMap{
		"secret":  r.secret,
		"secrets": r.secrets,
		"file":    r.file,
		"env": func(name string) string {
			v, _ := r.env(name)
			return v
		},
		"mustEnv": func(name string) (string, error) {
			if v, _ := r.env(name); v != "" {
				return v, nil
			}
			return "", fmt.Errorf("required environment variable %s is empty", name)
		},
		"envOrDefault": func(name, def string) string {
			if v, ok := r.env(name); ok {
				return v
			}
			return def
		},
		"executeTemplate": func(name string, data ...any) (string, error) {
			var dot any
			switch len(data) {
			case 0:
			case 1:
				dot = data[0]
			default:
				return "", fmt.Errorf("executeTemplate: want a name and at most one argument, got %d arguments", len(data)+1)
			}
			// Each call is a new execution, which text/template's own
			// depth limit does not see: bound the nesting here.
			if r.depth >= maxExecuteDepth {
				return "", fmt.Errorf("executeTemplate: nested more than %d deep", maxExecuteDepth)
			}
			r.depth++
			defer func() { r.depth-- }()
			var b bytes.Buffer
			if err := tmpl.ExecuteTemplate(&b, name, dot); err != nil {
				return "", err
			}
			return b.String(), nil
		},
		"scratch": func() *scratch { return sc },

		"base64Decode":    decode64(base64.StdEncoding, "base64Decode"),
		"base64Encode":    func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"base64URLDecode": decode64(base64.URLEncoding, "base64URLDecode"),
		"base64URLEncode": func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) },

		"contains":       func(needle, haystack any) bool { return in(haystack, needle) },
		"in":             in,
		"containsAll":    containsSome(true, true),
		"containsAny":    containsSome(false, false),
		"containsNone":   containsSome(true, false),
		"containsNotAll": containsSome(false, true),

		"explodeMap":           explodeMap,
		"indent":               indent,
		"loop":                 loop,
		"join":                 join,
		"mergeMap":             func(dst, src map[string]any) map[string]any { return merge(dst, src, false) },
		"mergeMapWithOverride": func(dst, src map[string]any) map[string]any { return merge(dst, src, true) },

		"trimSpace":  strings.TrimSpace,
		"trim":       func(cutset, s string) string { return strings.Trim(s, cutset) },
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },

		"parseBool":  parseBool,
		"parseFloat": parseFloat,
		"parseInt":   parseInt,
		"parseUint":  parseUint,
		"parseJSON":  parseJSON,

		"regexMatch": func(re, s string) (bool, error) {
			c, err := regexp.Compile(re)
			if err != nil {
				return false, err
			}
			return c.MatchString(s), nil
		},
		"regexReplaceAll": func(re, repl, s string) (string, error) {
			c, err := regexp.Compile(re)
			if err != nil {
				return "", err
			}
			return c.ReplaceAllString(s, repl), nil
		},
		"replaceAll": func(from, to, s string) string { return strings.ReplaceAll(s, from, to) },

		"sha256Hex": func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"md5sum":    func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) },
		"hmacSHA256Hex": func(message, key string) string {
			m := hmac.New(sha256.New, []byte(key))
			m.Write([]byte(message))
			return hex.EncodeToString(m.Sum(nil))
		},

		"split": func(sep, s string) []string {
			if s = strings.TrimSpace(s); s == "" {
				return []string{}
			}
			return strings.Split(s, sep)
		},
		"splitToMap": func(sep1, sep2, s string) map[string]string {
			m := map[string]string{}
			if s = strings.TrimSpace(s); s == "" {
				return m
			}
			for _, item := range strings.Split(s, sep1) {
				if k, v, ok := strings.Cut(item, sep2); ok {
					m[k] = v
				}
			}
			return m
		},
		"timestamp": func(format ...string) (string, error) {
			now := r.opts.Now().UTC()
			switch len(format) {
			case 0:
				return now.Format(time.RFC3339), nil
			case 1:
				if format[0] == "unix" {
					return strconv.FormatInt(now.Unix(), 10), nil
				}
				return now.Format(format[0]), nil
			}
			return "", fmt.Errorf("timestamp: want at most one argument, got %d", len(format))
		},

		"toJSON":                func(v any) (string, error) { return toJSON(v, true, false) },
		"toJSONPretty":          func(v any) (string, error) { return toJSON(v, true, true) },
		"toUnescapedJSON":       func(v any) (string, error) { return toJSON(v, false, false) },
		"toUnescapedJSONPretty": func(v any) (string, error) { return toJSON(v, false, true) },
		"toLower":               strings.ToLower,
		"toUpper":               strings.ToUpper,
		"toTitle":               toTitle,
		"toYAML":                toYAML,

		"add":      arith("add"),
		"subtract": arith("subtract"),
		"multiply": arith("multiply"),
		"divide":   arith("divide"),
		"modulo":   arith("modulo"),
		"minimum":  arith("minimum"),
		"maximum":  arith("maximum"),
	}
}

// secret reads the secret at path, or writes key=value arguments to it
// and returns the response.
func (r *render) secret(path string, args ...string) (*Secret, error) {
	path = cleanPath(path)
	if path == "" {
		return nil, nil
	}
	var data map[string]string
	for i, a := range args {
		if a == "" {
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			// The argument is not shown: it may have been built from a secret.
			return nil, fmt.Errorf("secret %q: argument %d is not key=value", path, i+2)
		}
		if data == nil {
			data = map[string]string{}
		}
		data[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	kind := KindRead
	if data != nil {
		kind = KindWrite
	}
	d := Dependency{Kind: kind, Path: path, key: depKey(kind, path, data)}
	if v, ok := r.memo[d.key]; ok {
		s := v.(*Secret)
		leaseOf(&d, s)
		r.addDep(d)
		return s, nil
	}
	if err := r.ctx.Err(); err != nil {
		return nil, r.fail(err)
	}
	var s *Secret
	var err error
	if kind == KindWrite {
		s, err = r.src.Write(r.ctx, path, data)
	} else {
		s, err = r.src.Read(r.ctx, path)
	}
	if err == nil && s == nil {
		err = ErrNotFound
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, r.fail(fmt.Errorf("secret %q: %w", path, ErrNotFound))
		}
		return nil, r.fail(fmt.Errorf("secret %q: %w", path, err))
	}
	r.remember(s)
	r.memo[d.key] = s
	leaseOf(&d, s)
	r.addDep(d)
	return s, nil
}

// secrets lists the keys under path, sorted.
func (r *render) secrets(path string) ([]string, error) {
	path = cleanPath(path)
	if path == "" {
		return []string{}, nil
	}
	d := Dependency{Kind: KindList, Path: path, key: depKey(KindList, path, nil)}
	r.addDep(d)
	if v, ok := r.memo[d.key]; ok {
		return v.([]string), nil
	}
	if err := r.ctx.Err(); err != nil {
		return nil, r.fail(err)
	}
	keys, err := r.src.List(r.ctx, path)
	if err != nil {
		return nil, r.fail(fmt.Errorf("secrets %q: %w", path, err))
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	r.remember(keys)
	r.memo[d.key] = keys
	return keys, nil
}

// fail records the first Source error, the render's cause.
func (r *render) fail(err error) error {
	if r.cause == nil {
		r.cause = err
	}
	return err
}

// cleanPath trims spaces and slashes, as consul-template does: "/auth/
// token/create" and "auth/token/create" are one path.
func cleanPath(p string) string {
	return strings.Trim(strings.TrimSpace(p), "/")
}

// file reads a local file; with a sandbox, only one under it.
func (r *render) file(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	if sb := r.opts.SandboxPath; sb != "" {
		if err := inSandbox(sb, path); err != nil {
			return "", err
		}
	}
	d := Dependency{Kind: KindFile, Path: path, key: depKey(KindFile, path, nil)}
	r.addDep(d)
	if v, ok := r.memo[d.key]; ok {
		return v.(string), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("file: %w", err)
	}
	s := string(b)
	r.remember(s)
	r.memo[d.key] = s
	return s, nil
}

// inSandbox checks that path, its symbolic links followed, is under sandbox.
func inSandbox(sandbox, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("file %q: %w", path, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("file %q: %w", path, err)
	}
	box, err := filepath.Abs(sandbox)
	if err == nil {
		if b, berr := filepath.EvalSymlinks(box); berr == nil {
			box = b
		}
	}
	rel, err := filepath.Rel(box, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("file %q is outside the sandbox %q", path, sandbox)
	}
	return nil
}

func (r *render) env(name string) (string, bool) {
	v, ok := r.opts.LookupEnv(name)
	if ok {
		r.remember(v)
	}
	return v, ok
}

func decode64(enc *base64.Encoding, name string) func(string) (string, error) {
	return func(s string) (string, error) {
		b, err := enc.DecodeString(s)
		if err != nil {
			// base64's error gives the offset, not the input.
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return string(b), nil
	}
}

// in reports whether needle is in haystack: an element of a list, or a
// substring of a string.
func in(haystack, needle any) bool {
	hv := reflect.ValueOf(haystack)
	nv := reflect.ValueOf(needle)
	if !hv.IsValid() || !nv.IsValid() {
		return false
	}
	switch hv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < hv.Len(); i++ {
			if equalScalar(hv.Index(i), nv) {
				return true
			}
		}
	case reflect.String:
		if nv.Kind() == reflect.String {
			return strings.Contains(hv.String(), nv.String())
		}
	}
	return false
}

func equalScalar(a, b reflect.Value) bool {
	for a.Kind() == reflect.Interface && !a.IsNil() {
		a = a.Elem()
	}
	for b.Kind() == reflect.Interface && !b.IsNil() {
		b = b.Elem()
	}
	if !a.IsValid() || !b.IsValid() {
		return false
	}
	switch {
	case isInt(a) && isInt(b):
		return a.Int() == b.Int()
	case isFloat(a) && isFloat(b):
		return a.Float() == b.Float()
	case a.Kind() == reflect.String && b.Kind() == reflect.String:
		return a.String() == b.String()
	case a.Kind() == reflect.Bool && b.Kind() == reflect.Bool:
		return a.Bool() == b.Bool()
	}
	return false
}

func isInt(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	}
	return false
}

func isFloat(v reflect.Value) bool {
	return v.Kind() == reflect.Float32 || v.Kind() == reflect.Float64
}

// containsSome builds containsAll (true, true), containsAny (false,
// false), containsNone (true, false) and containsNotAll (false, true).
func containsSome(retTrue, invert bool) func(needles, haystack any) bool {
	return func(needles, haystack any) bool {
		nv := reflect.ValueOf(needles)
		if nv.Kind() != reflect.Slice && nv.Kind() != reflect.Array {
			return retTrue
		}
		for i := 0; i < nv.Len(); i++ {
			if in(haystack, nv.Index(i).Interface()) != invert {
				return !retTrue
			}
		}
		return retTrue
	}
}

// explodeMap turns {"a/b": 1} into {"a": {"b": 1}}.
func explodeMap(m map[string]any) (map[string]any, error) {
	out := map[string]any{}
	keys := slices.Sorted(maps.Keys(m))
	for _, k := range keys {
		cur := out
		parts := strings.Split(k, "/")
		for i, p := range parts {
			if i == len(parts)-1 {
				if p != "" {
					cur[p] = m[k]
				}
				break
			}
			next, ok := cur[p].(map[string]any)
			if !ok {
				if _, taken := cur[p]; taken {
					return nil, fmt.Errorf("explodeMap: key %q is both a value and a map", strings.Join(parts[:i+1], "/"))
				}
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
	}
	return out, nil
}

func indent(spaces int, s string) (string, error) {
	if spaces < 0 {
		return "", errors.New("indent: the number of spaces must not be negative")
	}
	prefix := strings.Repeat(" ", spaces)
	var b strings.Builder
	start := true
	for _, c := range []byte(s) {
		if start && c != '\n' {
			b.WriteString(prefix)
		}
		b.WriteByte(c)
		start = c == '\n'
	}
	return b.String(), nil
}

// loop returns [0, n) for one argument and [a, b) for two.
func loop(args ...any) ([]int64, error) {
	var from, to int64
	var err error
	switch len(args) {
	case 1:
		to, err = toInt64(args[0])
	case 2:
		if from, err = toInt64(args[0]); err == nil {
			to, err = toInt64(args[1])
		}
	default:
		return nil, fmt.Errorf("loop: want 1 or 2 arguments, got %d", len(args))
	}
	if err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	if to-from > maxLoop {
		return nil, fmt.Errorf("loop: more than %d iterations", maxLoop)
	}
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out, nil
}

func toInt64(v any) (int64, error) {
	rv := reflect.ValueOf(v)
	switch {
	case isInt(rv):
		return rv.Int(), nil
	case rv.Kind() >= reflect.Uint && rv.Kind() <= reflect.Uint64:
		return int64(rv.Uint()), nil
	case rv.Kind() == reflect.String:
		n, err := strconv.ParseInt(strings.TrimSpace(rv.String()), 10, 64)
		if err != nil {
			return 0, errors.New("not a whole number")
		}
		return n, nil
	}
	return 0, fmt.Errorf("want a whole number, got %T", v)
}

// join joins a list's elements, which need not be strings (a JSON list
// from a secret holds any).
func join(sep string, list any) (string, error) {
	if ss, ok := list.([]string); ok {
		return strings.Join(ss, sep), nil
	}
	v := reflect.ValueOf(list)
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return "", fmt.Errorf("join: want a list, got %T", list)
	}
	parts := make([]string, v.Len())
	for i := range parts {
		parts[i] = fmt.Sprint(v.Index(i).Interface())
	}
	return strings.Join(parts, sep), nil
}

// merge merges src into a copy of dst, deeply; with override src's values
// win, else dst's.
func merge(dst, src map[string]any, override bool) map[string]any {
	out := maps.Clone(dst)
	if out == nil {
		out = map[string]any{}
	}
	for k, sv := range src {
		dv, ok := out[k]
		if !ok {
			out[k] = sv
			continue
		}
		dm, dIsMap := dv.(map[string]any)
		sm, sIsMap := sv.(map[string]any)
		switch {
		case dIsMap && sIsMap:
			out[k] = merge(dm, sm, override)
		case override:
			out[k] = sv
		}
	}
	return out
}

func parseBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errors.New("parseBool: not true or false")
	}
	return b, nil
}

func parseFloat(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errors.New("parseFloat: not a number")
	}
	return f, nil
}

func parseInt(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("parseInt: not a whole number")
	}
	return n, nil
}

func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errors.New("parseUint: not a non-negative whole number")
	}
	return n, nil
}

// parseJSON decodes JSON as consul-template does (numbers as float64); an
// empty string is an empty map.
func parseJSON(s string) (any, error) {
	if s == "" {
		return map[string]any{}, nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		// json's message quotes a character of the input; give the offset.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("parseJSON: invalid JSON at offset %d", se.Offset)
		}
		return nil, errors.New("parseJSON: invalid JSON")
	}
	return v, nil
}

func toJSON(v any, escapeHTML, pretty bool) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if pretty {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("toJSON: cannot encode a %T", v)
	}
	return strings.TrimSpace(b.String()), nil
}

// toTitle capitalizes the first letter of each word and leaves the rest.
func toTitle(s string) string {
	rs := []rune(s)
	start := true
	for i, c := range rs {
		if unicode.IsLetter(c) || unicode.IsDigit(c) || c == '\'' {
			if start {
				rs[i] = unicode.ToTitle(c)
			}
			start = false
		} else {
			start = true
		}
	}
	return string(rs)
}

// arith builds the math functions. As in consul-template the piped value
// comes last and is the left operand: {{ 10 | subtract 3 }} is 7,
// {{ subtract 3 10 }} too.
func arith(op string) func(b, a any) (any, error) {
	return func(b, a any) (any, error) {
		x, xf, err := number(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		y, yf, err := number(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if xf == nil && yf == nil {
			switch op {
			case "add":
				return x + y, nil
			case "subtract":
				return x - y, nil
			case "multiply":
				return x * y, nil
			case "divide", "modulo":
				if y == 0 {
					return nil, fmt.Errorf("%s: division by zero", op)
				}
				if op == "divide" {
					return x / y, nil
				}
				return x % y, nil
			case "minimum":
				return min(x, y), nil
			case "maximum":
				return max(x, y), nil
			}
		}
		fx, fy := float64(x), float64(y)
		if xf != nil {
			fx = *xf
		}
		if yf != nil {
			fy = *yf
		}
		switch op {
		case "add":
			return fx + fy, nil
		case "subtract":
			return fx - fy, nil
		case "multiply":
			return fx * fy, nil
		case "divide":
			return fx / fy, nil
		case "minimum":
			return min(fx, fy), nil
		case "maximum":
			return max(fx, fy), nil
		}
		return nil, fmt.Errorf("%s: wants whole numbers", op)
	}
}

// number reads an integer (f nil) or a float (f set): Go numbers, and
// json.Number, as secret data holds.
func number(v any) (i int64, f *float64, err error) {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i, nil, nil
		}
		x, err := n.Float64()
		if err != nil {
			return 0, nil, errors.New("not a number")
		}
		return 0, &x, nil
	}
	rv := reflect.ValueOf(v)
	switch {
	case isInt(rv):
		return rv.Int(), nil, nil
	case rv.Kind() >= reflect.Uint && rv.Kind() <= reflect.Uint64:
		return int64(rv.Uint()), nil, nil
	case isFloat(rv):
		x := rv.Float()
		return 0, &x, nil
	}
	return 0, nil, fmt.Errorf("want a number, got %T", v)
}

// scratch is a template's scratchpad, new for each render.
type scratch struct {
	values map[string]any
}

// Key reports whether key is set.
func (s *scratch) Key(key string) bool {
	_, ok := s.values[key]
	return ok
}

// Get returns the value at key, nil when unset.
func (s *scratch) Get(key string) any { return s.values[key] }

// Set sets key and renders nothing.
func (s *scratch) Set(key string, v any) string {
	if s.values == nil {
		s.values = map[string]any{}
	}
	s.values[key] = v
	return ""
}

// SetX sets key unless it is set.
func (s *scratch) SetX(key string, v any) string {
	if !s.Key(key) {
		s.Set(key, v)
	}
	return ""
}

// MapSet sets mk in the map at key.
func (s *scratch) MapSet(key, mk string, v any) (string, error) {
	m, err := s.mapAt(key)
	if err != nil {
		return "", err
	}
	m[mk] = v
	return "", nil
}

// MapSetX sets mk in the map at key unless it is set.
func (s *scratch) MapSetX(key, mk string, v any) (string, error) {
	m, err := s.mapAt(key)
	if err != nil {
		return "", err
	}
	if _, ok := m[mk]; !ok {
		m[mk] = v
	}
	return "", nil
}

// MapValues returns the values of the map at key, sorted by their keys.
func (s *scratch) MapValues(key string) ([]any, error) {
	m, ok := s.values[key].(map[string]any)
	if !ok {
		if s.Key(key) {
			return nil, fmt.Errorf("scratch: %q is not a map", key)
		}
		return []any{}, nil
	}
	out := make([]any, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out, nil
}

func (s *scratch) mapAt(key string) (map[string]any, error) {
	if !s.Key(key) {
		s.Set(key, map[string]any{})
	}
	m, ok := s.values[key].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("scratch: %q is not a map", key)
	}
	return m, nil
}
