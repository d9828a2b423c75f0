// Package jwks verifies the signatures of JSON Web Tokens (compact JWS)
// with asymmetric keys: public keys given as PEM, or the key set of a
// remote issuer, named by a JWKS URL or by the issuer's OIDC discovery
// document. The JWT and Kubernetes auth methods share it.
//
// It owns the accepted algorithms, the parsing of PEM public keys, the
// HTTP client of key-set fetches and the key-set cache ([Remote]). It
// knows nothing of claims, roles, mounts or storage: it imports the
// standard library and go-jose only, and no Vigil package
// (internal/archtest checks this).
//
// # Security invariants
//
//   - Only asymmetric algorithms are accepted: RS, PS and ES at 256, 384
//     and 512 bits, and EdDSA ([Algorithms]). "none" and the HMAC
//     algorithms are refused whatever a caller asks for, so a token
//     "signed" with a public key as an HMAC secret cannot pass.
//   - A token carries exactly one signature.
//   - A JWK verifies only if it is a public key for signatures ("use" sig
//     or none), and only with the algorithm it names when it names one.
//   - Fetches have a timeout ([FetchTimeout]) and a size limit
//     ([MaxFetchSize]), and follow no redirect.
//   - A key id missing from the cached set makes at most one fetch per
//     [RefreshInterval], so forged key ids cannot make Vigil hammer the
//     issuer; a set is fetched again after [MaxAge]; a failed refresh
//     keeps the last good set.
//   - A discovery document must name the expected issuer.
//   - No error quotes a token, and nothing is logged about one.
package jwks

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Limits and intervals of verification and key-set fetches.
const (
	// FetchTimeout bounds one fetch of a discovery document or a key set.
	FetchTimeout = 10 * time.Second
	// RefreshInterval is the least time between two fetches made for
	// key ids missing from the cached set (or after a failed fetch).
	RefreshInterval = 10 * time.Second
	// MaxAge is how long a fetched key set is used before it is fetched
	// again.
	MaxAge = time.Hour
	// MaxFetchSize bounds the body of a discovery document or a key set.
	MaxFetchSize = 1 << 20
	// MaxTokenSize bounds the tokens [ParseSigned] reads.
	MaxTokenSize = 64 << 10
)

// Algorithms returns the signature algorithms a token may be signed with:
// asymmetric ones only. A new slice each time, so that no caller can
// change a shared list.
func Algorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512,
		jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512,
		jose.EdDSA,
	}
}

// ParseAlgorithms checks a configured list of algorithm names: each must
// be one of [Algorithms]. An empty list means all of them.
func ParseAlgorithms(names []string) ([]jose.SignatureAlgorithm, error) {
	all := Algorithms()
	if len(names) == 0 {
		return all, nil
	}
	out := make([]jose.SignatureAlgorithm, 0, len(names))
	for _, n := range names {
		alg := jose.SignatureAlgorithm(strings.TrimSpace(n))
		if !slices.Contains(all, alg) {
			return nil, fmt.Errorf("unsupported signing algorithm %q: want one of %s", n, algList(all))
		}
		out = append(out, alg)
	}
	return out, nil
}

func algList(algs []jose.SignatureAlgorithm) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// ErrMalformed is the error of a token that is not a JWS signed with an
// accepted algorithm. go-jose's own error is dropped: it may quote parts
// of the token.
var ErrMalformed = errors.New("malformed token or not signed with an accepted asymmetric algorithm")

// ParseSigned parses a JWS (in practice a compact JWT) of at most
// [MaxTokenSize] bytes, signed with one of algs ([Algorithms] when nil;
// anything outside [Algorithms] is refused even when listed) and carrying
// exactly one signature. Its errors never quote the token.
func ParseSigned(token string, algs []jose.SignatureAlgorithm) (*jose.JSONWebSignature, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("the token is longer than %d bytes", MaxTokenSize)
	}
	accepted := Algorithms()
	if algs != nil {
		accepted = slices.DeleteFunc(slices.Clone(algs), func(a jose.SignatureAlgorithm) bool {
			return !slices.Contains(Algorithms(), a)
		})
	}
	jws, err := jose.ParseSigned(token, accepted)
	if err != nil {
		return nil, ErrMalformed
	}
	if err := checkSignature(jws); err != nil {
		return nil, err
	}
	return jws, nil
}

// checkSignature holds the invariants of a JWS to verify, whoever parsed
// it: one signature, under an accepted algorithm.
func checkSignature(jws *jose.JSONWebSignature) error {
	if len(jws.Signatures) != 1 {
		return errors.New("the token must carry exactly one signature")
	}
	if !slices.Contains(Algorithms(), jose.SignatureAlgorithm(jws.Signatures[0].Header.Algorithm)) {
		return ErrMalformed
	}
	return nil
}

// VerifyWithKeys checks the signature of jws with static keys (as
// [ParsePublicKeys] returns them) and returns the payload.
func VerifyWithKeys(jws *jose.JSONWebSignature, keys []crypto.PublicKey) ([]byte, error) {
	if err := checkSignature(jws); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("no configured key verifies the signature")
}
