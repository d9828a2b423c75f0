package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-secrets/vigil/internal/auditlog"
	"github.com/vigil-secrets/vigil/internal/jsonenc"
)

// The entry encoder: auditlog.Entry written by hand, hashing values as it
// goes, because every request is encoded twice (request and response) and
// reflection would cost more than the request itself. Its output is what
// encoding/json writes for the same auditlog.Entry (encode_test.go checks
// it), except that json.RawMessage values are compacted, not re-escaped.

// appendEntry appends the JSON object of an entry (without seq and chain).
//
// A request's two entries share their "auth" and "request" members: the
// request entry keeps them (in in.written, for the first device that
// formats it) and the response entry copies them instead of formatting
// and hashing them again. The Input they describe does not change in
// between: the pipeline sets only Time, Err and Response for the second
// entry.
func (f *formatter) appendEntry(b []byte, typ string, in *Input) []byte {
	b = append(b, `{"time":`...)
	b = append(b, '"')
	b = in.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":`...)
	b = jsonenc.AppendString(b, typ)
	response := typ == auditlog.TypeResponse
	if w := &in.written; response && w.by == f && w.buf != nil {
		b = append(b, *w.buf...)
		f.dropWritten(in)
	} else {
		start := len(b)
		b = f.appendCaller(b, in)
		if !response && in.Request != nil && (w.by == nil || w.by == f) {
			f.keepWritten(in, b[start:])
		}
	}
	if response {
		b = append(b, `,"response":`...)
		b = f.appendResponse(b, in)
	}
	if in.Err != nil {
		b = append(b, `,"error":`...)
		b = jsonenc.AppendString(b, in.Err.Error())
	}
	return append(b, '}')
}

// appendCaller appends the "auth" and "request" members of an entry.
func (f *formatter) appendCaller(b []byte, in *Input) []byte {
	tok, acc := f.caller(in)
	if in.Auth != nil {
		b = append(b, `,"auth":`...)
		b = f.appendAuth(b, in.Auth, tok, acc)
	}
	if r := in.Request; r != nil {
		b = append(b, `,"request":`...)
		b = f.appendRequest(b, r, tok, acc)
	}
	return b
}

// maxKeptMembers bounds the buffer of kept members returned to the pool.
const maxKeptMembers = 16 << 10

// keepWritten keeps the members p of in's request entry for its response
// entry.
func (f *formatter) keepWritten(in *Input, p []byte) {
	w := &in.written
	if w.buf == nil {
		w.buf = f.kept.Get().(*[]byte)
	}
	w.by = f
	*w.buf = append((*w.buf)[:0], p...)
}

// dropWritten gives the kept members' buffer back, cleared (with
// log_raw it held values in clear).
func (f *formatter) dropWritten(in *Input) {
	bp := in.written.buf
	in.written.buf = nil
	clear(*bp)
	if cap(*bp) <= maxKeptMembers {
		*bp = (*bp)[:0]
		f.kept.Put(bp)
	}
}

// caller returns the caller's token and accessor as this device logs
// them, hashing each once per input, and not at all for a caller the
// device remembers (see callers).
func (f *formatter) caller(in *Input) (token, accessor *loggedValue) {
	h := &in.hashed
	if h.by != f.h {
		h.by, h.token, h.accessor = f.h, loggedValue{}, loggedValue{}
		tok, acc := "", ""
		if in.Request != nil {
			tok, acc = in.Request.ClientToken.Reveal(), in.Request.ClientTokenAccessor
		}
		if in.Auth != nil {
			acc = in.Auth.Accessor
		}
		// Only a token the store knew has an accessor; with log_raw
		// nothing is hashed.
		memo := tok != "" && acc != "" && !f.opts.logRaw
		if !memo || !f.callers.lookup(tok, acc, &h.token, &h.accessor) {
			f.secret(&h.token, tok)
			f.accessor(&h.accessor, acc)
			if memo {
				f.callers.remember(tok, acc, &h.token, &h.accessor)
			}
		}
	}
	return &h.token, &h.accessor
}

