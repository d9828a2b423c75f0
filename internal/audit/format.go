package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"slices"
	"sync"

	"github.com/vigil-secrets/vigil/internal/jsonenc"
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
	pool sync.Pool // of *hmacState
	// empty is the hash of "", hashed once: KV v2 metadata carries an
	// empty deletion_time in every read.
	empty [hashLen]byte
}

// hmacState is one HMAC with the scratch space that keeps hashing free of
// allocations.
type hmacState struct {
	mac hash.Hash
	in  []byte // the value, copied: hashing a string through the interface would allocate
	sum []byte
}

// maxPooledInput bounds the scratch input kept between uses.
const maxPooledInput = 4 << 10

func newHasher(salt []byte) *hasher {
	h := &hasher{}
	key := slices.Clone(salt)
	h.pool.New = func() any {
		return &hmacState{mac: hmac.New(sha256.New, key), in: make([]byte, 0, 256), sum: make([]byte, 0, sha256.Size)}
	}
	st := h.pool.Get().(*hmacState)
	st.appendHash(h.empty[:0], nil)
	h.pool.Put(st)
	return h
}

// hash returns "hmac-sha256:<hex>" of v.
func (h *hasher) hash(v string) string {
	return string(h.appendHash(make([]byte, 0, len(hashPrefix)+2*sha256.Size), v))
}

// appendHash appends "hmac-sha256:<hex>" of v to b (no quotes: the hash
// needs no JSON escaping).
func (h *hasher) appendHash(b []byte, v string) []byte {
	if v == "" {
		return append(b, h.empty[:]...)
	}
	st := h.pool.Get().(*hmacState)
	st.in = append(st.in[:0], v...)
	b = st.appendHash(b, st.in)
	// The input was a secret: clear it before the state is reused.
	clear(st.in)
	if cap(st.in) > maxPooledInput {
		st.in = make([]byte, 0, 256)
	}
	h.pool.Put(st)
	return b
}

// appendHashBytes is appendHash of a value held in a byte slice.
func (h *hasher) appendHashBytes(b, v []byte) []byte {
	if len(v) == 0 {
		return append(b, h.empty[:]...)
	}
	st := h.pool.Get().(*hmacState)
	b = st.appendHash(b, v)
	h.pool.Put(st)
	return b
}

func (st *hmacState) appendHash(b, v []byte) []byte {
	st.mac.Reset()
	st.mac.Write(v)
	st.sum = st.mac.Sum(st.sum[:0])
	b = append(b, hashPrefix...)
	return hex.AppendEncode(b, st.sum)
}

// formatter turns inputs into entries for one device.
type formatter struct {
	opts formatOptions
	h    *hasher
	// callers: how recent callers' tokens and accessors are logged.
	callers *callers
	bufs    sync.Pool // of *[]byte, for entries being formatted
	kept    sync.Pool // of *[]byte, for the members kept in Input.written
}

func newFormatter(opts formatOptions, salt []byte) *formatter {
	f := &formatter{opts: opts, h: newHasher(salt), callers: newCallers()}
	f.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	f.kept.New = func() any { b := make([]byte, 0, 1024); return &b }
	return f
}

// hashLen is the length of "hmac-sha256:<hex>".
const hashLen = len(hashPrefix) + 2*sha256.Size

// loggedValue is a secret value as a device logs it: its hash, or the
// value itself with log_raw (or for an accessor without hmac_accessor).
// Hashes are kept in place, so that hashing allocates nothing.
type loggedValue struct {
	clear  string
	hashed bool
	hash   [hashLen]byte
}

// append appends v as a JSON string (a hash needs no escaping).
func (v *loggedValue) append(b []byte) []byte {
	if !v.hashed {
		return jsonenc.AppendString(b, v.clear)
	}
	b = append(b, '"')
	b = append(b, v.hash[:]...)
	return append(b, '"')
}

// secret sets out to a value that is always secret (tokens) as logged.
func (f *formatter) secret(out *loggedValue, v string) {
	if v == "" || f.opts.logRaw {
		*out = loggedValue{clear: v}
		return
	}
	out.clear, out.hashed = "", true
	f.h.appendHash(out.hash[:0], v)
}

// accessor sets out to a token accessor as logged.
func (f *formatter) accessor(out *loggedValue, v string) {
	if !f.opts.hmacAccessor {
		*out = loggedValue{clear: v}
		return
	}
	f.secret(out, v)
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
