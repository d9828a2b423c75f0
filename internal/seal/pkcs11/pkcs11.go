// Package pkcs11 is the "pkcs11" auto seal: the root key is encrypted with
// CKM_AES_GCM by an AES-256 key that never leaves an HSM (any PKCS#11
// module: a network HSM, a cloud HSM's client library, SoftHSM2 in tests).
//
// The key is found by its label in the token chosen by slot number or
// token label, after logging in with the user PIN; with GenerateKey it is
// created in the token when absent (sensitive, not extractable). The
// ciphertext is the 12-byte IV followed by the GCM ciphertext and tag, with
// the seal record's configuration as additional data.
//
// The PKCS#11 binding needs cgo. A build without cgo has this package's
// configuration but [Open] reports that the HSM seal is not compiled in.
//
// A PKCS#11 module is initialized once per process: a Wrapper that finds
// the module initialized by another shares it and leaves it initialized
// when it closes. Errors carry PKCS#11 return codes (CKR_PIN_INCORRECT,
// ...), never the PIN or key material.
package pkcs11

import (
	"errors"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// Config is what Open needs.
type Config struct {
	// Lib is the path of the PKCS#11 module.
	Lib string
	// Slot selects the token by slot number when HasSlot, else TokenLabel
	// by its label.
	Slot       uint
	HasSlot    bool
	TokenLabel string
	// PIN is the token user's PIN.
	PIN secret.String
	// KeyLabel is the CKA_LABEL of the AES key, and the key id recorded
	// with the wrapped root key.
	KeyLabel string
	// GenerateKey creates the key in the token when none has KeyLabel.
	GenerateKey bool
}

// Errors callers branch on.
var (
	// ErrNoKey: no AES key with the label, and GenerateKey is off.
	ErrNoKey = errors.New("pkcs11: no AES key with this label in the token")
	// ErrUnavailable: this build has no PKCS#11 support (no cgo).
	ErrUnavailable = errors.New("pkcs11: this vigil was built without cgo, so it has no PKCS#11 (HSM) seal")
)

// gcmIVSize and gcmTagBits are the GCM parameters of every encryption.
const (
	gcmIVSize  = 12
	gcmTagBits = 128
)
