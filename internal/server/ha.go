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

// forwardTLS is how a standby connects to the active server it forwards
// to. It trusts the CAs of leader_ca_cert_file alone when set, else the
// system's roots plus the certificates of this server's own listener
// certificate files (replicas usually share one certificate or CA). When
// the active asks for a client certificate (tls_client_ca_file), it
// presents leader_client_cert_file when set, else the first of its own
// listener certificates (own, reloaded on SIGHUP) that the active would
// accept: one issued by a CA the active names and allowed for client
// authentication; otherwise none. leader, when not nil, is the reloader
// of leader_client_cert_file, for SIGHUP.
func forwardTLS(ls []config.Listener, own []*certReloader, pg *config.PostgresStorage) (tc *tls.Config, leader *certReloader, err error) {
	tc = &tls.Config{MinVersion: tls.VersionTLS12}
	if pg.LeaderCACertFile != "" {
		if tc.RootCAs, err = loadCAs("leader_ca_cert_file", pg.LeaderCACertFile); err != nil {
			return nil, nil, err
		}
	} else {
		if tc.RootCAs, err = x509.SystemCertPool(); err != nil {
			tc.RootCAs = x509.NewCertPool()
		}
		for _, l := range ls {
			if l.TLSDisable || l.TLSCertFile == "" {
				continue
			}
			raw, err := os.ReadFile(l.TLSCertFile)
			if err != nil {
				return nil, nil, fmt.Errorf("read tls_cert_file: %w", err)
			}
			tc.RootCAs.AppendCertsFromPEM(raw)
		}
	}
	if pg.LeaderClientCertFile != "" {
		if leader, err = newCertReloader(pg.LeaderClientCertFile, pg.LeaderClientKeyFile); err != nil {
			return nil, nil, fmt.Errorf("leader_client_cert_file: %w", err)
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return leader.cert.Load(), nil
		}
		return tc, leader, nil
	}
	tc.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		for _, r := range own {
			if r == nil {
				continue
			}
			if c := r.cert.Load(); forClientAuth(c) && cri.SupportsCertificate(c) == nil {
				return c, nil
			}
		}
		// No certificate: an active server that only verifies one if
		// given still answers.
		return &tls.Certificate{}, nil
	}
	return tc, nil, nil
}

// forClientAuth reports whether c's leaf may authenticate a client: it
// names no extended key usage, or client authentication (or any) among
// them. A server-only certificate would make the active refuse the
// connection rather than ignore the certificate.
func forClientAuth(c *tls.Certificate) bool {
	leaf := c.Leaf
	if leaf == nil {
		if len(c.Certificate) == 0 {
			return false
		}
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return false
		}
	}
	if len(leaf.ExtKeyUsage) == 0 {
		return true
	}
	for _, u := range leaf.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}
