package lease

import (
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
	if b, ok = jsonenc.AppendTimeMember(b, `,"expire_time":`, l.ExpireTime); !ok {
		return b, false
	}
	if b, ok = jsonenc.AppendTimeMember(b, `,"last_renewal":`, l.LastRenewal); !ok {
		return b, false
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
		if b, ok = jsonenc.AppendAnyMap(b, l.InternalData); !ok {
			return b, false
		}
	}
	if len(l.Data) > 0 {
		b = append(b, `,"data":`...)
		if b, ok = jsonenc.AppendAnyMap(b, l.Data); !ok {
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
