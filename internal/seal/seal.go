// Package seal produces the root key that opens the barrier, and keeps it
// protected at rest in a [Sealed] record stored outside the barrier (it is
// what opens the barrier).
//
// With the Shamir seal, init generates a random 256-bit root key and a
// random 256-bit unseal key, splits the unseal key into shares (package
// shamir) and keeps only the root key encrypted by the unseal key
// (AES-256-GCM). The record holds nothing usable without a threshold of
// shares.
//
// With an auto seal ("static": a key file or environment variable;
// "pkcs11": a key in an HSM) the root key is encrypted by a [Wrapper] the
// server holds, so the server opens itself at start. Operators then hold
// recovery key shares instead of unseal key shares: shares of a random
// recovery key whose hash is kept behind the barrier ([RecoveryHash]). They
// open nothing; they authorize operations such as generating a root token.
//
// Either way the record's configuration (type, shares, threshold, and for
// auto seals the id of the wrapping key) is bound to the wrapped root key as
// additional data, so editing it makes unsealing fail instead of weakening
// the seal.
//
// [Shares] collects key shares until the threshold is reached and
// recombines the key they split; [Unsealer] adds the nonce of an unseal
// attempt. Key material is zeroed as soon as it is no longer needed (best
// effort: Go may have copied it), and no error or log line carries it.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/shamir"
)

// Seal types.
const (
	// TypeShamir: unseal key shares held by people.
	TypeShamir = "shamir"
	// TypeStatic: an auto seal with a 32-byte key from a file or an
	// environment variable ([Static]).
	TypeStatic = "static"
	// TypePKCS11: an auto seal with an AES key in an HSM.
	TypePKCS11 = "pkcs11"
)

// KeySize is the size of the root key, of the unseal key and of the
// recovery key.
const KeySize = 32

// ShareSize is the size of one key share (key bytes + x coordinate).
const ShareSize = KeySize + 1

// Errors callers branch on.
var (
	// ErrInvalidShare: a share of the wrong shape. Progress is unchanged.
	ErrInvalidShare = errors.New("seal: invalid key share")
	// ErrDuplicateShare: a share already submitted in this attempt.
	ErrDuplicateShare = errors.New("seal: key share already submitted")
	// ErrBadShares: the threshold was reached but the shares do not open
	// the seal. Progress is reset.
	ErrBadShares = errors.New("seal: key shares do not match")
	// ErrConfig: invalid seal configuration.
	ErrConfig = errors.New("seal: invalid configuration")
	// ErrUnwrap: the auto seal's key does not open the stored root key
	// (a different key, or an altered record).
	ErrUnwrap = errors.New("seal: the seal key does not open the stored root key")
	// ErrUnknownKey: the record was wrapped under a key id the auto seal
	// does not hold.
	ErrUnknownKey = errors.New("seal: the root key was wrapped under a key the seal does not hold")
)

// IsAuto reports whether typ is an auto seal type.
func IsAuto(typ string) bool { return typ == TypeStatic || typ == TypePKCS11 }

// Config is a seal configuration chosen at init: the unseal key shares of
// a Shamir seal, or the recovery key shares of an auto seal.
type Config struct {
	Type            string
	SecretShares    int
	SecretThreshold int
}

// Validate checks the configuration the way sys/init reports it (in terms
// of recovery shares for an auto seal).
func (c Config) Validate() error {
	what := "secret"
	if IsAuto(c.Type) {
		what = "recovery"
	}
	switch {
	case c.Type != TypeShamir && !IsAuto(c.Type):
		return fmt.Errorf("%w: unsupported seal type %q", ErrConfig, c.Type)
	case c.SecretShares < 1:
		return fmt.Errorf("%w: %s shares must be at least one", ErrConfig, what)
	case c.SecretShares > shamir.MaxShares:
		return fmt.Errorf("%w: %s shares must be at most %d", ErrConfig, what, shamir.MaxShares)
	case c.SecretThreshold < 1:
		return fmt.Errorf("%w: %s threshold must be at least one", ErrConfig, what)
	case c.SecretThreshold > c.SecretShares:
		return fmt.Errorf("%w: %s threshold cannot be larger than %s shares", ErrConfig, what, what)
	case c.SecretShares > 1 && c.SecretThreshold == 1:
		return fmt.Errorf("%w: %s threshold must be greater than one for multiple shares", ErrConfig, what)
	}
	return nil
}

