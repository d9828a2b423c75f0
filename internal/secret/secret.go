// Package secret holds the small types Vigil uses for secret material:
// tokens, unseal keys, passwords. Their printed forms are always
// "[redacted]", so a secret that slips into a log line, an error or a panic
// shows nothing; reading the real value takes an explicit Reveal call, made
// only where it is needed (the response encoder and the crypto code).
//
// The package also provides constant-time comparison and crypto/rand
// helpers. It imports nothing internal.
package secret

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Redacted is what every printed form of a secret shows.
const Redacted = "[redacted]"

// String is a secret text value (a token, a password). The zero value is the
// empty secret.
type String struct {
	v string
}

// NewString wraps s.
func NewString(s string) String { return String{v: s} }

// Reveal returns the secret text. Call it only where the value must leave
// the process or be used by crypto code.
func (s String) Reveal() string { return s.v }

// IsEmpty reports whether the secret is the empty string.
func (s String) IsEmpty() bool { return s.v == "" }

// Equal compares two secrets in constant time (for equal lengths).
func (s String) Equal(o String) bool { return Equal([]byte(s.v), []byte(o.v)) }

// String implements fmt.Stringer.
func (s String) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (s String) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb, %x and %q included,
// prints the redacted form.
func (s String) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText refuses to encode the secret: a secret that must be written
// out is revealed explicitly.
func (s String) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Bytes is secret binary material (keys, key shares). Zero wipes it.
type Bytes []byte

// Reveal returns the underlying bytes.
func (b Bytes) Reveal() []byte { return b }

// String implements fmt.Stringer.
func (b Bytes) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (b Bytes) GoString() string { return Redacted }

// Format implements fmt.Formatter.
func (b Bytes) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (b Bytes) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText prints the redacted form.
func (b Bytes) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Zero overwrites b with zeros (best effort: the Go runtime may have copied
// the bytes elsewhere).
func Zero(b []byte) { clear(b) }

// Equal reports whether a and b are equal, in time that depends only on
// their lengths.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// RandomBytes returns n bytes from crypto/rand.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error on supported platforms
	// (it crashes the program instead), per its documentation.
	_, _ = rand.Read(b)
	return b
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// RandomBase62 returns n characters drawn uniformly from [0-9A-Za-z].
func RandomBase62(n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:])
		for _, c := range buf {
			// 248 = 4*62: reject the top values to keep the draw uniform.
			if c >= 248 {
				continue
			}
			out = append(out, base62[c%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}

// UUID returns a random (version 4) UUID in its canonical text form.
func UUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:16])
	return string(out[:])
}
