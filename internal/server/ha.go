package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/vigil-secrets/vigil/internal/config"
)

// haAPIAddr is the address standbys forward clients to while this server
// is active: api_addr, or else the first listener's address when that
// names a host (not 0.0.0.0 or ::), with its scheme.
func haAPIAddr(cfg *config.Server) (string, error) {
	if cfg.APIAddr != "" {
		u, err := url.Parse(cfg.APIAddr)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return "", fmt.Errorf("api_addr %q must be an http:// or https:// URL", cfg.APIAddr)
		}
		return cfg.APIAddr, nil
	}
	if len(cfg.Listeners) == 0 {
		return "", fmt.Errorf("HA storage needs api_addr: the address the other servers forward clients to")
	}
	l := cfg.Listeners[0]
	host, _, err := net.SplitHostPort(l.Address)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return "", fmt.Errorf("HA storage needs api_addr: the listener address %q names no host the other servers can reach", l.Address)
	}
	scheme := "https"
	if l.TLSDisable || l.TLSCertFile == "" {
		scheme = "http"
	}
	return scheme + "://" + l.Address, nil
}

// forwardTLS is how a standby trusts the active server it forwards to:
// the system's roots plus the certificates of this server's own listener
// certificate files (replicas usually share one certificate or CA).
func forwardTLS(ls []config.Listener) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, l := range ls {
		if l.TLSDisable || l.TLSCertFile == "" {
			continue
		}
		raw, err := os.ReadFile(l.TLSCertFile)
		if err != nil {
			return nil, fmt.Errorf("read tls_cert_file: %w", err)
		}
		pool.AppendCertsFromPEM(raw)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}
