package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// PEMMode says how many keys one configured PEM text holds.
type PEMMode int

const (
	// FirstBlock reads a text as one key, its first PEM block; what
	// follows it is ignored (the JWT method's jwt_validation_pubkeys, as
	// in Vault). A certificate chain pasted whole thus trusts the leaf's
	// key only.
	FirstBlock PEMMode = iota
	// EveryBlock reads every PEM block of a text as a key (the Kubernetes
	// method's pem_keys: an API server's service-account key file may
	// list several keys).
	EveryBlock
)

// ParsePublicKeys parses public keys given as PEM texts: the entries of
// the configuration field named field, which errors name ("pem_keys[1]
// is not PEM"). A block is a certificate, a PKCS#1 RSA public key or a
// PKIX public key, and its key must be RSA, ECDSA or Ed25519.
func ParsePublicKeys(field string, texts []string, mode PEMMode) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for i, text := range texts {
		rest := []byte(strings.TrimSpace(text))
		found := false
		for {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			found = true
			key, err := parseBlock(block)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
			}
			keys = append(keys, key)
			if mode == FirstBlock {
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%s[%d] is not PEM", field, i)
		}
	}
	return keys, nil
}

// parseBlock reads the public key of one PEM block.
func parseBlock(block *pem.Block) (crypto.PublicKey, error) {
	var key any
	var err error
	switch block.Type {
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = c.PublicKey
		}
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	default:
		// Another label over a PKIX public key is read as one (as Vault
		// does); a private key, or anything else, is refused.
		if key, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("unsupported PEM block %q: want a public key or a certificate", block.Type)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", strings.ToLower(block.Type), err)
	}
	switch key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return key, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// CertPool parses PEM CA certificates.
func CertPool(pemCerts string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pemCerts)) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}