// fields writes the members of one object, leaving out empty ones.
type fields struct {
	b     []byte
	first bool
}

func object(b []byte) *fields { return &fields{b: append(b, '{'), first: true} }

func (o *fields) key(k string) {
	if !o.first {
		o.b = append(o.b, ',')
	}
	o.first = false
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *fields) str(k, v string) {
	if v != "" {
		o.key(k)
		o.b = jsonenc.AppendString(o.b, v)
	}
}

// logged writes v unless it is empty.
func (o *fields) logged(k string, v *loggedValue) {
	if v.hashed || v.clear != "" {
		o.key(k)
		o.b = v.append(o.b)
	}
}

func (o *fields) int(k string, v int64) {
	if v != 0 {
		o.key(k)
		o.b = strconv.AppendInt(o.b, v, 10)
	}
}

func (o *fields) strs(k string, v []string) {
	if len(v) > 0 {
		o.key(k)
		o.b = appendStrings(o.b, v)
	}
}

func (o *fields) done() []byte { return append(o.b, '}') }

func appendStrings(b []byte, v []string) []byte {
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, s)
	}
	return append(b, ']')
}

// appendAuth writes a token's description; clientToken and accessor are
// already as logged.
func (f *formatter) appendAuth(b []byte, a *Auth, clientToken, accessor *loggedValue) []byte {
	o := object(b)
	o.logged("client_token", clientToken)
	o.logged("accessor", accessor)
	o.str("display_name", a.DisplayName)
	o.strs("policies", a.Policies)
	o.strs("token_policies", a.Policies)
	if len(a.Metadata) > 0 {
		o.key("metadata")
		o.b = appendStringMap(o.b, a.Metadata)
	}
	o.str("entity_id", a.EntityID)
	o.str("token_type", a.TokenType)
	o.int("token_ttl", int64(a.TTL/time.Second))
	if !a.IssueTime.IsZero() {
		o.key("token_issue_time")
		o.b = append(o.b, '"')
		o.b = a.IssueTime.UTC().AppendFormat(o.b, time.RFC3339)
		o.b = append(o.b, '"')
	}
	o.int("remaining_uses", int64(a.RemainingUses))
	if a.Allowed != nil {
		o.key("policy_results")
		o.b = append(o.b, `{"allowed":`...)
		o.b = strconv.AppendBool(o.b, *a.Allowed)
		o.b = append(o.b, '}')
	}
	return o.done()
}

func appendStringMap(b []byte, m map[string]string) []byte {
	var small [8]string
	keys := sortedKeys(small[:0], m)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		b = jsonenc.AppendString(b, m[k])
	}
	return append(b, '}')
}

// sortedKeys appends m's keys to keys, sorted. Callers pass a small
// array of their own, so that most maps need no allocation.
func sortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (f *formatter) appendRequest(b []byte, r *Request, clientToken, accessor *loggedValue) []byte {
	o := object(b)
	o.str("id", r.ID)
	o.str("operation", r.Operation)
	f.appendMount(o, r)
	o.logged("client_token", clientToken)
	o.logged("client_token_accessor", accessor)
	o.key("namespace")
	o.b = append(o.b, `{"id":"root"}`...)
	o.str("path", r.Path)
	if len(r.Data) > 0 {
		o.key("data")
		o.b = f.appendData(o.b, r.Data, r.NonHMACKeys, false)
	}
	o.str("remote_address", r.RemoteAddr)
	o.int("remote_port", int64(r.RemotePort))
	o.str("client_certificate_subject", r.ClientCertSubject)
	if len(r.Headers) > 0 {
		o.key("headers")
		o.b = f.appendHeaders(o.b, r.Headers)
	}
	return o.done()
}

