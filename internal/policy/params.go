package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parameter values are never copied into a reason or an error: they may be
// secrets. Only parameter names are.

// glob is one listed parameter value: exact, or with a leading and/or
// trailing '*' matching any text there. A lone "*" matches any value.
type glob struct {
	s  string
	op globOp
}

type globOp uint8

const (
	globExact    globOp = iota
	globPrefix          // "abc*"
	globSuffix          // "*abc"
	globContains        // "*abc*", and "*" (contains "")
)

func newGlob(v string) glob {
	lead := strings.HasPrefix(v, "*")
	trail := len(v) > 1 && strings.HasSuffix(v, "*")
	switch {
	case v == "*":
		return glob{op: globContains}
	case lead && trail:
		return glob{s: v[1 : len(v)-1], op: globContains}
	case lead:
		return glob{s: v[1:], op: globSuffix}
	case trail:
		return glob{s: v[:len(v)-1], op: globPrefix}
	}
	return glob{s: v}
}

func (g glob) match(v string) bool {
	switch g.op {
	case globPrefix:
		return strings.HasPrefix(v, g.s)
	case globSuffix:
		return strings.HasSuffix(v, g.s)
	case globContains:
		return strings.Contains(v, g.s)
	}
	return v == g.s
}

func anyMatch(gs []glob, v string) bool {
	for _, g := range gs {
		if g.match(v) {
			return true
		}
	}
	return false
}

// checkParams applies the rule's parameter constraints to data and returns
// a denial reason, or "" when they hold. Names compare case-insensitively.
func (r *rule) checkParams(data map[string]any) string {
	for _, name := range r.required {
		if !hasParam(data, name) {
			return fmt.Sprintf("required parameter %q is missing", name)
		}
	}
	if len(data) == 0 {
		return ""
	}
	if r.deniedAll {
		return reasonAllDenied
	}
	if len(r.denied) > 0 {
		for k, v := range data {
			if gs, ok := r.denied[strings.ToLower(k)]; ok && deniedValue(v, gs) {
				return fmt.Sprintf("parameter %q is denied", k)
			}
		}
	}
	if len(r.allowed) == 0 || r.allowedAny && len(r.allowed) == 1 {
		return ""
	}
	for k, v := range data {
		gs, ok := r.allowed[strings.ToLower(k)]
		if !ok {
			if r.allowedAny {
				continue
			}
			return fmt.Sprintf("parameter %q is not allowed", k)
		}
		if !allowedValue(v, gs) {
			return fmt.Sprintf("parameter %q has a value that is not allowed", k)
		}
	}
	return ""
}

func hasParam(data map[string]any, name string) bool {
	if _, ok := data[name]; ok {
		return true
	}
	for k := range data {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// allowedValue reports whether v is allowed by gs (an empty gs allows any
// value). A scalar must match a listed value; a list must have every
// element match; a string that does not match whole is read as a
// comma-separated list (fields often accept "a,b" for ["a","b"]) whose
// every trimmed element must match. A value with no elements at all (""
// or []) must match as itself, so it passes only a list that admits "".
func allowedValue(v any, gs []glob) bool {
	if len(gs) == 0 {
		return true
	}
	switch x := v.(type) {
	case string:
		if anyMatch(gs, x) {
			return true
		}
		if strings.TrimSpace(x) == "" {
			return false
		}
		for el := range strings.SplitSeq(x, ",") {
			if !anyMatch(gs, strings.TrimSpace(el)) {
				return false
			}
		}
		return true
	case []any:
		if len(x) == 0 {
			return anyMatch(gs, "")
		}
		for _, el := range x {
			s, ok := scalarText(el)
			if !ok || !anyMatch(gs, s) {
				return false
			}
		}
		return true
	case []string:
		if len(x) == 0 {
			return anyMatch(gs, "")
		}
		for _, el := range x {
			if !anyMatch(gs, el) {
				return false
			}
		}
		return true
	}
	s, ok := scalarText(v)
	return ok && anyMatch(gs, s)
}

// deniedValue reports whether v is denied by gs (an empty gs denies any
// value). A scalar is denied when it matches; a list, or a string read as
// a comma-separated list, when any element matches.
func deniedValue(v any, gs []glob) bool {
	if len(gs) == 0 {
		return true
	}
	switch x := v.(type) {
	case string:
		if anyMatch(gs, x) {
			return true
		}
		for el := range strings.SplitSeq(x, ",") {
			if anyMatch(gs, strings.TrimSpace(el)) {
				return true
			}
		}
		return false
	case []any:
		for _, el := range x {
			if s, ok := scalarText(el); ok && anyMatch(gs, s) {
				return true
			}
		}
		return false
	case []string:
		for _, el := range x {
			if anyMatch(gs, el) {
				return true
			}
		}
		return false
	}
	s, ok := scalarText(v)
	return ok && anyMatch(gs, s)
}

// scalarText returns a request value in the text form policy values are
// kept in (see scalarValue): numbers in shortest decimal form, so that 5,
// 5.0 and "5" as a JSON number compare equal. Objects, lists and null are
// not scalars.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return strconv.FormatInt(i, 10), true
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil && !math.IsInf(f, 0) {
			return formatFloat(f), true
		}
		return string(x), true
	case float64:
		return formatFloat(x), true
	case float32:
		return formatFloat(float64(x)), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	}
	return "", false
}
