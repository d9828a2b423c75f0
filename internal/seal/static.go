package seal

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// Key is a named 32-byte seal key of the static seal.
type Key struct {
	ID       string
	Material secret.Bytes
}

// Static is the "static" auto seal: the root key is encrypted with
// AES-256-GCM under a 32-byte key the server reads at start from a file or
// an environment variable. After a rotation the previous key still opens a
// record wrapped under it, and the caller rewraps the record under the
// current key.
//
// The ciphertext is nonce (12 bytes) || GCM ciphertext and tag, with the
// record's configuration as additional data.
type Static struct {
	current  staticKey
	previous *staticKey
}

type staticKey struct {
	id   string
	aead cipher.AEAD
}

var _ Wrapper = (*Static)(nil)

// NewStatic returns the static seal with its current key and, during a
// rotation, the previous one (nil otherwise). The key material is copied
// into the ciphers; the caller may zero its copies.
func NewStatic(current Key, previous *Key) (*Static, error) {
	cur, err := newStaticKey(current)
	if err != nil {
		return nil, err
	}
	s := &Static{current: cur}
	if previous != nil {
		if previous.ID == current.ID {
			return nil, fmt.Errorf("%w: the previous key id must differ from the current key id", ErrConfig)
		}
		prev, err := newStaticKey(*previous)
		if err != nil {
			return nil, err
		}
		s.previous = &prev
	}
	return s, nil
}

func newStaticKey(k Key) (staticKey, error) {
	if k.ID == "" {
		return staticKey{}, fmt.Errorf("%w: a static seal key needs an id", ErrConfig)
	}
	if len(k.Material) != KeySize {
		return staticKey{}, fmt.Errorf("%w: key %q must be %d bytes, not %d", ErrConfig, k.ID, KeySize, len(k.Material))
	}
	a, err := newGCM(k.Material)
	if err != nil {
		return staticKey{}, err
	}
	return staticKey{id: k.ID, aead: a}, nil
}

// Type implements Wrapper.
func (s *Static) Type() string { return TypeStatic }

// KeyID implements Wrapper.
func (s *Static) KeyID() string { return s.current.id }

// Encrypt implements Wrapper.
func (s *Static) Encrypt(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	a := s.current.aead
	nonce := secret.RandomBytes(a.NonceSize())
	return a.Seal(nonce, nonce, plaintext, aad), nil
}

// Decrypt implements Wrapper.
func (s *Static) Decrypt(_ context.Context, keyID string, ciphertext, aad []byte) (secret.Bytes, error) {
	var k staticKey
	switch {
	case keyID == s.current.id:
		k = s.current
	case s.previous != nil && keyID == s.previous.id:
		k = *s.previous
	default:
		return nil, fmt.Errorf("%w: key id %q is neither current_key_id nor previous_key_id", ErrUnknownKey, keyID)
	}
	a := k.aead
	if len(ciphertext) < a.NonceSize()+a.Overhead() {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnwrap, keyID)
	}
	pt, err := a.Open(nil, ciphertext[:a.NonceSize()], ciphertext[a.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnwrap, keyID)
	}
	return pt, nil
}

// maxKeyFile bounds what LoadKey reads: a 32-byte key in base64 with a line
// ending is 45 bytes.
const maxKeyFile = 1 << 10

// LoadKey reads a 32-byte seal key from "file:///path" (the file's bytes)
// or "env://NAME" (the variable's value, read with getenv). The value is
// the 32 raw bytes (as `openssl rand 32` writes them), or their hex or
// base64 encoding (standard or URL-safe, padded or not) with surrounding
// white space ignored. Errors name the
// source, never the content.
func LoadKey(source string, getenv func(string) string) (secret.Bytes, error) {
	var raw []byte
	switch {
	case strings.HasPrefix(source, "file://"):
		path := strings.TrimPrefix(source, "file://")
		if path == "" {
			return nil, fmt.Errorf("%w: %q names no file", ErrConfig, source)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read key file: %w", err)
		}
		defer f.Close()
		raw, err = io.ReadAll(io.LimitReader(f, maxKeyFile+1))
		if err != nil {
			return nil, fmt.Errorf("read key file %s: %w", path, err)
		}
		if len(raw) > maxKeyFile {
			return nil, fmt.Errorf("%w: key file %s is larger than %d bytes: want a 32-byte key", ErrConfig, path, maxKeyFile)
		}
	case strings.HasPrefix(source, "env://"):
		name := strings.TrimPrefix(source, "env://")
		if name == "" {
			return nil, fmt.Errorf("%w: %q names no environment variable", ErrConfig, source)
		}
		raw = []byte(getenv(name))
		if len(raw) == 0 {
			return nil, fmt.Errorf("%w: environment variable %s is not set", ErrConfig, name)
		}
	default:
		return nil, fmt.Errorf("%w: a key must be given as file:///path or env://NAME, never inline", ErrConfig)
	}
	defer secret.Zero(raw)
	key, err := decodeKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, source, err)
	}
	return key, nil
}

// errKeyShape is decodeKey's one error: it says nothing of the content but
// its length.
var errKeyShape = errors.New("want a 32-byte key: raw, hex or base64")

// decodeKey reads 32 raw bytes, or their hex or base64 text. Thirty-two
// printable characters are text, not a raw key: a passphrase is refused
// (32 random bytes are all printable once in about 10^14).
func decodeKey(raw []byte) (secret.Bytes, error) {
	if len(raw) == KeySize && !printable(raw) {
		return append(secret.Bytes(nil), raw...), nil
	}
	text := string(bytes.TrimSpace(raw))
	if len(text) == 2*KeySize {
		if b, err := hex.DecodeString(text); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w (found %d bytes)", errKeyShape, len(raw))
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
