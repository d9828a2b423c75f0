package kubernetes

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// signingAlgs are the algorithms a service-account token may be signed
// with: asymmetric only, so that neither "none" nor an HMAC keyed with a
// public key can pass.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// parseJWS parses a compact JWS signed with one of [signingAlgs]. Its
// errors never quote the token.
func parseJWS(token string) (*jose.JSONWebSignature, error) {
	if len(token) > maxTokenLen {
		return nil, fmt.Errorf("the JWT is longer than %d bytes", maxTokenLen)
	}
	jws, err := jose.ParseSigned(token, signingAlgs)
	if err != nil {
		return nil, errors.New("the JWT is malformed or not signed with an accepted asymmetric algorithm")
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("the JWT must carry exactly one signature")
	}
	return jws, nil
}

// verifyStatic checks jws against the configured pem_keys.
func verifyStatic(jws *jose.JSONWebSignature, keys []crypto.PublicKey) ([]byte, error) {
	for _, k := range keys {
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("no key of pem_keys verifies the JWT's signature")
}

// keyCache holds the key source of the current configuration in jwks mode.
type keyCache struct {
	mu sync.Mutex
	ks *keySource
}

// get returns the key source of cfg, reusing the cached one while the
// configuration is the same.
func (c *keyCache) get(cfg *configEntry, base *http.Transport, now func() time.Time) (*keySource, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ks != nil && c.ks.version == cfg.Version {
		return c.ks, nil
	}
	ks, err := newKeySource(cfg, base, now)
	if err != nil {
		return nil, err
	}
	c.ks = ks
	return ks, nil
}

// use makes ks, the key source of a configuration just written, the
// cached one.
func (c *keyCache) use(ks *keySource) {
	c.mu.Lock()
	c.ks = ks
	c.mu.Unlock()
}

// keySource verifies signatures with the key set of a cluster's
// service-account issuer.
type keySource struct {
	version      int64
	issuer       string
	discoveryURL string
	jwksURL      string
	client       *http.Client
	now          func() time.Time

	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time // last fetch attempt
}

func newKeySource(cfg *configEntry, base *http.Transport, now func() time.Time) (*keySource, error) {
	client, err := httpClient(base, cfg.JWKSCAPEM, fetchTimeout)
	if err != nil {
		return nil, fmt.Errorf("jwks_ca_pem: %w", err)
	}
	return &keySource{
		version:      cfg.Version,
		issuer:       cfg.Issuer,
		discoveryURL: strings.TrimSuffix(cfg.OIDCDiscoveryURL, "/"),
		jwksURL:      cfg.JWKSURL,
		client:       client,
		now:          now,
	}, nil
}

// httpClient is a client with timeout, no redirects (a bearer token must
// not follow one) and, when caPEM is set, only those CAs trusted.
func httpClient(base *http.Transport, caPEM string, timeout time.Duration) (*http.Client, error) {
	t := base.Clone()
	if caPEM != "" {
		pool, err := certPool(caPEM)
		if err != nil {
			return nil, err
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirects are not followed")
		},
	}, nil
}

// verify checks the signature of jws with the issuer's keys and returns
// the payload. A key id missing from the cached set makes at most one
// fetch per refresh interval.
func (ks *keySource) verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	kid := jws.Signatures[0].Header.KeyID
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
			if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
				continue
			}
			if payload, err := jws.Verify(k.Key); err == nil {
				return payload, nil
			}
		}
		if fresh || (kid != "" && len(keys) > 0) {
			break // a fresh set, or a known key that did not verify: no fetch helps
		}
	}
	if kid != "" {
		return nil, errors.New("no key of the issuer's key set with the JWT's key id verifies its signature")
	}
	return nil, errors.New("no key of the issuer's key set verifies the JWT's signature")
}

// keySet returns the cached key set, fetching it when there is none, when
// it is old, or when refresh is asked and the last fetch is older than the
// refresh interval. fresh reports a set fetched by this call.
func (ks *keySource) keySet(ctx context.Context, refresh bool) (set *jose.JSONWebKeySet, fresh bool, err error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.now()
	age := now.Sub(ks.fetched)
	switch {
	case ks.set == nil && !ks.fetched.IsZero() && age < refreshInterval:
		return nil, false, errors.New("the issuer's key set could not be fetched; try again shortly")
	case ks.set != nil && age < keySetMaxAge && (!refresh || age < refreshInterval):
		return ks.set, false, nil
	}
	ks.fetched = now
	s, err := ks.fetch(ctx)
	if err != nil {
		if ks.set != nil {
			return ks.set, false, nil // keep serving the last good set
		}
		return nil, false, err
	}
	ks.set = s
	return s, true, nil
}

// fetch reads the key set, through the discovery document when the source
// is one; the document must name the configured issuer.
func (ks *keySource) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	u := ks.jwksURL
	if ks.discoveryURL != "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := getJSON(ctx, ks.client, ks.discoveryURL+"/.well-known/openid-configuration", &doc); err != nil {
			return nil, fmt.Errorf("fetch the OIDC discovery document: %w", err)
		}
		if doc.Issuer != ks.issuer {
			return nil, fmt.Errorf("the OIDC discovery document names issuer %q, not the configured %q", doc.Issuer, ks.issuer)
		}
		if doc.JWKSURI == "" {
			return nil, errors.New("the OIDC discovery document names no jwks_uri")
		}
		u = doc.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, ks.client, u, &set); err != nil {
		return nil, fmt.Errorf("fetch the JWKS: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the JWKS holds no key")
	}
	return &set, nil
}

// getJSON GETs url into v, with the fetch timeout and a size limit.
func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodySize+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if len(body) > maxBodySize {
		return fmt.Errorf("%s answered more than %d bytes", url, maxBodySize)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s answered malformed JSON", url)
	}
	return nil
}
