package framework

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldType is the type of a request field. Each type accepts the loose
// forms Vault clients send (spec §2) and produces one Go type, read with the
// matching [FieldData] getter.
type FieldType int

// The field types. The Go type each produces and the getter that reads it
// are noted beside each.
const (
	// TypeString accepts a string, or a number or bool which is
	// stringified. It produces a string ([FieldData.String]).
	TypeString FieldType = iota + 1
	// TypeInt accepts an integral JSON number or a numeric string. It
	// produces an int ([FieldData.Int]).
	TypeInt
	// TypeInt64 is TypeInt producing an int64 ([FieldData.Int64]).
	TypeInt64
	// TypeBool accepts a bool, a string understood by strconv.ParseBool, or
	// the numbers 0 and 1. It produces a bool ([FieldData.Bool]).
	TypeBool
	// TypeDurationSecond accepts integer seconds (number or numeric string)
	// or a Go duration string ("1h", "0s"; not "1d"). Negative values are
	// rejected and sub-second parts are truncated. It produces a
	// time.Duration ([FieldData.Duration]).
	TypeDurationSecond
	// TypeSignedDurationSecond is TypeDurationSecond allowing negative
	// values.
	TypeSignedDurationSecond
	// TypeCommaStringSlice accepts a list of strings or a single
	// comma-separated string. Elements are trimmed of spaces and empty
	// elements dropped. It produces a []string ([FieldData.StringSlice]).
	TypeCommaStringSlice
	// TypeCommaIntSlice accepts a list of numbers or numeric strings, a
	// comma-separated string ("1,3") or a single number. It produces an
	// []int ([FieldData.IntSlice]).
	TypeCommaIntSlice
	// TypeStringSlice accepts a list of strings (numbers and bools are
	// stringified) or a single string, which becomes a one-element list. It
	// produces a []string ([FieldData.StringSlice]).
	TypeStringSlice
	// TypeMap accepts a JSON object. It produces a map[string]any
	// ([FieldData.Map]) holding the decoded JSON values unchanged.
	TypeMap
	// TypeKVPairs accepts a JSON object with scalar values, a list of
	// "k=v" strings, or a comma-separated "k=v,k2=v2" string. It produces a
	// map[string]string ([FieldData.StringMap]).
	TypeKVPairs
	// TypeNameString accepts a string usable as one path segment: letters,
	// digits, '_', '-' and '.', beginning and ending with a letter, digit or
	// '_'. It produces a string ([FieldData.String]).
	TypeNameString
)

// String returns the type's name as used in help text.
func (t FieldType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeInt:
		return "int"
	case TypeInt64:
		return "int64"
	case TypeBool:
		return "bool"
	case TypeDurationSecond:
		return "duration (seconds)"
	case TypeSignedDurationSecond:
		return "signed duration (seconds)"
	case TypeCommaStringSlice:
		return "comma-separated string slice"
	case TypeCommaIntSlice:
		return "comma-separated int slice"
	case TypeStringSlice:
		return "string slice"
	case TypeMap:
		return "map"
	case TypeKVPairs:
		return "key/value pairs"
	case TypeNameString:
		return "name string"
	}
	return "FieldType(" + strconv.Itoa(int(t)) + ")"
}

// valid reports whether t is one of the declared types.
func (t FieldType) valid() bool { return t >= TypeString && t <= TypeNameString }

// FieldSchema describes one field of a [Path].
type FieldSchema struct {
	// Type is the field's type; it must be set.
	Type FieldType
	// Description is shown in help.
	Description string
	// Default is the value the getters return when the field is not
	// supplied. It is given in any form the type accepts and is checked
	// when the backend is built; nil means the type's zero value.
	Default any
	// Required makes a create or update request without the field fail
	// with 400. Required fields have no default.
	Required bool
	// Sensitive keeps the supplied value out of error messages.
	Sensitive bool
}

// nameRe is the TypeNameString syntax.
var nameRe = regexp.MustCompile(`^\w(?:[\w.-]*\w)?$`)

// errShape is a coercion failure: the value had the wrong shape for the
// type. Its text is what the value should have been ("an integer").
type errShape string

func (e errShape) Error() string { return "expected " + string(e) }

