package seal

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/shamir"
)

// ParseKey decodes a key share as submitted to sys/unseal or
// sys/generate-root/update: hex first, then standard or URL-safe base64,
// as Vault accepts.
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

// Shares collects the shares of one key until its threshold is reached,
// then recombines the key. It is not safe for concurrent use.
type Shares struct {
	threshold int
	parts     [][]byte
}

// NewShares starts collecting shares of a key split with threshold.
func NewShares(threshold int) *Shares { return &Shares{threshold: threshold} }

// Add submits one share. A share of the wrong size is refused with
// ErrInvalidShare and one already submitted with ErrDuplicateShare; neither
// changes the progress. When the threshold is reached Add returns the key
// and starts over; shares that do not recombine return ErrBadShares (also
// starting over). Whether the key is the right one is the caller's check.
func (s *Shares) Add(share []byte) (secret.Bytes, error) {
	if len(share) != ShareSize {
		return nil, fmt.Errorf("%w: want %d bytes, got %d", ErrInvalidShare, ShareSize, len(share))
	}
	for _, p := range s.parts {
		if secret.Equal(p, share) {
			return nil, ErrDuplicateShare
		}
	}
	s.parts = append(s.parts, append([]byte(nil), share...))
	if len(s.parts) < s.threshold {
		return nil, nil
	}
	defer s.Reset()
	if s.threshold == 1 {
		return append(secret.Bytes(nil), s.parts[0][:KeySize]...), nil
	}
	key, err := shamir.Combine(s.parts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadShares, err)
	}
	return key, nil
}

// Len is the number of shares submitted so far.
func (s *Shares) Len() int { return len(s.parts) }

// Threshold is the number of shares that recombine the key.
func (s *Shares) Threshold() int { return s.threshold }

// Reset discards the submitted shares.
func (s *Shares) Reset() {
	for _, p := range s.parts {
		secret.Zero(p)
	}
	s.parts = nil
}

// Unsealer collects the key shares of one unseal attempt: unseal key
// shares for a Shamir seal, recovery key shares for an auto seal. It is
// not safe for concurrent use; core serializes calls.
type Unsealer struct {
	shares *Shares
	nonce  string
}

// NewUnsealer starts an unseal attempt for a key split with threshold.
func NewUnsealer(threshold int) *Unsealer { return &Unsealer{shares: NewShares(threshold)} }

// Add submits one share. A share of the wrong size is refused with
// ErrInvalidShare and changes nothing; a share already submitted is
// ignored. When the threshold is reached Add returns the recombined key
// and done, and the attempt starts over.
func (u *Unsealer) Add(share []byte) (progress int, key secret.Bytes, done bool, err error) {
	if u.nonce == "" && len(share) == ShareSize {
		u.nonce = secret.UUID()
	}
	key, err = u.shares.Add(share)
	switch {
	case errors.Is(err, ErrDuplicateShare):
		return u.shares.Len(), nil, false, nil
	case errors.Is(err, ErrBadShares):
		u.nonce = ""
		return 0, nil, false, err
	case err != nil:
		return u.shares.Len(), nil, false, err
	case key == nil:
		return u.shares.Len(), nil, false, nil
	}
	u.nonce = ""
	return u.shares.Threshold(), key, true, nil
}

// Progress reports how many shares have been submitted and the nonce of
// this unseal attempt ("" before the first share).
func (u *Unsealer) Progress() (int, string) { return u.shares.Len(), u.nonce }

// Reset discards the submitted shares.
func (u *Unsealer) Reset() {
	u.shares.Reset()
	u.nonce = ""
}
