// Package jsonenc appends JSON to byte slices by hand, and decodes request
// bodies, for the hot paths (API requests and responses, stored records,
// audit entries) where encoding/json's reflection costs too much. Its
// output is byte for byte what encoding/json writes; what it decodes is
// what encoding/json's Decoder with UseNumber makes of the same input.
package jsonenc

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes a JSON string carries as they are: one
// table lookup per byte instead of six comparisons. Read-only.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// Word-at-a-time tests over the eight bytes of a uint64.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// load64 reads s[i:i+8] as a little-endian word.
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// hasByte reports whether some byte of x is b.
func hasByte(x uint64, b byte) bool {
	y := x ^ (ones * uint64(b))
	return (y-ones)&^y&highs != 0
}

// plainWord reports whether all eight bytes of x are plain (see plain).
func plainWord(x uint64) bool {
	if x&highs != 0 { // non-ASCII
		return false
	}
	// With every byte below 0x80, a borrow marks a byte below 0x20.
	if (x-ones*0x20)&highs != 0 {
		return false
	}
	return !hasByte(x, '"') && !hasByte(x, '\\') && !hasByte(x, '<') && !hasByte(x, '>') && !hasByte(x, '&')
}

// AppendString appends s as a JSON string exactly as encoding/json does:
// quotes, backslashes and control characters escaped, <, > and & as \u00XX,
// invalid UTF-8 as U+FFFD, and U+2028/U+2029 escaped.
func AppendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight plain bytes at a time: most strings have no byte to
		// escape at all.
		if i+8 <= len(s) && plainWord(load64(s, i)) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// AppendTime appends t as time.Time's MarshalJSON writes it (RFC 3339 with
// nanoseconds, quoted). ok is false, and buf unchanged, for a year
// MarshalJSON refuses (before 0 or after 9999).
func AppendTime(buf []byte, t time.Time) (out []byte, ok bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return buf, false
	}
	buf = append(buf, '"')
	buf = t.AppendFormat(buf, time.RFC3339Nano)
	return append(buf, '"'), true
}

// AppendTimeMember appends member (its comma, quoted name and colon, as
// `,"expire_time":`) and t, as AppendTime does, unless t is zero: what
// encoding/json writes for a time field tagged omitzero.
func AppendTimeMember(buf []byte, member string, t time.Time) (out []byte, ok bool) {
	if t.IsZero() {
		return buf, true
	}
	out, ok = AppendTime(append(buf, member...), t)
	if !ok {
		return buf, false
	}
	return out, true
}

// AppendStringMap appends m as a JSON object with its keys sorted, as
// encoding/json writes a map[string]string (null for a nil map).
func AppendStringMap(buf []byte, m map[string]string) []byte {
	buf, _ = appendObject(buf, m, func(buf []byte, v string) ([]byte, bool) {
		return AppendString(buf, v), true
	})
	return buf
}

// AppendAnyMap appends m as a JSON object with its keys sorted, as
// encoding/json writes a map[string]any (null for a nil map): strings,
// booleans, nil, json.Number and the maps and slices of any that Decode
// makes by hand, other values through encoding/json. ok is false for a
// value encoding/json refuses; buf is then unusable.
func AppendAnyMap(buf []byte, m map[string]any) (out []byte, ok bool) {
	return appendObject(buf, m, appendAny)
}

func appendAny(buf []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		return AppendString(buf, v), true
	case bool:
		return strconv.AppendBool(buf, v), true
	case nil:
		return append(buf, "null"...), true
	case json.Number:
		if v == "" {
			return append(buf, '0'), true
		}
		if !validNumber(string(v)) {
			return buf, false
		}
		return append(buf, v...), true
	case map[string]any:
		return AppendAnyMap(buf, v)
	case []any:
		return AppendArray(buf, v, appendAny)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return buf, false
	}
	return append(buf, raw...), true
}

// validNumber reports whether s is a number in JSON's grammar, the check
// encoding/json makes of a json.Number before writing it.
func validNumber(s string) bool {
	end, ok := scanNumber(s, 0)
	return ok && end == len(s)
}

// AppendArray appends s as a JSON array, each element written by value
// (null for a nil slice, as encoding/json writes one). ok is false once
// value fails; buf is then unusable.
func AppendArray[V any](buf []byte, s []V, value func([]byte, V) ([]byte, bool)) (out []byte, ok bool) {
	if s == nil {
		return append(buf, "null"...), true
	}
	buf = append(buf, '[')
	for i, e := range s {
		if i > 0 {
			buf = append(buf, ',')
		}
		if buf, ok = value(buf, e); !ok {
			return buf, false
		}
	}
	return append(buf, ']'), true
}

// AppendStrings appends s as encoding/json writes a []string.
func AppendStrings(buf []byte, s []string) []byte {
	buf, _ = AppendArray(buf, s, func(buf []byte, v string) ([]byte, bool) {
		return AppendString(buf, v), true
	})
	return buf
}

// appendObject appends m as a JSON object with its keys sorted, each value
// written by value (null for a nil map). ok is false once value fails.
func appendObject[V any](buf []byte, m map[string]V, value func([]byte, V) ([]byte, bool)) (out []byte, ok bool) {
	if m == nil {
		return append(buf, "null"...), true
	}
	var small [8]string
	buf = append(buf, '{')
	for i, k := range sortedKeys(small[:0], m) {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = AppendString(buf, k)
		buf = append(buf, ':')
		if buf, ok = value(buf, m[k]); !ok {
			return buf, false
		}
	}
	return append(buf, '}'), true
}

// sortedKeys appends m's keys to keys, sorted (a small map's fit in a
// caller's array, without allocating).
func sortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