// coerce converts raw into t's Go type. A nil raw (JSON null) yields the
// type's zero value.
func (t FieldType) coerce(raw any) (any, error) {
	switch t {
	case TypeString:
		if raw == nil {
			return "", nil
		}
		if _, ok := raw.(string); ok {
			return raw, nil // the same interface value: no new allocation
		}
		s, ok := scalarString(raw)
		if !ok {
			return nil, errShape("a string")
		}
		return s, nil
	case TypeNameString:
		s, ok := scalarString(raw)
		if !ok || !nameRe.MatchString(s) {
			return nil, errShape("a name of letters, digits, '_', '-' and '.'")
		}
		return s, nil
	case TypeInt:
		if raw == nil {
			return 0, nil
		}
		n, ok := toInt64(raw)
		if !ok || n < math.MinInt || n > math.MaxInt {
			return nil, errShape("an integer")
		}
		return int(n), nil
	case TypeInt64:
		if raw == nil {
			return int64(0), nil
		}
		n, ok := toInt64(raw)
		if !ok {
			return nil, errShape("an integer")
		}
		return n, nil
	case TypeBool:
		if raw == nil {
			return false, nil
		}
		b, ok := toBool(raw)
		if !ok {
			return nil, errShape("a boolean")
		}
		return b, nil
	case TypeDurationSecond, TypeSignedDurationSecond:
		if raw == nil {
			return time.Duration(0), nil
		}
		d, ok := toDuration(raw)
		if !ok {
			return nil, errShape(`a duration in seconds or a Go duration string ("1h")`)
		}
		if d < 0 && t == TypeDurationSecond {
			return nil, errShape("a non-negative duration")
		}
		return d, nil
	case TypeCommaStringSlice:
		return toStringSlice(raw, true)
	case TypeStringSlice:
		return toStringSlice(raw, false)
	case TypeCommaIntSlice:
		return toIntSlice(raw)
	case TypeMap:
		switch v := raw.(type) {
		case nil:
			return map[string]any(nil), nil
		case map[string]any:
			return v, nil
		case map[string]string:
			m := make(map[string]any, len(v))
			for k, s := range v {
				m[k] = s
			}
			return m, nil
		}
		return nil, errShape("an object")
	case TypeKVPairs:
		return toKVPairs(raw)
	}
	return nil, fmt.Errorf("framework: unknown field type %d", int(t))
}

// scalarString stringifies a JSON scalar.
func scalarString(raw any) (string, bool) {
	switch v := raw.(type) {
	case string:
		return v, true
	case json.Number:
		return string(v), true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", false
		}
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case float32:
		return scalarString(float64(v))
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case uint:
		return strconv.FormatUint(uint64(v), 10), true
	case uint32:
		return strconv.FormatUint(uint64(v), 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	}
	return "", false
}

// ParseInt applies the TypeInt coercion to a value nested inside a TypeMap
// field (KV's options.cas, for example). A nil value is not an integer.
func ParseInt(raw any) (int, error) {
	if raw == nil {
		return 0, errShape("an integer")
	}
	v, err := TypeInt.coerce(raw)
	if err != nil {
		return 0, err
	}
	return v.(int), nil
}

// ParseDurationSecond applies the TypeDurationSecond coercion to a value
// found inside arbitrary data (a KV v1 secret's "ttl", for example): integer
// seconds or a Go duration string, not negative. A nil value is not a
// duration.
func ParseDurationSecond(raw any) (time.Duration, error) {
	if raw == nil {
		return 0, errShape("a duration")
	}
	v, err := TypeDurationSecond.coerce(raw)
	if err != nil {
		return 0, err
	}
	return v.(time.Duration), nil
}

// toInt64 converts an integral number or numeric string. The empty string is
// 0, as Vault's weak decoding has it (`?version=`).
func toInt64(raw any) (int64, bool) {
	switch v := raw.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case uint:
		return uint64ToInt64(uint64(v))
	case uint32:
		return int64(v), true
	case uint64:
		return uint64ToInt64(v)
	case float64:
		return floatToInt64(v)
	case float32:
		return floatToInt64(float64(v))
	case json.Number:
		return parseIntString(string(v))
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return 0, true
		}
		return parseIntString(s)
	}
	return 0, false
}

