package jwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// allAlgs are the algorithms a mount accepts unless jwt_supported_algs
// narrows them: asymmetric only. A function, so that no caller can change
// a shared list.
func allAlgs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512,
		jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512,
		jose.EdDSA,
	}
}

// parseAlgs checks a jwt_supported_algs list: only asymmetric algorithms.
func parseAlgs(names []string) ([]jose.SignatureAlgorithm, error) {
	all := allAlgs()
	if len(names) == 0 {
		return all, nil
	}
	var out []jose.SignatureAlgorithm
	for _, n := range names {
		alg := jose.SignatureAlgorithm(strings.TrimSpace(n))
		if !slices.Contains(all, alg) {
			return nil, fmt.Errorf("unsupported signing algorithm %q: want one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", n)
		}
		out = append(out, alg)
	}
	return out, nil
}

// parsePublicKeys parses jwt_validation_pubkeys: PEM public keys or
// certificates (RSA, ECDSA, Ed25519).
func parsePublicKeys(pems []string) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for i, p := range pems {
		block, _ := pem.Decode([]byte(strings.TrimSpace(p)))
		if block == nil {
			return nil, fmt.Errorf("jwt_validation_pubkeys[%d] is not PEM", i)
		}
		var key any
		var err error
		switch block.Type {
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = c.PublicKey
			}
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("jwt_validation_pubkeys[%d]: %v", i, err)
		}
		switch key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("jwt_validation_pubkeys[%d]: unsupported key type %T", i, key)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// keySource verifies signatures with the keys of one configuration.
type keySource struct {
	version int64
	algs    []jose.SignatureAlgorithm
	static  []crypto.PublicKey // jwt_validation_pubkeys
	// remote: a JWKS URL, or a discovery URL naming one.
	discoveryURL, jwksURL string
	client                *http.Client
	now                   func() time.Time
	logger                *slog.Logger

	fetchMu sync.Mutex // held by the one fetch under way
	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time // last fetch attempt
}

func newKeySource(cfg *configEntry, transport http.RoundTripper, now func() time.Time, logger *slog.Logger) (*keySource, error) {
	algs, err := parseAlgs(cfg.JWTSupportedAlgs)
	if err != nil {
		return nil, err
	}
	ks := &keySource{version: cfg.Version, algs: algs, now: now, logger: logger}
	switch {
	case len(cfg.JWTValidationPubKeys) > 0:
		if ks.static, err = parsePublicKeys(cfg.JWTValidationPubKeys); err != nil {
			return nil, err
		}
	case cfg.JWKSURL != "":
		ks.jwksURL = cfg.JWKSURL
		ks.client, err = httpClient(transport, cfg.JWKSCAPEM)
	case cfg.OIDCDiscoveryURL != "":
		ks.discoveryURL = strings.TrimSuffix(cfg.OIDCDiscoveryURL, "/")
		ks.client, err = httpClient(transport, cfg.OIDCDiscoveryCAPEM)
	default:
		return nil, errors.New("the mount has no key source: configure oidc_discovery_url, jwks_url or jwt_validation_pubkeys")
	}
	if err != nil {
		return nil, err
	}
	return ks, nil
}

// httpClient is a client with the fetch timeout and, when caPEM is set,
// only those CAs trusted.
func httpClient(base http.RoundTripper, caPEM string) (*http.Client, error) {
	rt := base
	if caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("the CA PEM holds no certificate")
		}
		t, ok := base.(*http.Transport)
		if !ok {
			return nil, errors.New("a CA PEM needs an HTTP transport")
		}
		t = t.Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		rt = t
	}
	return &http.Client{Transport: rt, Timeout: fetchTimeout}, nil
}

