package agent

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

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
// for the TLS settings.
func clientConfig(v config.Vault, getenv func(string) string) (api.Config, error) {
	get := func(name string) string {
		if s := getenv("VIGIL_" + name); s != "" {
			return s
		}
		return getenv("VAULT_" + name)
	}
	c := api.Config{
		Address: v.Address, CACert: v.CACert, CAPath: v.CAPath,
		ClientCert: v.ClientCert, ClientKey: v.ClientKey,
		TLSServerName: v.TLSServerName, TLSSkipVerify: v.TLSSkipVerify,
	}
	for _, o := range []struct {
		env string
		to  *string
	}{
		{"ADDR", &c.Address}, {"CACERT", &c.CACert}, {"CAPATH", &c.CAPath},
		{"CLIENT_CERT", &c.ClientCert}, {"CLIENT_KEY", &c.ClientKey}, {"TLS_SERVER_NAME", &c.TLSServerName},
	} {
		if s := get(o.env); s != "" {
			*o.to = s
		}
	}
	if s := get("SKIP_VERIFY"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return c, fmt.Errorf("invalid VIGIL_SKIP_VERIFY %q: want true or false", s)
		}
		c.TLSSkipVerify = b
	}
	if s := get("CLIENT_TIMEOUT"); s != "" {
		d, err := api.ParseDuration(s)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("invalid VIGIL_CLIENT_TIMEOUT %q: want a positive duration such as 30s", s)
		}
		c.Timeout = d
	}
	if c.Address == "" {
		c.Address = api.DefaultAddress
	}
	return c, nil
}

// newClients builds the agent's clients from the configuration.
func newClients(cfg *config.Agent, getenv func(string) string) (clients, error) {
	cc, err := clientConfig(cfg.Vault, getenv)
	if err != nil {
		return clients{}, err
	}
	base, err := api.NewClient(cc)
	if err != nil {
		return clients{}, fmt.Errorf("agent: the vault block: %w", err)
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
		return c, err
	}
	if c.templating, err = part(partTemplating, cfg.TemplateConfig.MaxConnectionsPerHost); err != nil {
		return c, err
	}
	proxyPart := partProxying
	if cfg.Cache != nil {
		proxyPart = partCaching
	}
	if c.proxying, err = part(proxyPart, 0); err != nil {
		return c, err
	}
	return c, nil
}

// envToken is the token given in the environment (VIGIL_TOKEN, or
// VAULT_TOKEN), used when there is no auto_auth block.
func envToken(getenv func(string) string) string {
	if t := strings.TrimSpace(getenv(api.EnvToken)); t != "" {
		return t
	}
	return strings.TrimSpace(getenv("VAULT_TOKEN"))
}