// appendHeaders writes the audited headers as Vault does: an object of
// lower-case names to arrays of values.
func (f *formatter) appendHeaders(b []byte, hs []Header) []byte {
	b = append(b, '{')
	for i, h := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, h.Name)
		b = append(b, ":["...)
		for j, v := range h.Values {
			if j > 0 {
				b = append(b, ',')
			}
			if h.HMAC && !f.opts.logRaw {
				b = append(b, '"')
				b = f.h.appendHash(b, v)
				b = append(b, '"')
				continue
			}
			b = jsonenc.AppendString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (f *formatter) appendMount(o *fields, r *Request) {
	o.str("mount_point", r.MountPoint)
	o.str("mount_type", r.MountType)
	o.str("mount_accessor", r.MountAccessor)
	o.str("mount_class", r.MountClass)
}

func (f *formatter) appendResponse(b []byte, in *Input) []byte {
	o := object(b)
	if in.Request != nil {
		f.appendMount(o, in.Request)
	}
	if out := in.Response; out != nil {
		if a := out.Auth; a != nil {
			o.key("auth")
			var tok, acc loggedValue
			f.secret(&tok, a.ClientToken.Reveal())
			f.accessor(&acc, a.Accessor)
			o.b = f.appendAuth(o.b, a, &tok, &acc)
		}
		if out.LeaseID != "" {
			o.key("secret")
			o.b = append(o.b, `{"lease_id":`...)
			o.b = jsonenc.AppendString(o.b, out.LeaseID)
			o.b = append(o.b, '}')
		}
		if len(out.Data) > 0 {
			list := in.Request != nil && in.Request.Operation == "list"
			o.key("data")
			o.b = f.appendData(o.b, out.Data, out.NonHMACKeys, list)
		}
		o.strs("warnings", out.Warnings)
		if w := out.WrapInfo; w != nil {
			o.key("wrap_info")
			o.b = f.appendWrapInfo(o.b, w)
		}
	}
	return o.done()
}

// appendWrapInfo writes a wrapping token's description, as Vault does.
func (f *formatter) appendWrapInfo(b []byte, w *WrapInfo) []byte {
	o := object(b)
	o.int("ttl", int64(w.TTL/time.Second))
	var tok, acc, wrappedAcc loggedValue
	f.secret(&tok, w.Token.Reveal())
	o.logged("token", &tok)
	f.accessor(&acc, w.Accessor)
	o.logged("accessor", &acc)
	if !w.CreationTime.IsZero() {
		o.key("creation_time")
		o.b = append(o.b, '"')
		o.b = w.CreationTime.UTC().AppendFormat(o.b, time.RFC3339Nano)
		o.b = append(o.b, '"')
	}
	o.str("creation_path", w.CreationPath)
	if w.WrappedAccessor != "" {
		f.accessor(&wrappedAcc, w.WrappedAccessor)
		o.logged("wrapped_accessor", &wrappedAcc)
	}
	return o.done()
}

// appendData writes a request's or response's data with every string
// hashed, except under the keys logged in clear. For a list, the keys are
// replaced by their count when the device elides lists.
func (f *formatter) appendData(b []byte, d map[string]any, clearKeys []string, list bool) []byte {
	b = append(b, '{')
	var small [8]string
	for i, k := range sortedKeys(small[:0], d) {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		v := d[k]
		switch {
		case list && f.opts.elideLists && (k == "keys" || k == "key_info"):
			b = f.appendValue(b, count(v), false)
		default:
			b = f.appendValue(b, v, !f.opts.logRaw && !slices.Contains(clearKeys, k))
		}
	}
	return append(b, '}')
}

// appendValue writes v, with every string in it hashed when hash is set
// (map keys stay).
func (f *formatter) appendValue(b []byte, v any, hash bool) []byte {
	str := func(s string) []byte {
		if hash {
			b = append(b, '"')
			return append(f.h.appendHash(b, s), '"')
		}
		return jsonenc.AppendString(b, s)
	}
	switch t := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return str(t)
	case bool:
		return strconv.AppendBool(b, t)
	case json.Number:
		if t == "" {
			return append(b, '0')
		}
		return append(b, t...)
	case int:
		return strconv.AppendInt(b, int64(t), 10)
	case int64:
		return strconv.AppendInt(b, t, 10)
	case uint64:
		return strconv.AppendUint(b, t, 10)
	case []byte:
		return str(base64.StdEncoding.EncodeToString(t))
	case time.Time:
		return str(t.Format(time.RFC3339Nano))
	case json.RawMessage:
		return f.appendRaw(b, t, hash)
	case map[string]any:
		b = append(b, '{')
		var small [8]string
		for i, k := range sortedKeys(small[:0], t) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			b = f.appendValue(b, t[k], hash)
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, x := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = f.appendValue(b, x, hash)
		}
		return append(b, ']')
	case []string:
		b = append(b, '[')
		for i, x := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = f.appendValue(b, x, hash)
		}
		return append(b, ']')
	case map[string]string:
		b = append(b, '{')
		var small [8]string
		for i, k := range sortedKeys(small[:0], t) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			b = f.appendValue(b, t[k], hash)
		}
		return append(b, '}')
	}
	// Other numbers, structs and typed collections: their JSON form.
	raw, err := json.Marshal(v)
	if err != nil {
		return str("unloggable value")
	}
	return f.appendRaw(b, raw, hash)
}

