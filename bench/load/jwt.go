package load

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The JWT login scenarios play a CI platform's jobs: each JWT says which
// repository, branch and run it was issued to, the way a GitHub Actions
// OIDC token does, and the role they log in with binds the audience, the
// repository and the branch, and copies some claims into the token's
// metadata.
const (
	// JWTIssuerURL is the iss of the JWTs and the mount's bound_issuer.
	// Nothing is fetched from it: the mount verifies with the public key
	// it is given.
	JWTIssuerURL = "https://ci.example"
	// JWTRoleBody creates the role: a service token with the default
	// policy for an hour, as AppRole logins get.
	JWTRoleBody = `{"role_type":"jwt","user_claim":"sub","bound_audiences":["vigil"],` +
		`"bound_claims":{"repository":"acme/train","ref":"refs/heads/main"},` +
		`"claim_mappings":{"repository":"repository","ref":"ref","run_id":"run_id","actor":"actor"},` +
		`"token_policies":["default"],"token_ttl":"1h"}`
)

// JWTIssuer signs the JWTs of a JWT login scenario with a key made in
// memory when it is created: an ECDSA P-256 key for ES256, a 2048-bit RSA
// key for RS256. The private key is never written anywhere and never
// leaves it.
type JWTIssuer struct {
	alg    jose.SignatureAlgorithm
	signer jose.Signer
	pubPEM string
}

// NewJWTIssuer makes a new key for alg, which must be jose.ES256 or
// jose.RS256.
func NewJWTIssuer(alg jose.SignatureAlgorithm) (*JWTIssuer, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("load: JWT issuer for %q: want ES256 or RS256", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("load: generate a %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("load: marshal the %s public key: %w", alg, err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("load: %s signer: %w", alg, err)
	}
	return &JWTIssuer{
		alg: alg, signer: signer,
		pubPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}, nil
}

// Alg is the algorithm the issuer signs with.
func (is *JWTIssuer) Alg() jose.SignatureAlgorithm { return is.alg }

// PublicKeyPEM is the issuer's public key, a PEM "PUBLIC KEY" block, as
// jwt_validation_pubkeys takes it.
func (is *JWTIssuer) PublicKeyPEM() string { return is.pubPEM }

// JobClaims are the claims of the JWT of CI run number run, issued at now
// and valid for lifetime, which JWTRoleBody's bounds accept.
func JobClaims(run int, now time.Time, lifetime time.Duration) map[string]any {
	return map[string]any{
		"iss": JWTIssuerURL, "aud": "vigil", "sub": "repo:acme/train:ref:refs/heads/main",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(lifetime).Unix(),
		"jti":        "bench-" + strconv.Itoa(run),
		"repository": "acme/train", "repository_owner": "acme", "ref": "refs/heads/main",
		"workflow": "train", "environment": "prod", "run_id": strconv.Itoa(8800 + run), "actor": "octocat",
	}
}

// Sign returns the compact serialization of a JWS of claims.
func (is *JWTIssuer) Sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("load: JWT claims: %w", err)
	}
	obj, err := is.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("load: sign a JWT: %w", err)
	}
	return obj.CompactSerialize()
}

// LoginBodies signs n JWTs of JobClaims (runs 0 … n-1, issued at now and
// valid for lifetime) and returns the body of a login to role with each,
// {"role":…,"jwt":…}: credentials, to be sent but never printed.
func (is *JWTIssuer) LoginBodies(role string, n int, now time.Time, lifetime time.Duration) ([][]byte, error) {
	bodies := make([][]byte, n)
	for i := range bodies {
		tok, err := is.Sign(JobClaims(i, now, lifetime))
		if err != nil {
			return nil, err
		}
		bodies[i], _ = json.Marshal(map[string]string{"role": role, "jwt": tok})
	}
	return bodies, nil
}
