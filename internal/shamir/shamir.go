// Package shamir splits a secret into n shares of which any k reconstruct
// it, using Shamir's scheme over GF(2^8) with the AES field polynomial
// x^8 + x^4 + x^3 + x + 1.
//
// Each byte of the secret is the constant term of its own random polynomial
// of degree k-1. A share is the polynomial values at one x coordinate, one
// byte per secret byte, followed by that x coordinate: len(secret)+1 bytes.
// x coordinates are distinct, random and never zero.
//
// Field arithmetic is written without tables or secret-dependent branches,
// so its timing does not depend on the secret.
package shamir

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// Errors returned by Split and Combine.
var (
	ErrParams      = errors.New("shamir: invalid parameters")
	ErrShareFormat = errors.New("shamir: invalid share")
)

// MaxShares is the largest number of shares: x coordinates are the 255
// non-zero field elements.
const MaxShares = 255

// mul multiplies two field elements in constant time (Russian peasant
// multiplication with masks instead of branches).
func mul(a, b byte) byte {
	var p byte
	for range 8 {
		p ^= a & -(b & 1)
		// Reduce by the field polynomial when the high bit shifts out.
		hi := -(a >> 7)
		a = (a << 1) ^ (0x1b & hi)
		b >>= 1
	}
	return p
}

// inv returns the multiplicative inverse of a (a^254); inv(0) is 0.
func inv(a byte) byte {
	// a^254 = a^(2+4+8+16+32+64+128)
	r := byte(1)
	sq := a
	for range 7 {
		sq = mul(sq, sq)
		r = mul(r, sq)
	}
	return r
}

// div returns a/b; b must be non-zero.
func div(a, b byte) byte { return mul(a, inv(b)) }

// eval evaluates the polynomial with the given coefficients (constant term
// first) at x by Horner's rule.
func eval(coeffs []byte, x byte) byte {
	var y byte
	for i := len(coeffs) - 1; i >= 0; i-- {
		y = mul(y, x) ^ coeffs[i]
	}
	return y
}

// Split divides secret into parts shares, any threshold of which
// reconstruct it. 2 <= threshold <= parts <= 255 and secret must not be
// empty.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	return split(rand.Reader, secret, parts, threshold)
}

func split(r io.Reader, secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, fmt.Errorf("%w: empty secret", ErrParams)
	case threshold < 2:
		return nil, fmt.Errorf("%w: threshold must be at least 2", ErrParams)
	case parts < threshold:
		return nil, fmt.Errorf("%w: parts must be at least the threshold", ErrParams)
	case parts > MaxShares:
		return nil, fmt.Errorf("%w: at most %d parts", ErrParams, MaxShares)
	}
	xs, err := randomXs(r, parts)
	if err != nil {
		return nil, err
	}
	coeffs := make([]byte, threshold)
	defer clear(coeffs)
	shares := make([][]byte, parts)
	for i := range shares {
		shares[i] = make([]byte, len(secret)+1)
		shares[i][len(secret)] = xs[i]
	}
	for j, s := range secret {
		coeffs[0] = s
		if _, err := io.ReadFull(r, coeffs[1:]); err != nil {
			return nil, fmt.Errorf("shamir: read random: %w", err)
		}
		for i := range shares {
			shares[i][j] = eval(coeffs, xs[i])
		}
	}
	return shares, nil
}

// randomXs draws n distinct non-zero x coordinates (a random prefix of a
// Fisher-Yates shuffle of 1..255).
func randomXs(r io.Reader, n int) ([]byte, error) {
	all := make([]byte, MaxShares)
	for i := range all {
		all[i] = byte(i + 1)
	}
	var buf [2]byte
	for i := range n {
		// Pick j uniformly in [i, 255) by rejection sampling.
		span := uint16(MaxShares - i)
		limit := (65536 / uint32(span)) * uint32(span)
		for {
			if _, err := io.ReadFull(r, buf[:]); err != nil {
				return nil, fmt.Errorf("shamir: read random: %w", err)
			}
			v := uint32(buf[0])<<8 | uint32(buf[1])
			if v < limit {
				j := i + int(v%uint32(span))
				all[i], all[j] = all[j], all[i]
				break
			}
		}
	}
	return all[:n], nil
}

// Combine reconstructs the secret from at least threshold shares. Given
// fewer shares than the threshold it returns a wrong value, not an error:
// callers authenticate the result (the seal does so with AES-GCM).
func Combine(shares [][]byte) ([]byte, error) {
	if len(shares) < 2 {
		return nil, fmt.Errorf("%w: at least two shares are needed", ErrParams)
	}
	n := len(shares[0])
	if n < 2 {
		return nil, fmt.Errorf("%w: too short", ErrShareFormat)
	}
	xs := make([]byte, len(shares))
	for i, s := range shares {
		if len(s) != n {
			return nil, fmt.Errorf("%w: shares differ in length", ErrShareFormat)
		}
		x := s[n-1]
		if x == 0 {
			return nil, fmt.Errorf("%w: zero x coordinate", ErrShareFormat)
		}
		for _, prev := range xs[:i] {
			if subtle.ConstantTimeByteEq(prev, x) == 1 {
				return nil, fmt.Errorf("%w: duplicate share", ErrShareFormat)
			}
		}
		xs[i] = x
	}
	// Lagrange basis values at x = 0: l_i = prod_{j!=i} x_j / (x_j - x_i);
	// subtraction is XOR in GF(2^8).
	basis := make([]byte, len(shares))
	for i := range shares {
		l := byte(1)
		for j := range shares {
			if i != j {
				l = mul(l, div(xs[j], xs[j]^xs[i]))
			}
		}
		basis[i] = l
	}
	out := make([]byte, n-1)
	for b := range out {
		var v byte
		for i, s := range shares {
			v ^= mul(basis[i], s[b])
		}
		out[b] = v
	}
	return out, nil
}
