package jwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
)

// maxNumericDate bounds the time claims' seconds (about the year 33658),
// far enough for any real token.
const maxNumericDate = 1e12

// claims are a token's decoded payload (numbers as json.Number).
type claims map[string]any

func parseClaims(payload []byte) (claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var c claims
	if err := dec.Decode(&c); err != nil || c == nil {
		return nil, errors.New("the token's payload is not a JSON object")
	}
	return c, nil
}

// lookup finds a claim by name, or by JSON pointer ("/a/b") when name
// starts with '/'.
func (c claims) lookup(name string) (any, bool) {
	if !strings.HasPrefix(name, "/") {
		v, ok := c[name]
		return v, ok
	}
	var cur any = map[string]any(c)
	for _, tok := range strings.Split(name[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch t := cur.(type) {
		case map[string]any:
			v, ok := t[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(t) {
				return nil, false
			}
			cur = t[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// time reads a NumericDate claim.
func (c claims) time(name string) (time.Time, bool, error) {
	v, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, true, fmt.Errorf("claim %q is not a number", name)
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, true, fmt.Errorf("claim %q is not a number", name)
	}
	// Clamp before converting: a float beyond int64 converts to an
	// arbitrary value, and an nbf of 1e300 must stay in the future.
	f = min(max(f, -maxNumericDate), maxNumericDate)
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true, nil
}

// audiences reads aud: a string or a list of strings.
func (c claims) audiences() ([]string, error) {
	switch t := c["aud"].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{t}, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, a := range t {
			s, ok := a.(string)
			if !ok {
				return nil, errors.New("aud claim holds a non-string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("aud claim is neither a string nor a list")
}

// allowedValues reads a bound_claims value: a string or a list of strings
// (a comma-separated string is one value, as in Vault).
func allowedValues(v any) ([]string, error) {
	switch t := v.(type) {
	case string:
		return []string{t}, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, errors.New("values must be strings")
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return t, nil
	case json.Number, bool:
		return []string{fmt.Sprint(t)}, nil
	}
	return nil, errors.New("want a string or a list of strings")
}

// scalarString renders a claim value compared against bound claims.
func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

// matchBound checks every bound claim: each must exist and equal (or,
// with glob, match) one of its allowed values; a list claim matches when
// one of its elements does.
func matchBound(c claims, bound map[string]any, glob bool) error {
	for name, want := range bound {
		allowed, err := allowedValues(want)
		if err != nil {
			return fmt.Errorf("bound claim %q: %w", name, err)
		}
		v, ok := c.lookup(name)
		if !ok {
			return fmt.Errorf("claim %q is missing", name)
		}
		got := []any{v}
		if list, isList := v.([]any); isList {
			got = list
		}
		if !anyMatches(got, allowed, glob) {
			return fmt.Errorf("claim %q does not match any associated bound claim values", name)
		}
	}
	return nil
}

func anyMatches(got []any, allowed []string, glob bool) bool {
	for _, g := range got {
		s, ok := scalarString(g)
		if !ok {
			continue
		}
		for _, a := range allowed {
			if a == s {
				return true
			}
			if glob && framework.GlobMatch(a, s) {
				return true
			}
		}
	}
	return false
}
