package lease

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// appendRecord appends l's record ({"v":1, and the fields of [Lease]}) as
// encoding/json would marshal record{V: recordVersion, Lease: *l}, byte
// for byte, without reflection: every login and token creation stores a
// lease. It reports false when l holds something it leaves to
// encoding/json (a time outside years 0–9999, a value json refuses); the
// caller then marshals the record with encoding/json.
func appendRecord(b []byte, l *Lease) ([]byte, bool) {
	var ok bool
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, recordVersion, 10)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, l.ID)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, l.Path)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(l.Kind))
	b = append(b, `,"issue_time":`...)
	if b, ok = appendJSONTime(b, l.IssueTime); !ok {
		return b, false
	}
	if !l.ExpireTime.IsZero() {
		b = append(b, `,"expire_time":`...)
		if b, ok = appendJSONTime(b, l.ExpireTime); !ok {
			return b, false
		}
	}
	if !l.LastRenewal.IsZero() {
		b = append(b, `,"last_renewal":`...)
		if b, ok = appendJSONTime(b, l.LastRenewal); !ok {
			return b, false
		}
	}
	if l.Renewable {
		b = append(b, `,"renewable":true`...)
	}
	if l.MaxTTL != 0 {
		b = append(b, `,"max_ttl":`...)
		b = strconv.AppendInt(b, int64(l.MaxTTL), 10)
	}
	if l.TokenKey != "" {
		b = append(b, `,"token_key":`...)
		b = appendJSONString(b, l.TokenKey)
	}
	if len(l.InternalData) > 0 {
		b = append(b, `,"internal_data":`...)
		if b, ok = appendAnyMap(b, l.InternalData); !ok {
			return b, false
		}
	}
	if len(l.Data) > 0 {
		b = append(b, `,"data":`...)
		if b, ok = appendAnyMap(b, l.Data); !ok {
			return b, false
		}
	}
	if l.Irrevocable {
		b = append(b, `,"irrevocable":true`...)
	}
	if l.RevokeAttempts != 0 {
		b = append(b, `,"revoke_attempts":`...)
		b = strconv.AppendInt(b, int64(l.RevokeAttempts), 10)
	}
	if l.RevokeError != "" {
		b = append(b, `,"revoke_error":`...)
		b = appendJSONString(b, l.RevokeError)
	}
	return append(b, '}'), true
}

// appendAnyMap appends m as a JSON object with sorted keys, as
// encoding/json does: strings, booleans and nil by hand, other values
// through encoding/json. It reports false for a value json refuses.
func appendAnyMap(b []byte, m map[string]any) ([]byte, bool) {
	var buf [8]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		switch v := m[k].(type) {
		case string:
			b = appendJSONString(b, v)
		case bool:
			b = strconv.AppendBool(b, v)
		case nil:
			b = append(b, "null"...)
		default:
			raw, err := json.Marshal(v)
			if err != nil {
				return b, false
			}
			b = append(b, raw...)
		}
	}
	return append(b, '}'), true
}

// appendJSONTime appends t as time.Time's MarshalJSON does; false for a
// year it refuses.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// appendJSONString appends s quoted as encoding/json does. Printable ASCII
// other than the characters it escapes ('"', '\\', and '<', '>', '&' for
// HTML) is copied; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, _ := json.Marshal(s) // a string always marshals
			return append(b, raw...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
