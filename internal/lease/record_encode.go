package lease

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/vigil-secrets/vigil/internal/jsonenc"
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
	b = jsonenc.AppendString(b, l.ID)
	b = append(b, `,"path":`...)
	b = jsonenc.AppendString(b, l.Path)
	b = append(b, `,"kind":`...)
	b = jsonenc.AppendString(b, string(l.Kind))
	b = append(b, `,"issue_time":`...)
	if b, ok = jsonenc.AppendTime(b, l.IssueTime); !ok {
		return b, false
	}
	if !l.ExpireTime.IsZero() {
		b = append(b, `,"expire_time":`...)
		if b, ok = jsonenc.AppendTime(b, l.ExpireTime); !ok {
			return b, false
		}
	}
	if !l.LastRenewal.IsZero() {
		b = append(b, `,"last_renewal":`...)
		if b, ok = jsonenc.AppendTime(b, l.LastRenewal); !ok {
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
		b = jsonenc.AppendString(b, l.TokenKey)
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
		b = jsonenc.AppendString(b, l.RevokeError)
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
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		switch v := m[k].(type) {
		case string:
			b = jsonenc.AppendString(b, v)
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
