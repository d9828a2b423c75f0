package agent

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/config"
)

// The parts of the agent whose connections disable_idle_connections and
// disable_keep_alives name.
const (
	partAutoAuth   = "auto-auth"
	partCaching    = "caching"
	partProxying   = "proxying"
	partTemplating = "templating"
)

// clients are the agent's connections to the server, one per part, so
// that each part's connection settings apply to it alone.
type clients struct {
	auth, templating, proxying *api.Client
}

// clientConfig is the vault block with the environment's overrides, as in
// Vault Agent: VIGIL_ADDR (or VAULT_ADDR) replaces the address, and so on
// for the TLS settings and the timeout. The environment is read by
// api.ConfigFromEnv, as the CLI reads it; its token is returned too (the
// agent's token when there is no auto_auth block).
func clientConfig(v config.Vault, getenv func(string) string) (c api.Config, envToken string, err error) {
	env, err := api.ConfigFromEnv(getenv)
	if err != nil {
		return c, "", fmt.Errorf("agent: %w", err)
	}
	set := func(name string) bool { return getenv("VIGIL_"+name) != "" || getenv("VAULT_"+name) != "" }
	c = api.Config{
		Address: v.Address, CACert: v.CACert, CAPath: v.CAPath,
		ClientCert: v.ClientCert, ClientKey: v.ClientKey,
		TLSServerName: v.TLSServerName, TLSSkipVerify: v.TLSSkipVerify,
		Timeout: env.Timeout,
	}
	if set("ADDR") || c.Address == "" {
		c.Address = env.Address
	}
	if set("SKIP_VERIFY") {
		c.TLSSkipVerify = env.TLSSkipVerify
	}
	for _, o := range []struct{ from, to *string }{
		{&env.CACert, &c.CACert}, {&env.CAPath, &c.CAPath}, {&env.ClientCert, &c.ClientCert},
		{&env.ClientKey, &c.ClientKey}, {&env.TLSServerName, &c.TLSServerName},
	} {
		if *o.from != "" {
			*o.to = *o.from
		}
	}
	return c, env.Token, nil
}

// newClients builds the agent's clients from the configuration and the
// environment, and returns the environment's token.
func newClients(cfg *config.Agent, getenv func(string) string) (clients, string, error) {
	cc, envToken, err := clientConfig(cfg.Vault, getenv)
	if err != nil {
		return clients{}, "", err
	}
	base, err := api.NewClient(cc)
	if err != nil {
		return clients{}, "", fmt.Errorf("agent: the vault block: %w", err)
	}
	part := func(name string, maxConns int) (*api.Client, error) {
		hc := *base.HTTPClient()
		tr, ok := hc.Transport.(*http.Transport)
		if !ok {
			return base, nil
		}
		tr = tr.Clone()
		if slices.Contains(cfg.DisableKeepAlives, name) {
			tr.DisableKeepAlives = true
		}
		if slices.Contains(cfg.DisableIdleConnections, name) {
			// A negative limit keeps no idle connection.
			tr.MaxIdleConnsPerHost = -1
		}
		if maxConns > 0 {
			tr.MaxConnsPerHost = maxConns
		}
		hc.Transport = tr
		return api.NewClient(api.Config{Address: base.Address(), HTTPClient: &hc})
	}
	var c clients
	if c.auth, err = part(partAutoAuth, 0); err != nil {
		return c, "", err
	}
	if c.templating, err = part(partTemplating, cfg.TemplateConfig.MaxConnectionsPerHost); err != nil {
		return c, "", err
	}
	proxyPart := partProxying
	if cfg.Cache != nil {
		proxyPart = partCaching
	}
	if c.proxying, err = part(proxyPart, 0); err != nil {
		return c, "", err
	}
	return c, envToken, nil
}