// verify checks the signature of a compact JWS and returns its payload.
func (ks *keySource) verify(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, ks.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed token or unsupported algorithm: %w", stripInput(err))
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("the token must carry exactly one signature")
	}
	if ks.static != nil {
		for _, k := range ks.static {
			if payload, err := jws.Verify(k); err == nil {
				return payload, nil
			}
		}
		return nil, errors.New("no configured key verifies the signature")
	}
	kid, alg := jws.Signatures[0].Header.KeyID, jws.Signatures[0].Header.Algorithm
	for attempt := 0; attempt < 2; attempt++ {
		set, fresh, err := ks.keySet(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		keys := set.Keys
		if kid != "" {
			keys = set.Key(kid)
		}
		for _, k := range keys {
			// A key is used only as its JWK allows: for signatures, and
			// with its own algorithm when it names one.
			if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != alg) {
				continue
			}
			if payload, err := jws.Verify(k.Key); err == nil {
				return payload, nil
			}
		}
		if fresh || (kid != "" && len(keys) > 0) {
			break // a fresh set, or a known key that did not verify: no refresh helps
		}
	}
	return nil, errors.New("no key of the issuer's key set verifies the signature")
}

// keySet returns the cached key set, fetching it when there is none, when
// it is old, or when refresh is asked and the last fetch is older than
// the refresh interval. fresh reports a set fetched by this call.
//
// One fetch runs at a time, outside mu: while it runs, logins that have a
// cached set are served from it at once instead of waiting on the issuer;
// only logins with no set at all wait for the fetch.
func (ks *keySource) keySet(ctx context.Context, refresh bool) (set *jose.JSONWebKeySet, fresh bool, err error) {
	ks.mu.Lock()
	set, due := ks.set, ks.due(refresh)
	ks.mu.Unlock()
	if !due {
		return cachedSet(set)
	}
	if set == nil {
		ks.fetchMu.Lock()
	} else if !ks.fetchMu.TryLock() {
		return set, false, nil // a fetch is under way: serve the cached set
	}
	defer ks.fetchMu.Unlock()
	ks.mu.Lock()
	if !ks.due(refresh) { // fetched while this call waited
		set, fresh = ks.set, ks.set != set
		ks.mu.Unlock()
		if fresh {
			return set, true, nil
		}
		return cachedSet(set)
	}
	ks.fetched = ks.now()
	ks.mu.Unlock()
	// The fetch serves every login of the mount, so the caller going away
	// must not fail it (it has its own timeout).
	s, err := ks.fetch(context.WithoutCancel(ctx))
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if err != nil {
		if ks.set != nil {
			ks.logger.Warn("jwt: refreshing the issuer's key set failed; keeping the cached one", "error", err)
			return ks.set, false, nil // keep serving the last good set
		}
		return nil, false, err
	}
	ks.set = s
	return s, true, nil
}

// due reports whether keySet must fetch; ks.mu is held.
func (ks *keySource) due(refresh bool) bool {
	age := ks.now().Sub(ks.fetched)
	switch {
	case ks.set == nil:
		return ks.fetched.IsZero() || age >= refreshInterval
	case age >= keySetMaxAge:
		return true
	}
	return refresh && age >= refreshInterval
}

// cachedSet answers with the cached set, or, when the last fetch failed
// and the interval has not passed, says so.
func cachedSet(set *jose.JSONWebKeySet) (*jose.JSONWebKeySet, bool, error) {
	if set == nil {
		return nil, false, errors.New("the issuer's key set could not be fetched; try again shortly")
	}
	return set, false, nil
}

// fetch reads the key set (through the discovery document when the
// source is one).
func (ks *keySource) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	url := ks.jwksURL
	if ks.discoveryURL != "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := getJSON(ctx, ks.client, ks.discoveryURL+"/.well-known/openid-configuration", &doc); err != nil {
			return nil, fmt.Errorf("fetch the OIDC discovery document: %w", err)
		}
		// As OIDC discovery requires, the document is the issuer's own.
		if strings.TrimSuffix(doc.Issuer, "/") != ks.discoveryURL {
			return nil, errors.New("the OIDC discovery document names an issuer other than oidc_discovery_url")
		}
		if doc.JWKSURI == "" {
			return nil, errors.New("the OIDC discovery document names no jwks_uri")
		}
		url = doc.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, ks.client, url, &set); err != nil {
		return nil, fmt.Errorf("fetch the JWKS: %w", err)
	}
	return &set, nil
}

func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchSize+1))
	if err != nil {
		return err
	}
	if len(body) > maxFetchSize {
		return fmt.Errorf("%s answered more than %d bytes", url, maxFetchSize)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s answered malformed JSON", url)
	}
	return nil
}

// stripInput keeps go-jose's parse errors from echoing the token.
func stripInput(err error) error {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return errors.New(msg)
}