// appendRaw copies a JSON document compacted, with every string value
// hashed when hash is set. It scans the document instead of decoding it:
// KV reads hand over their stored JSON as it is.
func (f *formatter) appendRaw(b, raw []byte, hash bool) []byte {
	start := len(b)
	var stackBuf [16]byte
	stack := stackBuf[:0] // '{' or '['
	key := false          // the next string is an object key
	for i := 0; i < len(raw); {
		c := raw[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		case '{', '[':
			stack = append(stack, c)
			key = c == '{'
			b = append(b, c)
			i++
			continue
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != c-2 { // '{'+2 == '}', '['+2 == ']'
				return f.unloggable(b[:start], hash)
			}
			stack = stack[:len(stack)-1]
			key = false
			b = append(b, c)
			i++
			continue
		case ',':
			key = len(stack) > 0 && stack[len(stack)-1] == '{'
			b = append(b, c)
			i++
			continue
		case ':':
			key = false
			b = append(b, c)
			i++
			continue
		case '"':
			end := stringEnd(raw, i)
			if end < 0 {
				return f.unloggable(b[:start], hash)
			}
			tok := raw[i : end+1]
			switch inner := tok[1 : len(tok)-1]; {
			case key || !hash:
				b = append(b, tok...)
			case bytes.IndexByte(inner, '\\') < 0:
				// No escapes: the value is the bytes between the quotes.
				b = append(b, '"')
				b = append(f.h.appendHashBytes(b, inner), '"')
			default:
				s, ok := unquote(tok)
				if !ok {
					return f.unloggable(b[:start], hash)
				}
				b = append(b, '"')
				b = append(f.h.appendHash(b, s), '"')
			}
			key = false
			i = end + 1
			continue
		}
		// A number, true, false or null.
		j := i
		for j < len(raw) && bytes.IndexByte([]byte(",]} \t\n\r"), raw[j]) < 0 {
			j++
		}
		b = append(b, raw[i:j]...)
		i = j
	}
	if len(stack) != 0 || len(b) == start {
		return f.unloggable(b[:start], hash)
	}
	return b
}

func (f *formatter) unloggable(b []byte, hash bool) []byte {
	s := "unloggable value"
	if hash {
		s = f.h.hash(s)
	}
	return jsonenc.AppendString(b, s)
}

// stringEnd returns the index of the quote closing the JSON string that
// starts at raw[i], or -1.
func stringEnd(raw []byte, i int) int {
	for j := i + 1; ; {
		k := bytes.IndexByte(raw[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		// The quote ends the string unless an odd number of
		// backslashes escapes it.
		n := 0
		for p := q - 1; p > i && raw[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q
		}
		j = q + 1
	}
}

// unquote decodes a JSON string token with escapes.
func unquote(tok []byte) (string, bool) {
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", false
	}
	return s, true
}
