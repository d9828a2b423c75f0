package jwks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// discoveryPath is where an OIDC issuer serves its discovery document.
const discoveryPath = "/.well-known/openid-configuration"

// Config says where a [Remote] finds its key set, and gives it what it
// depends on.
type Config struct {
	// JWKSURL is the key set's URL. DiscoveryURL is instead an OIDC
	// issuer's URL, whose discovery document names the key set
	// (jwks_uri). Exactly one of them is set.
	JWKSURL      string
	DiscoveryURL string
	// Issuer is the issuer the discovery document must name. When empty
	// it is DiscoveryURL itself, as OIDC Discovery requires. A trailing
	// '/' is ignored on both sides.
	Issuer string
	// IssuerField says where the expected issuer comes from, for errors
	// ("oidc_discovery_url", "the configured issuer"); "the discovery URL"
	// when empty.
	IssuerField string
	// CAPEM, when set, holds the only CAs trusted for the fetches.
	CAPEM string
	// Transport makes the fetches (http.DefaultTransport when nil); with
	// CAPEM it must be an *http.Transport.
	Transport http.RoundTripper
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives the failed refreshes (discarded when nil).
	Logger *slog.Logger
}

// Remote verifies signatures with an issuer's key set, fetched over HTTP
// and cached. It is safe for concurrent use; one serves every login of a
// configuration, and a new configuration gets a new one.
type Remote struct {
	jwksURL      string
	discoveryURL string // without a trailing '/'
	issuer       string // without a trailing '/'
	issuerField  string
	client       *http.Client
	now          func() time.Time
	logger       *slog.Logger

	fetchMu sync.Mutex // held by the one fetch under way
	mu      sync.Mutex // guards set and fetched
	set     *jose.JSONWebKeySet
	fetched time.Time // the last fetch attempt
}

// NewRemote returns the [Remote] of cfg. It fetches nothing: the first
// [Remote.Verify] or [Remote.Load] does.
func NewRemote(cfg Config) (*Remote, error) {
	if (cfg.JWKSURL == "") == (cfg.DiscoveryURL == "") {
		return nil, errors.New("a remote key set needs a JWKS URL or a discovery URL, and not both")
	}
	client, err := HTTPClient(cfg.Transport, cfg.CAPEM, FetchTimeout)
	if err != nil {
		return nil, err
	}
	r := &Remote{
		jwksURL:      cfg.JWKSURL,
		discoveryURL: strings.TrimSuffix(cfg.DiscoveryURL, "/"),
		issuer:       strings.TrimSuffix(cfg.Issuer, "/"),
		issuerField:  cfg.IssuerField,
		client:       client,
		now:          cfg.Now,
		logger:       cfg.Logger,
	}
	if r.issuer == "" {
		r.issuer = r.discoveryURL
	}
	if r.issuerField == "" {
		r.issuerField = "the discovery URL"
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Verify checks the signature of jws (as [ParseSigned] returns it) with
// the issuer's key set and returns the payload. The token's key id, when
// it has one, picks the keys to try. A key id missing from the cached set,
// or a token that no cached key verifies, makes at most one fetch per
// [RefreshInterval].
func (r *Remote) Verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if err := checkSignature(jws); err != nil {
		return nil, err
	}
	kid, alg := jws.Signatures[0].Header.KeyID, jws.Signatures[0].Header.Algorithm
	for attempt := 0; attempt < 2; attempt++ {
		set, fresh, err := r.keySet(ctx, attempt > 0)
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
	if kid != "" {
		return nil, errors.New("no key of the issuer's key set with the token's key id verifies its signature")
	}
	return nil, errors.New("no key of the issuer's key set verifies the signature")
}

// Load makes sure a key set is cached, fetching one when there is none
// (or the cached one is older than [MaxAge]), and says why none could be
// had. A configuration write calls it, so that an issuer that cannot be
// reached is found before any login.
func (r *Remote) Load(ctx context.Context) error {
	_, _, err := r.keySet(ctx, false)
	return err
}

// keySet returns the cached key set, fetching it when there is none, when
// it is older than MaxAge, or when refresh is asked and the last fetch is
// older than RefreshInterval. fresh reports a set fetched by this call.
//
// One fetch runs at a time, outside mu: while it runs, callers that have
// a cached set are served from it at once instead of waiting on the
// issuer; only callers with no set at all wait for the fetch.
func (r *Remote) keySet(ctx context.Context, refresh bool) (set *jose.JSONWebKeySet, fresh bool, err error) {
	r.mu.Lock()
	set, due := r.set, r.due(refresh)
	r.mu.Unlock()
	if !due {
		return cachedSet(set)
	}
	if set == nil {
		r.fetchMu.Lock()
	} else if !r.fetchMu.TryLock() {
		return set, false, nil // a fetch is under way: serve the cached set
	}
	defer r.fetchMu.Unlock()
	r.mu.Lock()
	if !r.due(refresh) { // fetched while this call waited
		set, fresh = r.set, r.set != set
		r.mu.Unlock()
		if fresh {
			return set, true, nil
		}
		return cachedSet(set)
	}
	r.fetched = r.now()
	r.mu.Unlock()
	// The fetch serves every caller of this key set, so the one that
	// started it going away must not fail it (it has its own timeout).
	s, err := r.fetch(context.WithoutCancel(ctx))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.set != nil {
			// The error names the URL (never a token).
			r.logger.Warn("refreshing the issuer's key set failed; keeping the cached one", "error", err)
			return r.set, false, nil // keep serving the last good set
		}
		return nil, false, err
	}
	r.set = s
	return s, true, nil
}

// due reports whether keySet must fetch; r.mu is held.
func (r *Remote) due(refresh bool) bool {
	age := r.now().Sub(r.fetched)
	switch {
	case r.set == nil:
		return r.fetched.IsZero() || age >= RefreshInterval
	case age >= MaxAge:
		return true
	}
	return refresh && age >= RefreshInterval
}

// cachedSet answers with the cached set or, when the last fetch failed
// and the interval has not passed, says so.
func cachedSet(set *jose.JSONWebKeySet) (*jose.JSONWebKeySet, bool, error) {
	if set == nil {
		return nil, false, errors.New("the issuer's key set could not be fetched; try again shortly")
	}
	return set, false, nil
}

// fetch reads the key set, through the discovery document when the source
// is one.
func (r *Remote) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	u := r.jwksURL
	if r.discoveryURL != "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := getJSON(ctx, r.client, r.discoveryURL+discoveryPath, &doc); err != nil {
			return nil, fmt.Errorf("fetch the OIDC discovery document: %w", err)
		}
		// The document must be the expected issuer's own.
		if strings.TrimSuffix(doc.Issuer, "/") != r.issuer {
			return nil, fmt.Errorf("the OIDC discovery document names issuer %q, an issuer other than %s (%q)", clip(doc.Issuer), r.issuerField, r.issuer)
		}
		if doc.JWKSURI == "" {
			return nil, errors.New("the OIDC discovery document names no jwks_uri")
		}
		u = doc.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, r.client, u, &set); err != nil {
		return nil, fmt.Errorf("fetch the JWKS: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the JWKS holds no key")
	}
	return &set, nil
}

// clip shortens a value a remote server chose, for an error message.
func clip(s string) string {
	const n = 200
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
