package seal

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// Wrapper is the key of an auto seal: it encrypts the root key at init and
// decrypts it at every start. Implementations: [Static] and the pkcs11
// package's HSM wrapper. Errors must never carry key material.
type Wrapper interface {
	// Type is the seal type ("static", "pkcs11").
	Type() string
	// KeyID names the key Encrypt uses.
	KeyID() string
	// Encrypt encrypts plaintext under the current key, binding aad.
	Encrypt(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	// Decrypt decrypts a ciphertext made by Encrypt under the key named
	// keyID (the current key or, after a rotation, the previous one). A
	// key id the wrapper does not hold is ErrUnknownKey; a ciphertext
	// the key does not open (or whose aad differs) is ErrUnwrap.
	Decrypt(ctx context.Context, keyID string, ciphertext, aad []byte) (secret.Bytes, error)
}

// GenerateAuto creates a new root key wrapped by w, in a record that also
// holds the recovery key configuration (whose shares and threshold it
// binds).
func GenerateAuto(ctx context.Context, w Wrapper, recovery Config) (rootKey secret.Bytes, rec Sealed, err error) {
	recovery.Type = w.Type()
	if err := recovery.Validate(); err != nil {
		return nil, Sealed{}, err
	}
	rootKey = secret.RandomBytes(KeySize)
	rec = Sealed{Type: w.Type(), Shares: recovery.SecretShares, Threshold: recovery.SecretThreshold, Version: recordVersion}
	if rec, err = wrap(ctx, w, rec, rootKey); err != nil {
		secret.Zero(rootKey)
		return nil, Sealed{}, err
	}
	return rootKey, rec, nil
}

// OpenAuto decrypts the root key of an auto seal record with w. stale is
// true when the record was wrapped under a key other than w's current one
// (the previous key of a rotation): once the root key has opened the
// barrier, the caller stores [Rewrap]'s record.
func OpenAuto(ctx context.Context, w Wrapper, rec Sealed) (rootKey secret.Bytes, stale bool, err error) {
	if rec.Type != w.Type() {
		return nil, false, fmt.Errorf("%w: the stored root key is sealed by %q, the configuration has seal %q (seal migration is not supported)", ErrConfig, rec.Type, w.Type())
	}
	rootKey, err = w.Decrypt(ctx, rec.KeyID, rec.WrappedRootKey, rec.aad())
	if err != nil {
		return nil, false, err
	}
	if len(rootKey) != KeySize {
		secret.Zero(rootKey)
		return nil, false, ErrUnwrap
	}
	return rootKey, rec.KeyID != w.KeyID(), nil
}

// Rewrap wraps rootKey again under w's current key.
func Rewrap(ctx context.Context, w Wrapper, rec Sealed, rootKey []byte) (Sealed, error) {
	return wrap(ctx, w, rec, rootKey)
}

func wrap(ctx context.Context, w Wrapper, rec Sealed, rootKey []byte) (Sealed, error) {
	rec.KeyID = w.KeyID()
	ct, err := w.Encrypt(ctx, rootKey, rec.aad())
	if err != nil {
		return Sealed{}, fmt.Errorf("seal: wrap the root key with seal %q: %w", w.Type(), err)
	}
	rec.WrappedRootKey = ct
	return rec, nil
}

// recoveryLabel separates the recovery key's hash from any other use of
// SHA-256 on the same bytes.
const recoveryLabel = "vigil-recovery-key/v1\x00"

// GenerateRecovery creates a recovery key and splits it into shares.
func GenerateRecovery(cfg Config) (key secret.Bytes, shares [][]byte, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	key = secret.RandomBytes(KeySize)
	if shares, err = split(key, cfg.SecretShares, cfg.SecretThreshold); err != nil {
		secret.Zero(key)
		return nil, nil, err
	}
	return key, shares, nil
}

// RecoveryHash is what the server keeps (behind the barrier) to check a
// recovery key: the key is 256 random bits, so its hash reveals nothing
// useful.
func RecoveryHash(key []byte) []byte {
	h := sha256.New()
	h.Write([]byte(recoveryLabel))
	h.Write(key)
	return h.Sum(nil)
}

// CheckRecoveryKey reports, in constant time, whether key hashes to hash.
func CheckRecoveryKey(key, hash []byte) bool {
	return secret.Equal(RecoveryHash(key), hash)
}
