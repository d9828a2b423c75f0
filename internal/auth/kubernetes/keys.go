package kubernetes

import (
	"fmt"
	"sync"

	"github.com/vigil-secrets/vigil/internal/jwks"
)

// keyCache holds the key set of the current configuration in jwks mode.
type keyCache struct {
	mu      sync.Mutex
	version int64 // the configuration's
	remote  *jwks.Remote
}

// get returns the key set of cfg, reusing the cached one while the
// configuration is the same and making a new one with newRemote when not.
func (c *keyCache) get(cfg *configEntry, newRemote func(*configEntry) (*jwks.Remote, error)) (*jwks.Remote, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remote != nil && c.version == cfg.Version {
		return c.remote, nil
	}
	r, err := newRemote(cfg)
	if err != nil {
		return nil, err
	}
	c.version, c.remote = cfg.Version, r
	return r, nil
}

// use makes r, the key set of a configuration just written (already
// fetched), the cached one.
func (c *keyCache) use(cfg *configEntry, r *jwks.Remote) {
	c.mu.Lock()
	c.version, c.remote = cfg.Version, r
	c.mu.Unlock()
}

// newRemote is the key set of a jwks-mode configuration: jwks_url, or the
// JWKS oidc_discovery_url names, whose discovery document must name the
// configured issuer.
func (b *backend) newRemote(cfg *configEntry) (*jwks.Remote, error) {
	r, err := jwks.NewRemote(jwks.Config{
		JWKSURL:      cfg.JWKSURL,
		DiscoveryURL: cfg.OIDCDiscoveryURL,
		Issuer:       cfg.Issuer,
		IssuerField:  "the configured issuer",
		CAPEM:        cfg.JWKSCAPEM,
		Transport:    b.transport,
		Now:          b.now,
		Logger:       b.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("jwks_ca_pem: %w", err)
	}
	return r, nil
}
