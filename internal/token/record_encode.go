package token

import (
	"encoding/base64"
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
	b = jsonenc.AppendStrings(b, r.Policies)
	b = append(b, `,"path":`...)
	b = jsonenc.AppendString(b, r.Path)
	b = append(b, `,"display_name":`...)
	b = jsonenc.AppendString(b, r.DisplayName)
	if len(r.Meta) > 0 {
		b = append(b, `,"meta":`...)
		b = jsonenc.AppendStringMap(b, r.Meta)
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
	if b, ok = jsonenc.AppendTimeMember(b, `,"expire_time":`, r.ExpireTime); !ok {
		return b, false
	}
	if b, ok = jsonenc.AppendTimeMember(b, `,"last_renewal":`, r.LastRenewal); !ok {
		return b, false
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
		if b, ok = jsonenc.AppendAnyMap(b, r.InternalData); !ok {
			return b, false
		}
	}
	if r.Alias != nil {
		b = append(b, `,"alias":{"name":`...)
		b = jsonenc.AppendString(b, r.Alias.Name)
		if len(r.Alias.Metadata) > 0 {
			b = append(b, `,"metadata":`...)
			b = jsonenc.AppendStringMap(b, r.Alias.Metadata)
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
