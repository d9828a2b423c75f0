package config

import (
	"crypto/tls"
	"fmt"
)

// TLSVersion is the crypto/tls version a listener's tls_min_version names:
// "tls12" (also when empty) or "tls13", the only values the server's and
// the agent's listeners accept.
func TLSVersion(name string) (uint16, error) {
	switch name {
	case "", "tls12":
		return tls.VersionTLS12, nil
	case "tls13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("invalid tls_min_version %q: want tls12 or tls13", name)
}
