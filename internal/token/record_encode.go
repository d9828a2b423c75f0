package token

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-secrets/vigil/internal/jsonenc"
)

// appendRecord appends r as encoding/json would marshal it, byte for byte
// (the stored format does not change, and every reader of it keeps
// working), without reflection: a login's token entry is encoded on every
// login. It reports false when r holds something it leaves to
// encoding/json (a time outside years 0–9999, which json refuses); the
// caller then marshals r with encoding/json.
func appendRecord(b []byte, r *record) ([]byte, bool) {
	b = append(b, '{')
	if r.V != 0 {
		b = append(b, `"v":`...)
		b = strconv.AppendInt(b, int64(r.V), 10)
		b = append(b, ',')
	}
	if r.Accessor != "" {
		b = append(b, `"accessor":`...)
		b = jsonenc.AppendString(b, r.Accessor)
		b = append(b, ',')
	}
	if len(r.SealedAccessor) > 0 {
		b = append(b, `"sealed_accessor":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.SealedAccessor)
		b = append(b, `",`...)
	}
	b = append(b, `"policies":`...)
	if r.Policies == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range r.Policies {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, p)
		}
		b = append(b, ']')
	}
	b = append(b, `,"path":`...)
	b = jsonenc.AppendString(b, r.Path)
	b = append(b, `,"display_name":`...)
	b = jsonenc.AppendString(b, r.DisplayName)
	if len(r.Meta) > 0 {
		b = append(b, `,"meta":`...)
		b = appendStringMap(b, r.Meta)
	}
	var ok bool
	b = append(b, `,"creation_time":`...)
	if b, ok = jsonenc.AppendTime(b, r.CreationTime); !ok {
		return b, false
	}
	b = append(b, `,"ttl":`...)
	b = strconv.AppendInt(b, int64(r.TTL), 10)
	b = append(b, `,"type":`...)
	b = jsonenc.AppendString(b, r.Type)
	if r.Parent != "" {
		b = append(b, `,"parent":`...)
		b = jsonenc.AppendString(b, r.Parent)
	}
	if r.NumUses != 0 {
		b = append(b, `,"num_uses":`...)
		b = strconv.AppendInt(b, int64(r.NumUses), 10)
	}
	b = appendDuration(b, `,"explicit_max_ttl":`, r.ExplicitMaxTTL)
	b = appendDuration(b, `,"max_ttl":`, r.MaxTTL)
	b = appendDuration(b, `,"period":`, r.Period)
	if r.Renewable {
		b = append(b, `,"renewable":true`...)
	}
	if !r.ExpireTime.IsZero() {
		b = append(b, `,"expire_time":`...)
		if b, ok = jsonenc.AppendTime(b, r.ExpireTime); !ok {
			return b, false
		}
	}
	if !r.LastRenewal.IsZero() {
		b = append(b, `,"last_renewal":`...)
		if b, ok = jsonenc.AppendTime(b, r.LastRenewal); !ok {
			return b, false
		}
	}
	if r.Role != "" {
		b = append(b, `,"role":`...)
		b = jsonenc.AppendString(b, r.Role)
	}
	if len(r.BoundCIDRs) > 0 {
		b = append(b, `,"bound_cidrs":[`...)
		for i, p := range r.BoundCIDRs {
			if i > 0 {
				b = append(b, ',')
			}
			// Prefix.MarshalText, as encoding/json calls it: "" for the
			// zero prefix, else its text (digits, dots, colons, '/',
			// letters), which needs no escaping.
			b = append(b, '"')
			b = p.AppendTo(b)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if r.EntityID != "" {
		b = append(b, `,"entity_id":`...)
		b = jsonenc.AppendString(b, r.EntityID)
	}
	if r.MountPath != "" {
		b = append(b, `,"mount_path":`...)
		b = jsonenc.AppendString(b, r.MountPath)
	}
	if len(r.InternalData) > 0 {
		b = append(b, `,"internal_data":`...)
		if b, ok = appendAnyMap(b, r.InternalData); !ok {
			return b, false
		}
	}
	if r.Alias != nil {
		b = append(b, `,"alias":{"name":`...)
		b = jsonenc.AppendString(b, r.Alias.Name)
		if len(r.Alias.Metadata) > 0 {
			b = append(b, `,"metadata":`...)
			b = appendStringMap(b, r.Alias.Metadata)
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

func appendDuration(b []byte, name string, d time.Duration) []byte {
	if d == 0 {
		return b
	}
	b = append(b, name...)
	return strconv.AppendInt(b, int64(d), 10)
}

// appendStringMap appends m as a JSON object with sorted keys, as
// encoding/json does.
func appendStringMap(b []byte, m map[string]string) []byte {
	var buf [8]string
	b = append(b, '{')
	for i, k := range sortedKeys(m, buf[:0]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		b = jsonenc.AppendString(b, m[k])
	}
	return append(b, '}')
}

// appendAnyMap appends m as a JSON object with sorted keys, as
// encoding/json does: strings, booleans and nil by hand, other values
// through encoding/json. It reports false for a value json refuses.
func appendAnyMap(b []byte, m map[string]any) ([]byte, bool) {
	var buf [8]string
	b = append(b, '{')
	for i, k := range sortedKeys(m, buf[:0]) {
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

// sortedKeys returns m's keys, sorted, appended to buf (a small map's
// fit in a caller's array, without allocating).
func sortedKeys[V any](m map[string]V, buf []string) []string {
	for k := range m {
		buf = append(buf, k)
	}
	slices.Sort(buf)
	return buf
}
