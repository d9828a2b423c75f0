package jwt

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/url"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// configEntry is the mount's configuration.
type configEntry struct {
	OIDCDiscoveryURL     string         `json:"oidc_discovery_url,omitempty"`
	OIDCDiscoveryCAPEM   string         `json:"oidc_discovery_ca_pem,omitempty"`
	JWKSURL              string         `json:"jwks_url,omitempty"`
	JWKSCAPEM            string         `json:"jwks_ca_pem,omitempty"`
	JWTValidationPubKeys []string       `json:"jwt_validation_pubkeys,omitempty"`
	BoundIssuer          string         `json:"bound_issuer,omitempty"`
	JWTSupportedAlgs     []string       `json:"jwt_supported_algs,omitempty"`
	DefaultRole          string         `json:"default_role,omitempty"`
	OIDCClientID         string         `json:"oidc_client_id,omitempty"`
	OIDCClientSecret     string         `json:"oidc_client_secret,omitempty"`
	OIDCResponseMode     string         `json:"oidc_response_mode,omitempty"`
	OIDCResponseTypes    []string       `json:"oidc_response_types,omitempty"`
	NamespaceInState     bool           `json:"namespace_in_state,omitempty"`
	ProviderConfig       map[string]any `json:"provider_config,omitempty"`
	// Version is new with every write (random, so that servers sharing
	// the storage agree), so that the cached key source of an older
	// configuration is dropped.
	Version int64 `json:"version"`
}

func (b *backend) pathConfig() *framework.Path {
	str := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeString, Description: desc}
	}
	return &framework.Path{
		Pattern: `config`,
		Fields: map[string]*framework.FieldSchema{
			"oidc_discovery_url":     str("The issuer URL; its /.well-known/openid-configuration names the JWKS."),
			"oidc_discovery_ca_pem":  str("CA certificates (PEM) to trust for the discovery URL."),
			"jwks_url":               str("A JWKS URL to verify signatures with."),
			"jwks_ca_pem":            str("CA certificates (PEM) to trust for the JWKS URL."),
			"jwt_validation_pubkeys": {Type: framework.TypeCommaStringSlice, Description: "Public keys (PEM) to verify signatures with."},
			"bound_issuer":           str("The iss claim every token must carry."),
			"jwt_supported_algs":     {Type: framework.TypeCommaStringSlice, Description: "Accepted signing algorithms (all asymmetric ones when empty)."},
			"default_role":           str("The role of a login that names none."),
			"oidc_client_id":         str("OIDC client id (browser flow)."),
			"oidc_client_secret":     {Type: framework.TypeString, Sensitive: true, Description: "OIDC client secret (browser flow); never returned."},
			"oidc_response_mode":     str("OIDC response mode (browser flow)."),
			"oidc_response_types":    {Type: framework.TypeCommaStringSlice, Description: "OIDC response types (browser flow)."},
			"namespace_in_state":     {Type: framework.TypeBool},
			"provider_config":        {Type: framework.TypeMap},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.readConfig, Summary: "Read the configuration."},
			logical.UpdateOperation: {Handler: b.writeConfig, Summary: "Configure the key source and issuer."},
		},
		HelpSynopsis: "Where signing keys come from (discovery, JWKS or public keys), the issuer, the algorithms.",
	}
}

func loadConfig(ctx context.Context, s logical.Storage) (*configEntry, error) {
	var c configEntry
	found, err := framework.GetJSON(ctx, s, configKey, &c)
	if err != nil || !found {
		return nil, err
	}
	return &c, nil
}

func (b *backend) readConfig(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	c, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, logical.ErrNotFound
	}
	pubkeys := c.JWTValidationPubKeys
	if pubkeys == nil {
		pubkeys = []string{}
	}
	return &logical.Response{Data: map[string]any{
		"oidc_discovery_url":     c.OIDCDiscoveryURL,
		"oidc_discovery_ca_pem":  c.OIDCDiscoveryCAPEM,
		"jwks_url":               c.JWKSURL,
		"jwks_ca_pem":            c.JWKSCAPEM,
		"jwt_validation_pubkeys": pubkeys,
		"bound_issuer":           c.BoundIssuer,
		"jwt_supported_algs":     nonNil(c.JWTSupportedAlgs),
		"default_role":           c.DefaultRole,
		"oidc_client_id":         c.OIDCClientID,
		"oidc_response_mode":     c.OIDCResponseMode,
		"oidc_response_types":    nonNil(c.OIDCResponseTypes),
		"namespace_in_state":     c.NamespaceInState,
		"provider_config":        c.ProviderConfig,
	}}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (b *backend) writeConfig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	c := &configEntry{
		OIDCDiscoveryURL:     d.String("oidc_discovery_url"),
		OIDCDiscoveryCAPEM:   d.String("oidc_discovery_ca_pem"),
		JWKSURL:              d.String("jwks_url"),
		JWKSCAPEM:            d.String("jwks_ca_pem"),
		JWTValidationPubKeys: d.StringSlice("jwt_validation_pubkeys"),
		BoundIssuer:          d.String("bound_issuer"),
		JWTSupportedAlgs:     d.StringSlice("jwt_supported_algs"),
		DefaultRole:          d.String("default_role"),
		OIDCClientID:         d.String("oidc_client_id"),
		OIDCClientSecret:     d.String("oidc_client_secret"),
		OIDCResponseMode:     d.String("oidc_response_mode"),
		OIDCResponseTypes:    d.StringSlice("oidc_response_types"),
		NamespaceInState:     d.Bool("namespace_in_state"),
		ProviderConfig:       d.Map("provider_config"),
		Version:              rand.Int64(),
	}
	sources := 0
	for _, set := range []bool{c.OIDCDiscoveryURL != "", c.JWKSURL != "", len(c.JWTValidationPubKeys) > 0} {
		if set {
			sources++
		}
	}
	switch {
	case sources == 0:
		return nil, logical.BadRequest("exactly one of oidc_discovery_url, jwks_url or jwt_validation_pubkeys must be set")
	case sources > 1:
		return nil, logical.BadRequest("oidc_discovery_url, jwks_url and jwt_validation_pubkeys are mutually exclusive")
	case c.OIDCDiscoveryCAPEM != "" && c.OIDCDiscoveryURL == "":
		return nil, logical.BadRequest("oidc_discovery_ca_pem needs oidc_discovery_url")
	case c.JWKSCAPEM != "" && c.JWKSURL == "":
		return nil, logical.BadRequest("jwks_ca_pem needs jwks_url")
	}
	for _, u := range []string{c.OIDCDiscoveryURL, c.JWKSURL} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, logical.BadRequest("invalid URL %q: want http(s)://host/...", u)
		}
	}
	// Build the key source now: bad keys or algorithms, and an issuer
	// that cannot be reached, are the writer's mistakes (400).
	ks, err := newKeySource(c, b.transport, b.now, b.logger)
	if err != nil {
		return nil, logical.BadRequest("%s", err)
	}
	if ks.remote != nil {
		if err := ks.remote.Load(ctx); err != nil {
			return nil, logical.BadRequest("error checking the key source: %s", err)
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, configKey, raw); err != nil {
		return nil, err
	}
	b.use(ks)
	return nil, nil
}