// Sealed is the stored seal record.
type Sealed struct {
	Type string `json:"type"`
	// Shares and Threshold are the unseal key shares of a Shamir seal, or
	// the recovery key shares of an auto seal.
	Shares    int `json:"shares"`
	Threshold int `json:"threshold"`
	// Version of this record's format.
	Version int `json:"version"`
	// KeyID names the auto seal key that wrapped the root key.
	KeyID string `json:"key_id,omitempty"`
	// WrappedRootKey is nonce || AES-256-GCM(unseal key, root key) for a
	// Shamir seal, and the wrapper's ciphertext for an auto seal.
	WrappedRootKey []byte `json:"wrapped_root_key"`
}

const recordVersion = 1

// Auto reports whether the record belongs to an auto seal.
func (s Sealed) Auto() bool { return IsAuto(s.Type) }

// aad binds the configuration to the wrapped key.
func (s Sealed) aad() []byte {
	b := fmt.Appendf(nil, "vigil-seal/v%d/%s/%d/%d", s.Version, s.Type, s.Shares, s.Threshold)
	if s.Auto() {
		b = fmt.Appendf(b, "/%q", s.KeyID)
	}
	return b
}

// GenerateShamir creates a new root key and the unseal key shares that open
// it. With one share, the share is the unseal key itself.
func GenerateShamir(cfg Config) (rootKey secret.Bytes, shares [][]byte, rec Sealed, err error) {
	if cfg.Type != TypeShamir {
		return nil, nil, Sealed{}, fmt.Errorf("%w: %q is not a shamir seal", ErrConfig, cfg.Type)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, Sealed{}, err
	}
	unsealKey := secret.RandomBytes(KeySize)
	defer secret.Zero(unsealKey)
	rootKey = secret.RandomBytes(KeySize)
	rec = Sealed{Type: cfg.Type, Shares: cfg.SecretShares, Threshold: cfg.SecretThreshold, Version: recordVersion}
	rec.WrappedRootKey, err = sealAEAD(unsealKey, rootKey, rec.aad())
	if err != nil {
		return nil, nil, Sealed{}, err
	}
	shares, err = split(unsealKey, cfg.SecretShares, cfg.SecretThreshold)
	if err != nil {
		return nil, nil, Sealed{}, err
	}
	return rootKey, shares, rec, nil
}

// OpenShamir decrypts the root key of a Shamir record with the unseal key
// its shares recombine to; a wrong key is ErrBadShares.
func OpenShamir(rec Sealed, unsealKey []byte) (secret.Bytes, error) {
	if rec.Type != TypeShamir {
		return nil, fmt.Errorf("%w: the record is of seal type %q", ErrConfig, rec.Type)
	}
	return openAEAD(unsealKey, rec.WrappedRootKey, rec.aad())
}

// split splits key into shares; with one share, the share is the key plus
// a marker x coordinate, so that every share has the same shape.
func split(key []byte, n, threshold int) ([][]byte, error) {
	if n == 1 {
		return [][]byte{append(append([]byte(nil), key...), 1)}, nil
	}
	shares, err := shamir.Split(key, n, threshold)
	if err != nil {
		return nil, fmt.Errorf("seal: split: %w", err)
	}
	return shares, nil
}

// sealAEAD encrypts plaintext under key: nonce || AES-256-GCM ciphertext.
func sealAEAD(key, plaintext, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := secret.RandomBytes(gcm.NonceSize())
	return gcm.Seal(nonce, nonce, plaintext, aad), nil
}

// openAEAD reverses sealAEAD; any failure is ErrBadShares.
func openAEAD(key, sealed, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, ErrBadShares
	}
	if len(sealed) < gcm.NonceSize()+gcm.Overhead() {
		return nil, ErrBadShares
	}
	pt, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], aad)
	if err != nil {
		return nil, ErrBadShares
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// MarshalRecord and UnmarshalRecord encode the stored record.
func MarshalRecord(s Sealed) ([]byte, error) { return json.Marshal(s) }

// UnmarshalRecord decodes and sanity-checks a stored record.
func UnmarshalRecord(raw []byte) (Sealed, error) {
	var s Sealed
	if err := json.Unmarshal(raw, &s); err != nil {
		return Sealed{}, fmt.Errorf("seal: decode record: %w", err)
	}
	if s.Version != recordVersion {
		return Sealed{}, fmt.Errorf("seal: unsupported record version %d", s.Version)
	}
	if err := (Config{Type: s.Type, SecretShares: s.Shares, SecretThreshold: s.Threshold}).Validate(); err != nil {
		return Sealed{}, err
	}
	if s.Auto() && s.KeyID == "" {
		return Sealed{}, fmt.Errorf("%w: an auto seal record without a key id", ErrConfig)
	}
	return s, nil
}
