// Package jwt is the JWT/OIDC auth method (spec §6.2), mounted as type
// "jwt" or "oidc": a workload logs in with a JSON Web Token its platform
// issued (a CI job's OIDC token, a cloud workload identity) and gets a
// token shaped by the role whose bounds the JWT's claims meet.
//
// The package verifies signatures with keys from one source per mount: an
// OIDC discovery document (and the JWKS it names), a JWKS URL, or public
// keys given in the configuration; internal/jwks, shared with the
// Kubernetes method, does the verifying and the fetching. Only asymmetric
// algorithms are accepted (RS, PS and ES at 256, 384 and 512 bits, and
// EdDSA); "none" and every HMAC algorithm are refused, so a token "signed"
// with a public key as an HMAC secret cannot pass, and a JWK that names an
// algorithm verifies with that one only. Remote key sets are fetched with
// a timeout, following no redirect, and cached; an unknown key id makes
// at most one fetch per refresh interval, so forged key ids cannot make
// the server hammer the issuer, and a failed refresh keeps the last good
// set. A discovery document must name oidc_discovery_url as its issuer.
//
// A JWT, like any credential, goes into no error message and no log line.
// The browser flow of OIDC (auth_url and callback) is not served yet: a
// role of type "oidc" cannot be used to log in.
//
// # Storage layout
//
//	config        the mount's configuration (configEntry)
//	role/<name>   a role (roleEntry); names are lowercase
package jwt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Storage keys.
const (
	configKey  = "config"
	rolePrefix = "role/"
)

// Factory builds a JWT/OIDC backend for one mount.
func Factory(_ context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	if conf == nil {
		return nil, errors.New("jwt: nil backend config")
	}
	return newBackend(conf, http.DefaultTransport)
}

// backend is the JWT/OIDC auth method of one mount.
type backend struct {
	*framework.Backend
	now    func() time.Time
	logger *slog.Logger
	// transport makes the requests for discovery documents and key sets
	// (each source's CA is added on top of it).
	transport http.RoundTripper

	// roleMu serializes role writes (each reads, changes and writes the
	// role back).
	roleMu sync.Mutex

	// keysMu guards keys, the key source of the current configuration;
	// nil until the first login after a configuration change.
	keysMu sync.Mutex
	keys   *keySource
}

var (
	_ logical.Backend       = (*backend)(nil)
	_ logical.SpecialPather = (*backend)(nil)
)

func newBackend(conf *logical.BackendConfig, transport http.RoundTripper) (*backend, error) {
	b := &backend{now: conf.Now, logger: conf.Logger, transport: transport}
	if b.now == nil {
		b.now = time.Now
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	paths := []*framework.Path{
		b.pathLogin(),
		b.pathConfig(),
		b.pathRoleList(),
		b.pathRole(),
	}
	fb, err := framework.NewBackend(backendHelp, paths,
		framework.WithSpecialPaths(logical.PathsSpecial{Unauthenticated: []string{"login"}}),
		framework.WithAuthRenew(b.renew),
	)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	b.Backend = fb
	return b, nil
}

const backendHelp = `The JWT/OIDC auth method: log in with a JSON Web Token whose signature
and claims meet a role's bounds (a CI job's OIDC token, a workload identity).`

// source returns the key source of cfg, reusing the cached one while the
// configuration is the same.
func (b *backend) source(cfg *configEntry) (*keySource, error) {
	b.keysMu.Lock()
	defer b.keysMu.Unlock()
	if b.keys != nil && b.keys.version == cfg.Version {
		return b.keys, nil
	}
	ks, err := newKeySource(cfg, b.transport, b.now, b.logger)
	if err != nil {
		return nil, err
	}
	b.keys = ks
	return ks, nil
}

// use makes ks, the key source of a configuration just written (its key
// set already fetched), the cached one.
func (b *backend) use(ks *keySource) {
	b.keysMu.Lock()
	b.keys = ks
	b.keysMu.Unlock()
}
