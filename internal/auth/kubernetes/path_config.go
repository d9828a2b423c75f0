package kubernetes

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/jwks"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Token validation modes.
const (
	validationTokenReview = "tokenreview"
	validationJWKS        = "jwks"
)

// legacyIssuer is the iss of legacy tokens, and the issuer checked when
// issuer validation is on and none is configured.
const legacyIssuer = "kubernetes/serviceaccount"

// configEntry is the mount's configuration.
type configEntry struct {
	KubernetesHost       string   `json:"kubernetes_host"`
	KubernetesCACert     string   `json:"kubernetes_ca_cert,omitempty"`
	TokenReviewerJWT     string   `json:"token_reviewer_jwt,omitempty"`
	PEMKeys              []string `json:"pem_keys,omitempty"`
	Issuer               string   `json:"issuer,omitempty"`
	DisableISSValidation bool     `json:"disable_iss_validation"`
	DisableLocalCAJWT    bool     `json:"disable_local_ca_jwt"`
	TokenValidation      string   `json:"token_validation"`
	OIDCDiscoveryURL     string   `json:"oidc_discovery_url,omitempty"`
	JWKSURL              string   `json:"jwks_url,omitempty"`
	JWKSCAPEM            string   `json:"jwks_ca_pem,omitempty"`
	// Version is new with every write (random, so that servers sharing the
	// storage agree): cached key sets of an older configuration are dropped.
	Version int64 `json:"version"`
}

