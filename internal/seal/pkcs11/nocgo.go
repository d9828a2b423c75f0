//go:build !cgo

package pkcs11

import (
	"context"

	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Wrapper is the HSM seal; without cgo it cannot be opened.
type Wrapper struct{}

var _ seal.Wrapper = (*Wrapper)(nil)

// Open reports ErrUnavailable: the PKCS#11 binding needs cgo.
func Open(Config) (*Wrapper, error) { return nil, ErrUnavailable }

// Type implements seal.Wrapper.
func (w *Wrapper) Type() string { return seal.TypePKCS11 }

// KeyID implements seal.Wrapper.
func (w *Wrapper) KeyID() string { return "" }

// Encrypt implements seal.Wrapper.
func (w *Wrapper) Encrypt(context.Context, []byte, []byte) ([]byte, error) {
	return nil, ErrUnavailable
}

// Decrypt implements seal.Wrapper.
func (w *Wrapper) Decrypt(context.Context, string, []byte, []byte) (secret.Bytes, error) {
	return nil, ErrUnavailable
}

// Close does nothing.
func (w *Wrapper) Close() error { return nil }