func uint64ToInt64(v uint64) (int64, bool) {
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// floatToInt64 accepts only finite integral values in int64 range.
func floatToInt64(f float64) (int64, bool) {
	if f != math.Trunc(f) || math.IsInf(f, 0) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// parseIntString parses a decimal integer, or an integral number written
// with a fraction or exponent ("5.0", "1e3").
func parseIntString(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return floatToInt64(f)
}

func toBool(raw any) (bool, bool) {
	switch v := raw.(type) {
	case bool:
		return v, true
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return false, true
		}
		b, err := strconv.ParseBool(s)
		return b, err == nil
	}
	if n, ok := toInt64(raw); ok && (n == 0 || n == 1) {
		return n == 1, true
	}
	return false, false
}

// maxDurationSeconds keeps seconds*1e9 inside an int64.
const maxDurationSeconds = math.MaxInt64 / int64(time.Second)

func toDuration(raw any) (time.Duration, bool) {
	if s, ok := raw.(string); ok {
		s = strings.TrimSpace(s)
		if s == "" {
			return 0, true
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return secondsToDuration(n)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, false
		}
		return d.Truncate(time.Second), true
	}
	n, ok := toInt64(raw)
	if !ok {
		return 0, false
	}
	return secondsToDuration(n)
}

func secondsToDuration(n int64) (time.Duration, bool) {
	if n > maxDurationSeconds || n < -maxDurationSeconds {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// toStringSlice implements TypeCommaStringSlice (comma true) and
// TypeStringSlice.
func toStringSlice(raw any, comma bool) (any, error) {
	shape := errShape("a list of strings")
	var in []string
	switch v := raw.(type) {
	case nil:
		return []string(nil), nil
	case []string:
		in = v
	case []any:
		in = make([]string, 0, len(v))
		for _, e := range v {
			s, ok := scalarString(e)
			if !ok {
				return nil, shape
			}
			in = append(in, s)
		}
	default:
		s, ok := scalarString(v)
		if !ok {
			return nil, shape
		}
		if !comma {
			if s == "" {
				return []string{}, nil
			}
			return []string{s}, nil
		}
		in = strings.Split(s, ",")
	}
	if !comma {
		return append([]string{}, in...), nil
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// toIntSlice implements TypeCommaIntSlice. String elements, in a list or
// alone, may themselves hold comma-separated numbers.
func toIntSlice(raw any) (any, error) {
	shape := errShape("a list of integers")
	out := []int{}
	addString := func(s string) bool {
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			n, ok := parseIntString(part)
			if !ok || n < math.MinInt || n > math.MaxInt {
				return false
			}
			out = append(out, int(n))
		}
		return true
	}
	add := func(e any) bool {
		if s, ok := e.(string); ok {
			return addString(s)
		}
		n, ok := toInt64(e)
		if !ok || n < math.MinInt || n > math.MaxInt {
			return false
		}
		out = append(out, int(n))
		return true
	}
	switch v := raw.(type) {
	case nil:
		return []int(nil), nil
	case []int:
		return append(out, v...), nil
	case []string:
		for _, e := range v {
			if !addString(e) {
				return nil, shape
			}
		}
	case []any:
		for _, e := range v {
			if !add(e) {
				return nil, shape
			}
		}
	default:
		if !add(v) {
			return nil, shape
		}
	}
	return out, nil
}

// toKVPairs implements TypeKVPairs.
func toKVPairs(raw any) (any, error) {
	shape := errShape(`an object of strings or a list of "key=value" strings`)
	out := map[string]string{}
	addPair := func(p string) bool {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return false
		}
		out[k] = v
		return true
	}
	switch v := raw.(type) {
	case nil:
		return map[string]string(nil), nil
	case map[string]string:
		for k, s := range v {
			out[k] = s
		}
	case map[string]any:
		for k, e := range v {
			if e == nil {
				out[k] = ""
				continue
			}
			s, ok := scalarString(e)
			if !ok {
				return nil, shape
			}
			out[k] = s
		}
	case []string:
		for _, p := range v {
			if !addPair(p) {
				return nil, shape
			}
		}
	case []any:
		for _, e := range v {
			p, ok := e.(string)
			if !ok || !addPair(p) {
				return nil, shape
			}
		}
	case string:
		for _, p := range strings.Split(v, ",") {
			if strings.TrimSpace(p) == "" {
				continue
			}
			if !addPair(p) {
				return nil, shape
			}
		}
	default:
		return nil, shape
	}
	return out, nil
}

// maxShown caps how much of a bad value an error message echoes.
const maxShown = 64

// describe renders a rejected value for an error message.
func describe(raw any) string {
	switch v := raw.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > maxShown {
			cut := maxShown
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			return strconv.Quote(v[:cut]) + "..."
		}
		return strconv.Quote(v)
	case map[string]any, map[string]string:
		return "an object"
	case []any, []string, []int:
		return "a list"
	}
	if s, ok := scalarString(raw); ok {
		if len(s) > maxShown {
			return s[:maxShown] + "..."
		}
		return s
	}
	return fmt.Sprintf("a value of type %T", raw)
}

// fieldError is the 400 for a supplied value of the wrong shape.
func fieldError(name string, schema *FieldSchema, raw any, err error) error {
	var shape errShape
	if !errors.As(err, &shape) {
		return fmt.Errorf("framework: field %q: %w", name, err)
	}
	if schema.Sensitive {
		return badRequest("invalid value for %q: %s", name, shape.Error())
	}
	return badRequest("invalid value for %q: %s, got %s", name, shape.Error(), describe(raw))
}
