package jwt

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/internal/jwks"
)

// keySource verifies signatures with the keys of one configuration: the
// jwt_validation_pubkeys, or the remote key set of jwks_url or
// oidc_discovery_url.
type keySource struct {
	version int64
	algs    []jose.SignatureAlgorithm // jwt_supported_algs
	static  []crypto.PublicKey        // jwt_validation_pubkeys
	remote  *jwks.Remote
}

func newKeySource(cfg *configEntry, transport http.RoundTripper, now func() time.Time, logger *slog.Logger) (*keySource, error) {
	algs, err := jwks.ParseAlgorithms(cfg.JWTSupportedAlgs)
	if err != nil {
		return nil, err
	}
	ks := &keySource{version: cfg.Version, algs: algs}
	remote := jwks.Config{Transport: transport, Now: now, Logger: logger}
	switch {
	case len(cfg.JWTValidationPubKeys) > 0:
		if ks.static, err = jwks.ParsePublicKeys("jwt_validation_pubkeys", cfg.JWTValidationPubKeys, jwks.FirstBlock); err != nil {
			return nil, err
		}
	case cfg.JWKSURL != "":
		remote.JWKSURL, remote.CAPEM = cfg.JWKSURL, cfg.JWKSCAPEM
		if ks.remote, err = jwks.NewRemote(remote); err != nil {
			return nil, fmt.Errorf("jwks_ca_pem: %w", err)
		}
	case cfg.OIDCDiscoveryURL != "":
		// The discovery document must name oidc_discovery_url itself.
		remote.DiscoveryURL, remote.CAPEM, remote.IssuerField = cfg.OIDCDiscoveryURL, cfg.OIDCDiscoveryCAPEM, "oidc_discovery_url"
		if ks.remote, err = jwks.NewRemote(remote); err != nil {
			return nil, fmt.Errorf("oidc_discovery_ca_pem: %w", err)
		}
	default:
		return nil, errors.New("the mount has no key source: configure oidc_discovery_url, jwks_url or jwt_validation_pubkeys")
	}
	return ks, nil
}

// verify checks the signature of a compact JWS and returns its payload.
func (ks *keySource) verify(ctx context.Context, token string) ([]byte, error) {
	jws, err := jwks.ParseSigned(token, ks.algs)
	if err != nil {
		return nil, err
	}
	if ks.remote == nil {
		return jwks.VerifyWithKeys(jws, ks.static)
	}
	return ks.remote.Verify(ctx, jws)
}
