package httpapi

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The response encoder: Vault's envelope written without reflection, for
// the read path that dominates traffic. Values of types it does not know go
// through encoding/json, so the output is always what json.Marshal would
// produce (keys sorted, HTML-safe escaping) except for json.RawMessage,
// which is copied as it is: engines hand over raw JSON only for documents
// they stored themselves, behind the barrier.

func appendEnvelope(buf []byte, env *envelope) ([]byte, error) {
	buf = append(buf, `{"request_id":`...)
	buf = appendString(buf, env.RequestID)
	buf = append(buf, `,"lease_id":`...)
	buf = appendString(buf, env.LeaseID)
	buf = append(buf, `,"renewable":`...)
	buf = strconv.AppendBool(buf, env.Renewable)
	buf = append(buf, `,"lease_duration":`...)
	buf = strconv.AppendInt(buf, env.LeaseDuration, 10)
	buf = append(buf, `,"data":`...)
	var err error
	if env.Data == nil {
		buf = append(buf, "null"...)
	} else if buf, err = appendMap(buf, env.Data); err != nil {
		return nil, err
	}
	buf = append(buf, `,"wrap_info":null,"warnings":`...)
	if env.Warnings == nil {
		buf = append(buf, "null"...)
	} else {
		buf = appendStrings(buf, env.Warnings)
	}
	buf = append(buf, `,"auth":`...)
	if env.Auth == nil {
		buf = append(buf, "null"...)
	} else if buf, err = appendMap(buf, env.Auth); err != nil {
		return nil, err
	}
	if env.MountType != "" {
		buf = append(buf, `,"mount_type":`...)
		buf = appendString(buf, env.MountType)
	}
	return append(buf, '}'), nil
}

func appendMap(buf []byte, m map[string]any) ([]byte, error) {
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, k)
		buf = append(buf, ':')
		if buf, err = appendValue(buf, m[k]); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func appendStrings(buf []byte, ss []string) []byte {
	buf = append(buf, '[')
	for i, s := range ss {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, s)
	}
	return append(buf, ']')
}

func appendValue(buf []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case string:
		return appendString(buf, t), nil
	case bool:
		return strconv.AppendBool(buf, t), nil
	case int:
		return strconv.AppendInt(buf, int64(t), 10), nil
	case int64:
		return strconv.AppendInt(buf, t, 10), nil
	case int32:
		return strconv.AppendInt(buf, int64(t), 10), nil
	case uint32:
		return strconv.AppendUint(buf, uint64(t), 10), nil
	case uint64:
		return strconv.AppendUint(buf, t, 10), nil
	case json.RawMessage:
		if len(t) == 0 {
			return append(buf, "null"...), nil
		}
		return append(buf, t...), nil
	case map[string]any:
		if t == nil {
			return append(buf, "null"...), nil
		}
		return appendMap(buf, t)
	case []string:
		if t == nil {
			return append(buf, "null"...), nil
		}
		return appendStrings(buf, t), nil
	case []any:
		if t == nil {
			return append(buf, "null"...), nil
		}
		buf = append(buf, '[')
		var err error
		for i, e := range t {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendValue(buf, e); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(buf, raw...), nil
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string exactly as encoding/json does:
// quotes, backslashes and control characters escaped, <, > and & as \u00XX,
// invalid UTF-8 as U+FFFD, and U+2028/U+2029 escaped.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
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