func (b *backend) pathConfig() *framework.Path {
	str := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeString, Description: desc}
	}
	return &framework.Path{
		Pattern: `config`,
		Fields: map[string]*framework.FieldSchema{
			"kubernetes_host":        str("The Kubernetes API server's URL (https://host:port)."),
			"kubernetes_ca_cert":     str("PEM CA certificate(s) of the API server."),
			"token_reviewer_jwt":     {Type: framework.TypeString, Sensitive: true, Description: "The bearer token of TokenReview calls; never returned."},
			"pem_keys":               {Type: framework.TypeCommaStringSlice, Description: "PEM public keys or certificates to check the JWT's signature with locally."},
			"issuer":                 str("The expected iss claim."),
			"disable_iss_validation": {Type: framework.TypeBool, Default: true, Description: "Skip the iss check in tokenreview mode (default true)."},
			"disable_local_ca_jwt":   {Type: framework.TypeBool, Description: "Do not use the pod's own CA and token when unconfigured."},
			"token_validation":       str(`"tokenreview" (the default) or "jwks" (validate locally against the cluster's issuer keys).`),
			"oidc_discovery_url":     str("jwks mode: the service-account issuer URL; its /.well-known/openid-configuration names the JWKS."),
			"jwks_url":               str("jwks mode: the cluster's JWKS URL."),
			"jwks_ca_pem":            str("jwks mode: PEM CA certificate(s) to trust for oidc_discovery_url or jwks_url."),
			// Accepted for Vault clients; annotations need API reads Vigil does not make.
			"use_annotations_as_alias_metadata": {Type: framework.TypeBool, Description: "Not supported; must be false."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.readConfig, Summary: "Read the configuration."},
			logical.UpdateOperation: {Handler: b.writeConfig, Summary: "Configure the cluster."},
		},
		HelpSynopsis: "How logins are checked: the Kubernetes API (TokenReview) or the cluster's issuer keys (jwks).",
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
	return &logical.Response{Data: map[string]any{
		"kubernetes_host":                   c.KubernetesHost,
		"kubernetes_ca_cert":                c.KubernetesCACert,
		"token_reviewer_jwt_set":            c.TokenReviewerJWT != "",
		"pem_keys":                          nonNil(c.PEMKeys),
		"issuer":                            c.Issuer,
		"disable_iss_validation":            c.DisableISSValidation,
		"disable_local_ca_jwt":              c.DisableLocalCAJWT,
		"use_annotations_as_alias_metadata": false,
		"token_validation":                  c.TokenValidation,
		"oidc_discovery_url":                c.OIDCDiscoveryURL,
		"jwks_url":                          c.JWKSURL,
		"jwks_ca_pem":                       c.JWKSCAPEM,
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
		KubernetesHost:       strings.TrimSpace(d.String("kubernetes_host")),
		KubernetesCACert:     strings.TrimSpace(d.String("kubernetes_ca_cert")),
		TokenReviewerJWT:     strings.TrimSpace(d.String("token_reviewer_jwt")),
		PEMKeys:              d.StringSlice("pem_keys"),
		Issuer:               strings.TrimSpace(d.String("issuer")),
		DisableISSValidation: d.Bool("disable_iss_validation"),
		DisableLocalCAJWT:    d.Bool("disable_local_ca_jwt"),
		TokenValidation:      strings.ToLower(strings.TrimSpace(d.String("token_validation"))),
		OIDCDiscoveryURL:     strings.TrimSpace(d.String("oidc_discovery_url")),
		JWKSURL:              strings.TrimSpace(d.String("jwks_url")),
		JWKSCAPEM:            strings.TrimSpace(d.String("jwks_ca_pem")),
		Version:              rand.Int64(),
	}
	if d.Bool("use_annotations_as_alias_metadata") {
		return nil, logical.BadRequest("use_annotations_as_alias_metadata is not supported")
	}
	if c.TokenValidation == "" {
		c.TokenValidation = validationTokenReview
	}
	if err := c.validate(); err != nil {
		return nil, logical.BadRequest("%s", err)
	}
	var remote *jwks.Remote
	if c.TokenValidation == validationJWKS {
		// Fetch the key set now: an issuer that cannot be reached is the
		// writer's mistake (400), found before any login.
		var err error
		if remote, err = b.newRemote(c); err != nil {
			return nil, logical.BadRequest("%s", err)
		}
		if err := remote.Load(ctx); err != nil {
			return nil, logical.BadRequest("error checking the key source: %s", err)
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, configKey, raw); err != nil {
		return nil, fmt.Errorf("kubernetes: write config: %w", err)
	}
	if remote != nil {
		b.keys.use(c, remote)
	}
	return nil, nil
}

// validate checks a configuration about to be written. Its errors are the
// writer's mistakes and never quote the reviewer JWT.
func (c *configEntry) validate() error {
	switch c.TokenValidation {
	case validationTokenReview:
		if c.KubernetesHost == "" {
			return errors.New("no host given: kubernetes_host is required")
		}
		if c.OIDCDiscoveryURL != "" || c.JWKSURL != "" || c.JWKSCAPEM != "" {
			return errors.New(`oidc_discovery_url, jwks_url and jwks_ca_pem need token_validation = "jwks"`)
		}
	case validationJWKS:
		switch {
		case c.OIDCDiscoveryURL == "" && c.JWKSURL == "":
			return errors.New(`token_validation = "jwks" needs oidc_discovery_url or jwks_url`)
		case c.OIDCDiscoveryURL != "" && c.JWKSURL != "":
			return errors.New("oidc_discovery_url and jwks_url are mutually exclusive")
		case c.Issuer == "":
			return errors.New(`token_validation = "jwks" needs issuer`)
		case len(c.PEMKeys) > 0:
			return errors.New(`pem_keys cannot be used with token_validation = "jwks": the keys come from the JWKS`)
		case c.TokenReviewerJWT != "":
			return errors.New(`token_reviewer_jwt cannot be used with token_validation = "jwks": no TokenReview is made`)
		}
		for name, u := range map[string]string{"oidc_discovery_url": c.OIDCDiscoveryURL, "jwks_url": c.JWKSURL} {
			if u == "" {
				continue
			}
			if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
				return fmt.Errorf("invalid %s %q: want http(s)://host/...", name, u)
			}
		}
		if c.JWKSCAPEM != "" {
			if _, err := jwks.CertPool(c.JWKSCAPEM); err != nil {
				return fmt.Errorf("jwks_ca_pem: %w", err)
			}
		}
	default:
		return fmt.Errorf(`invalid token_validation %q: want "tokenreview" or "jwks"`, c.TokenValidation)
	}
	if c.KubernetesHost != "" {
		if _, err := hostURL(c.KubernetesHost); err != nil {
			return err
		}
	}
	if c.KubernetesCACert != "" {
		if _, err := jwks.CertPool(c.KubernetesCACert); err != nil {
			return fmt.Errorf("kubernetes_ca_cert: %w", err)
		}
	}
	if _, err := parsePEMKeys(c.PEMKeys); err != nil {
		return err
	}
	return nil
}

// hostURL turns kubernetes_host into the URL TokenReviews are posted to
// the prefix of: a bare host:port means https.
func hostURL(host string) (*url.URL, error) {
	h := host
	if !strings.Contains(h, "://") {
		h = "https://" + h
	}
	u, err := url.Parse(h)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid kubernetes_host %q: want https://host[:port]", host)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// parsePEMKeys parses pem_keys: PEM public keys or certificates, RSA,
// ECDSA or Ed25519, every block of an entry a key (an API server's
// service-account key file may hold several).
func parsePEMKeys(pems []string) ([]crypto.PublicKey, error) {
	return jwks.ParsePublicKeys("pem_keys", pems, jwks.EveryBlock)
}
