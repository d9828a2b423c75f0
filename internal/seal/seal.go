// Package seal produces the root key that opens the barrier.
//
// With the Shamir seal, init generates a random 256-bit root key and a
// random 256-bit unseal key, splits the unseal key into shares (package
// shamir) and keeps only the root key encrypted by the unseal key
// (AES-256-GCM) in a [Sealed] record. The record is stored outside the
// barrier (it is what opens the barrier) and holds nothing usable without a
// threshold of shares; its configuration (type, shares, threshold) is bound
// as additional data, so editing it makes unsealing fail instead of
// weakening the seal.
//
// An [Unsealer] collects shares until the threshold is reached, then
// recombines the unseal key and decrypts the root key. Key material is
// zeroed as soon as it is no longer needed (best effort: Go may have copied
// it).
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/shamir"
)

// TypeShamir is the only seal type of this version.
const TypeShamir = "shamir"

// KeySize is the size of the root key and of the unseal key.
const KeySize = 32

// ShareSize is the size of one unseal key share (key bytes + x coordinate).
const ShareSize = KeySize + 1

// Errors callers branch on.
var (
	// ErrInvalidShare: a share of the wrong shape. Progress is unchanged.
	ErrInvalidShare = errors.New("seal: invalid key share")
	// ErrBadShares: the threshold was reached but the shares do not open
	// the seal. Progress is reset.
	ErrBadShares = errors.New("seal: key shares do not match")
	// ErrConfig: invalid seal configuration.
	ErrConfig = errors.New("seal: invalid configuration")
)

// Config is the seal configuration chosen at init.
type Config struct {
	Type            string
	SecretShares    int
	SecretThreshold int
}

// Validate checks the configuration the way sys/init reports it.
func (c Config) Validate() error {
	switch {
	case c.Type != TypeShamir:
		return fmt.Errorf("%w: unsupported seal type %q", ErrConfig, c.Type)
	case c.SecretShares < 1:
		return fmt.Errorf("%w: secret shares must be at least one", ErrConfig)
	case c.SecretShares > shamir.MaxShares:
		return fmt.Errorf("%w: secret shares must be at most %d", ErrConfig, shamir.MaxShares)
	case c.SecretThreshold < 1:
		return fmt.Errorf("%w: secret threshold must be at least one", ErrConfig)
	case c.SecretThreshold > c.SecretShares:
		return fmt.Errorf("%w: secret threshold cannot be larger than secret shares", ErrConfig)
	case c.SecretShares > 1 && c.SecretThreshold == 1:
		return fmt.Errorf("%w: secret threshold must be greater than one for multiple shares", ErrConfig)
	}
	return nil
}

// Sealed is the stored seal record.
type Sealed struct {
	Type      string `json:"type"`
	Shares    int    `json:"shares"`
	Threshold int    `json:"threshold"`
	// Version of this record's format.
	Version int `json:"version"`
	// WrappedRootKey is nonce || AES-256-GCM(unseal key, root key).
	WrappedRootKey []byte `json:"wrapped_root_key"`
}

const recordVersion = 1

// aad binds the configuration to the wrapped key.
func (s Sealed) aad() []byte {
	return fmt.Appendf(nil, "vigil-seal/v%d/%s/%d/%d", s.Version, s.Type, s.Shares, s.Threshold)
}

// GenerateShamir creates a new root key and the unseal key shares that open
// it. With one share, the share is the unseal key itself.
func GenerateShamir(cfg Config) (rootKey secret.Bytes, shares [][]byte, rec Sealed, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, Sealed{}, err
	}
	unsealKey := secret.RandomBytes(KeySize)
	defer secret.Zero(unsealKey)
	rootKey = secret.RandomBytes(KeySize)
	rec = Sealed{Type: cfg.Type, Shares: cfg.SecretShares, Threshold: cfg.SecretThreshold, Version: recordVersion}
	rec.WrappedRootKey, err = seal(unsealKey, rootKey, rec.aad())
	if err != nil {
		return nil, nil, Sealed{}, err
	}
	if cfg.SecretShares == 1 {
		// A single "share" is the key plus a marker x coordinate, so every
		// share has the same shape.
		share := append(append([]byte(nil), unsealKey...), 1)
		return rootKey, [][]byte{share}, rec, nil
	}
	shares, err = shamir.Split(unsealKey, cfg.SecretShares, cfg.SecretThreshold)
	if err != nil {
		return nil, nil, Sealed{}, fmt.Errorf("seal: split: %w", err)
	}
	return rootKey, shares, rec, nil
}

func seal(key, plaintext, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := secret.RandomBytes(gcm.NonceSize())
	return gcm.Seal(nonce, nonce, plaintext, aad), nil
}

func open(key, sealed, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
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

// ParseKey decodes an unseal key share as submitted to sys/unseal: hex
// first, then standard or URL-safe base64, as Vault accepts.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidShare)
	}
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: not hex or base64", ErrInvalidShare)
}

// Unsealer collects unseal key shares for one seal record. It is not safe
// for concurrent use; core serializes calls.
type Unsealer struct {
	rec    Sealed
	shares [][]byte
	nonce  string
}

// NewUnsealer starts collecting shares for rec.
func NewUnsealer(rec Sealed) *Unsealer { return &Unsealer{rec: rec} }

// Add submits one share. A share of the wrong size is refused with
// ErrInvalidShare and changes nothing; a share already submitted is
// ignored. When the threshold is reached, Add returns the root key and
// done; if the shares do not open the seal it returns ErrBadShares and
// starts over.
func (u *Unsealer) Add(share []byte) (progress int, rootKey secret.Bytes, done bool, err error) {
	if len(share) != ShareSize {
		return len(u.shares), nil, false, fmt.Errorf("%w: want %d bytes, got %d", ErrInvalidShare, ShareSize, len(share))
	}
	for _, s := range u.shares {
		if secret.Equal(s, share) {
			return len(u.shares), nil, false, nil
		}
	}
	if u.nonce == "" {
		u.nonce = secret.UUID()
	}
	u.shares = append(u.shares, append([]byte(nil), share...))
	if len(u.shares) < u.rec.Threshold {
		return len(u.shares), nil, false, nil
	}
	defer u.Reset()
	var unsealKey []byte
	if u.rec.Threshold == 1 {
		unsealKey = append([]byte(nil), u.shares[0][:KeySize]...)
	} else {
		unsealKey, err = shamir.Combine(u.shares)
		if err != nil {
			return 0, nil, false, fmt.Errorf("%w: %v", ErrBadShares, err)
		}
	}
	defer secret.Zero(unsealKey)
	key, err := open(unsealKey, u.rec.WrappedRootKey, u.rec.aad())
	if err != nil {
		return 0, nil, false, err
	}
	return u.rec.Threshold, key, true, nil
}

// Progress reports how many shares have been submitted and the nonce of
// this unseal attempt ("" before the first share).
func (u *Unsealer) Progress() (int, string) { return len(u.shares), u.nonce }

// Reset discards the submitted shares.
func (u *Unsealer) Reset() {
	for _, s := range u.shares {
		secret.Zero(s)
	}
	u.shares, u.nonce = nil, ""
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
	return s, nil
}
