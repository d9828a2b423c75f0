package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"slices"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/auditlog"
)

// hashPrefix starts every HMAC'd value.
const hashPrefix = "hmac-sha256:"

// formatOptions are the options every device shares.
type formatOptions struct {
	prefix       string
	hmacAccessor bool
	logRaw       bool
	elideLists   bool
}

// hasher HMACs values with a device's salt.
type hasher struct {
	pool sync.Pool // of hash.Hash
}

func newHasher(salt []byte) *hasher {
	h := &hasher{}
	key := slices.Clone(salt)
	h.pool.New = func() any { return hmac.New(sha256.New, key) }
	return h
}

// hash returns "hmac-sha256:<hex>" of v.
func (h *hasher) hash(v string) string {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(v))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	h.pool.Put(m)
	out := make([]byte, len(hashPrefix)+2*len(sum))
	copy(out, hashPrefix)
	hex.Encode(out[len(hashPrefix):], sum[:])
	return string(out)
}

// formatter turns inputs into entries for one device.
type formatter struct {
	opts formatOptions
	h    *hasher
}

// format returns the JSON object of an entry (without seq and chain).
func (f *formatter) format(typ string, in *Input) ([]byte, error) {
	e := auditlog.Entry{
		Time: in.Time.UTC().Format(time.RFC3339Nano),
		Type: typ,
		Auth: f.auth(in.Auth, in.Request),
	}
	if in.Err != nil {
		e.Error = in.Err.Error()
	}
	if r := in.Request; r != nil {
		e.Request = &auditlog.Request{
			ID:                       r.ID,
			Operation:                r.Operation,
			MountPoint:               r.MountPoint,
			MountType:                r.MountType,
			MountAccessor:            r.MountAccessor,
			MountClass:               r.MountClass,
			ClientToken:              f.secret(r.ClientToken.Reveal()),
			ClientTokenAccessor:      f.accessor(r.ClientTokenAccessor),
			Namespace:                &auditlog.Namespace{ID: "root"},
			Path:                     r.Path,
			Data:                     f.data(r.Data, r.NonHMACKeys, false),
			RemoteAddress:            r.RemoteAddr,
			RemotePort:               r.RemotePort,
			ClientCertificateSubject: r.ClientCertSubject,
		}
	}
	if typ == auditlog.TypeResponse {
		resp := &auditlog.Response{}
		if r := in.Request; r != nil {
			resp.MountPoint, resp.MountType, resp.MountAccessor, resp.MountClass = r.MountPoint, r.MountType, r.MountAccessor, r.MountClass
		}
		if out := in.Response; out != nil {
			list := in.Request != nil && in.Request.Operation == "list"
			resp.Data = f.data(out.Data, out.NonHMACKeys, list)
			resp.Warnings = out.Warnings
			if out.LeaseID != "" {
				resp.Secret = &auditlog.Secret{LeaseID: out.LeaseID}
			}
			if a := out.Auth; a != nil {
				resp.Auth = f.auth(a, nil)
				resp.Auth.ClientToken = f.secret(a.ClientToken.Reveal())
			}
		}
		e.Response = resp
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func (f *formatter) auth(a *Auth, r *Request) *auditlog.Auth {
	if a == nil {
		return nil
	}
	out := &auditlog.Auth{
		Accessor:      f.accessor(a.Accessor),
		DisplayName:   a.DisplayName,
		Policies:      a.Policies,
		TokenPolicies: a.Policies,
		Metadata:      a.Metadata,
		EntityID:      a.EntityID,
		TokenType:     a.TokenType,
		TokenTTL:      int64(a.TTL / time.Second),
		RemainingUses: a.RemainingUses,
	}
	if r != nil {
		out.ClientToken = f.secret(r.ClientToken.Reveal())
	}
	if !a.IssueTime.IsZero() {
		out.TokenIssueTime = a.IssueTime.UTC().Format(time.RFC3339)
	}
	if a.Allowed != nil {
		out.PolicyResults = &auditlog.PolicyResults{Allowed: *a.Allowed}
	}
	return out
}

// secret hashes a value that is always secret (tokens).
func (f *formatter) secret(v string) string {
	if v == "" || f.opts.logRaw {
		return v
	}
	return f.h.hash(v)
}

func (f *formatter) accessor(v string) string {
	if !f.opts.hmacAccessor {
		return v
	}
	return f.secret(v)
}

// data returns a copy of a request's or response's data with every string
// hashed, except under the keys logged in clear. For a list, the keys are
// replaced by their count when the device elides lists.
func (f *formatter) data(d map[string]any, clearKeys []string, list bool) map[string]any {
	if len(d) == 0 {
		return nil
	}
	out := make(map[string]any, len(d))
	for k, v := range d {
		switch {
		case list && f.opts.elideLists && (k == "keys" || k == "key_info"):
			out[k] = count(v)
		case f.opts.logRaw || slices.Contains(clearKeys, k):
			out[k] = plain(v)
		default:
			out[k] = f.walk(v)
		}
	}
	return out
}

// walk hashes every string in v, recursively (map keys stay).
func (f *formatter) walk(v any) any {
	switch t := v.(type) {
	case nil, bool, json.Number, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return t
	case string:
		return f.h.hash(t)
	case []byte:
		return f.h.hash(base64.StdEncoding.EncodeToString(t))
	case time.Time:
		return f.h.hash(t.Format(time.RFC3339Nano))
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = f.walk(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = f.walk(x)
		}
		return out
	case []string:
		out := make([]string, len(t))
		for i, x := range t {
			out[i] = f.h.hash(x)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(t))
		for k, x := range t {
			out[k] = f.h.hash(x)
		}
		return out
	default:
		// json.RawMessage, structs and typed collections: hash what the
		// client sees, the value as JSON.
		return f.walk(generic(t))
	}
}

// plain returns v as the client sees it, for values logged in clear.
func plain(v any) any {
	if raw, ok := v.(json.RawMessage); ok {
		return generic(raw)
	}
	return v
}

// generic converts v to the maps, slices and scalars of its JSON form.
func generic(v any) any {
	raw, ok := v.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return "unloggable value"
		}
		raw = b
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return "unloggable value"
	}
	return out
}

// count is the number of entries of a list's keys or key_info.
func count(v any) any {
	switch t := generic(v).(type) {
	case []any:
		return len(t)
	case map[string]any:
		return len(t)
	}
	return v
}
