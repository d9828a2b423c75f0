package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/vigil-secrets/vigil/api"
)

// errUsage marks an error caused by how the command was called; fail
// returns the usage exit code for it.
var errUsage = errors.New("usage")

// usageErr wraps a message as a usage error.
func usageErr(format string, a ...any) error {
	return fmt.Errorf("%s%w", fmt.Sprintf(format, a...), usageMarker{})
}

// usageMarker is invisible in messages and matches errUsage.
type usageMarker struct{}

func (usageMarker) Error() string        { return "" }
func (usageMarker) Is(target error) bool { return target == errUsage }

// fail prints "Error <action>: <err>" and a hint when one applies, and
// returns the exit code: 2 for usage errors, 1 otherwise.
func (c *call) fail(action string, err error) int {
	fmt.Fprintf(c.stderr, "Error %s: %v\n", action, err)
	if h := hint(err, c.address()); h != "" {
		fmt.Fprintf(c.stderr, "\n%s\n", h)
	}
	if errors.Is(err, errUsage) {
		fmt.Fprintf(c.stderr, "Run %q for usage.\n", c.name+" -h")
		return exitUsage
	}
	return exitError
}

// hint returns advice for common failures, or "".
func hint(err error, addr string) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusForbidden:
			return "Check your token (vigil login, or VIGIL_TOKEN) and that its policies allow this path."
		case re.StatusCode == http.StatusServiceUnavailable && re.HasMessage("sealed"):
			return "The server is sealed: vigil operator unseal"
		case re.StatusCode == http.StatusUnsupportedMediaType:
			return "The server did not accept the request's content type."
		}
		return ""
	}
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("Is the server running? Set VIGIL_ADDR (now %s)", addr)
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return "The server's TLS certificate is not trusted: set VIGIL_CACERT (or -ca-cert) to its CA."
	case errors.Is(err, http.ErrSchemeMismatch):
		return fmt.Sprintf("The server speaks plain HTTP: use an http:// address (now %s).", addr)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("The server's host name does not resolve. Set VIGIL_ADDR (now %s)", addr)
	}
	return ""
}
