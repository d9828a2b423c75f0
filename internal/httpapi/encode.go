package httpapi

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/vigil-secrets/vigil/internal/jsonenc"
)

// The response encoder: Vault's envelope written without reflection, for
// the read path that dominates traffic. Values of types it does not know go
// through encoding/json, so the output is always what json.Marshal would
// produce (keys sorted, HTML-safe escaping) except for json.RawMessage,
// which is copied as it is: engines hand over raw JSON only for documents
// they stored themselves, behind the barrier.

func appendEnvelope(buf []byte, env *envelope) ([]byte, error) {
	buf = append(buf, `{"request_id":`...)
	buf = jsonenc.AppendString(buf, env.RequestID)
	buf = append(buf, `,"lease_id":`...)
	buf = jsonenc.AppendString(buf, env.LeaseID)
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
		buf = jsonenc.AppendString(buf, env.MountType)
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
		buf = jsonenc.AppendString(buf, k)
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
		buf = jsonenc.AppendString(buf, s)
	}
	return append(buf, ']')
}

func appendValue(buf []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case string:
		return jsonenc.AppendString(buf, t), nil
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
