// Package api is Vigil's public Go client. It speaks the Vault HTTP API
// (paths under /v1/, the JSON "secret" envelope, {"errors":[...]} error
// bodies) and so works against Vigil and against Vault or OpenBao servers.
//
// The package imports only the standard library, so that it could become a
// module of its own; it must never import Vigil's internal packages. It
// holds no package-level mutable state: everything a [Client] needs comes
// from its [Config].
//
// Errors from the server are returned as [*ResponseError]; branch on them
// with errors.As. Transport failures (connection refused, TLS errors) are
// returned wrapped, so errors.Is(err, syscall.ECONNREFUSED) works.
//
// Reads of items that do not exist are not errors: [Logical.Read] and
// [Logical.List] return a nil secret and a nil error for a 404 without a
// body, as Vault's own client does.
package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultAddress is the server address used when none is configured: the
// dev server listens on plain HTTP on the loopback interface.
const DefaultAddress = "http://127.0.0.1:8200"

// DefaultTimeout is the whole-request timeout used when none is configured.
const DefaultTimeout = 60 * time.Second

// maxResponseBytes bounds how much of a response body the client reads.
const maxResponseBytes = 64 << 20

// Environment variable names. Each VIGIL_ name has a VAULT_ fallback so that
// scripts written for Vault keep working.
const (
	EnvAddress    = "VIGIL_ADDR"
	EnvToken      = "VIGIL_TOKEN"
	EnvCACert     = "VIGIL_CACERT"
	EnvCAPath     = "VIGIL_CAPATH"
	EnvSkipVerify = "VIGIL_SKIP_VERIFY"
	EnvTimeout    = "VIGIL_CLIENT_TIMEOUT"
	EnvClientCert = "VIGIL_CLIENT_CERT"
	EnvClientKey  = "VIGIL_CLIENT_KEY"
	EnvServerName = "VIGIL_TLS_SERVER_NAME"
)

// Config says how a [Client] reaches the server.
type Config struct {
	// Address is the server's base URL, for example http://127.0.0.1:8200,
	// or unix:///path/to/socket for a server (or an agent) listening on a
	// unix socket.
	Address string
	// Token is sent as X-Vault-Token on every request when not empty.
	Token string
	// CACert is a PEM file of CA certificates to trust.
	CACert string
	// CAPath is a directory of PEM files of CA certificates to trust.
	CAPath string
	// ClientCert and ClientKey are PEM files of a client certificate and
	// its key, presented to servers that ask for one (both or neither).
	ClientCert, ClientKey string
	// TLSServerName is the name the server's certificate is checked
	// against when it differs from the address's host.
	TLSServerName string
	// TLSSkipVerify disables server certificate verification. For tests
	// only.
	TLSSkipVerify bool
	// Timeout bounds each whole request; zero means [DefaultTimeout].
	Timeout time.Duration
	// HTTPClient, when set, is used as is: CACert, CAPath, TLSSkipVerify
	// and Timeout are then ignored.
	HTTPClient *http.Client
	// WrapTTL, when above zero, asks for every response wrapped
	// (X-Vault-Wrap-TTL): each comes back as a wrapping token in
	// [Secret.WrapInfo], to unwrap once within WrapTTL.
	WrapTTL time.Duration
}

// DefaultConfig returns a Config filled from the environment, read through
// getenv (os.Getenv when nil). Values that cannot be parsed are ignored and
// the defaults kept; use [ConfigFromEnv] to see such errors.
func DefaultConfig(getenv func(string) string) Config {
	c, _ := ConfigFromEnv(getenv)
	return c
}

// ConfigFromEnv is [DefaultConfig] that also reports environment values it
// could not parse. The returned Config is usable even when err is not nil.
//
// It reads VIGIL_ADDR, VIGIL_TOKEN, VIGIL_CACERT, VIGIL_CAPATH,
// VIGIL_CLIENT_CERT, VIGIL_CLIENT_KEY, VIGIL_TLS_SERVER_NAME,
// VIGIL_SKIP_VERIFY and VIGIL_CLIENT_TIMEOUT, each falling back to the
// VAULT_ name with the same suffix when unset or empty.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return getenv("VAULT_" + strings.TrimPrefix(name, "VIGIL_"))
	}
	c := Config{Address: DefaultAddress, Timeout: DefaultTimeout}
	if v := get(EnvAddress); v != "" {
		c.Address = v
	}
	c.Token = strings.TrimSpace(get(EnvToken))
	c.CACert = get(EnvCACert)
	c.CAPath = get(EnvCAPath)
	c.ClientCert = get(EnvClientCert)
	c.ClientKey = get(EnvClientKey)
	c.TLSServerName = get(EnvServerName)
	var errs []error
	if v := get(EnvSkipVerify); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("api: invalid %s %q: want true or false", EnvSkipVerify, v))
		} else {
			c.TLSSkipVerify = b
		}
	}
	if v := get(EnvTimeout); v != "" {
		d, err := ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("api: invalid %s %q: want a positive duration such as 30s", EnvTimeout, v))
		} else {
			c.Timeout = d
		}
	}
	return c, errors.Join(errs...)
}

// ParseDuration parses a duration as Vault does: a Go duration ("90s",
// "1h30m") or a plain number of seconds ("90"). A number of seconds
// beyond what a time.Duration holds is an error, not a wrapped value.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		const maxSeconds = math.MaxInt64 / int64(time.Second)
		if n > maxSeconds || n < -maxSeconds {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// Client talks to one server. It is safe for concurrent use.
type Client struct {
	addr *url.URL
	http *http.Client

	wrapTTL time.Duration

	mu    sync.RWMutex
	token string
}

// NewClient checks c and returns a client for it.
func NewClient(c Config) (*Client, error) {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	u, err := url.Parse(c.Address)
	if err != nil {
		return nil, fmt.Errorf("api: invalid address %q: %w", c.Address, err)
	}
	socket := ""
	switch {
	case u.Scheme == "unix":
		// The socket's path; requests go to http://localhost over it.
		socket = u.Path
		if socket == "" {
			socket = u.Opaque
		}
		if socket == "" {
			return nil, fmt.Errorf("api: invalid address %q: no socket path", c.Address)
		}
		u = &url.URL{Scheme: "http", Host: "localhost"}
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("api: invalid address %q: scheme must be http, https or unix", c.Address)
	case u.Host == "":
		return nil, fmt.Errorf("api: invalid address %q: no host", c.Address)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return nil, errors.New("api: a client certificate needs both its certificate and its key file")
	}

	hc := c.HTTPClient
	if hc == nil {
		hc, err = newHTTPClient(c, socket)
		if err != nil {
			return nil, err
		}
	}
	return &Client{addr: u, http: hc, token: c.Token, wrapTTL: c.WrapTTL}, nil
}

func newHTTPClient(c Config, socket string) (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSSkipVerify, ServerName: c.TLSServerName} //nolint:gosec // an explicit user choice
	if c.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("api: load client certificate: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	if c.CACert != "" || c.CAPath != "" {
		pool := x509.NewCertPool()
		if c.CACert != "" {
			pem, err := os.ReadFile(c.CACert)
			if err != nil {
				return nil, fmt.Errorf("api: read CA certificate: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("api: no PEM certificates in %s", c.CACert)
			}
		}
		if c.CAPath != "" {
			if err := addCADir(pool, c.CAPath); err != nil {
				return nil, err
			}
		}
		tlsConf.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	if socket != "" {
		var d net.Dialer
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: checkRedirect,
	}, nil
}

// addCADir adds every PEM file in dir to pool.
func addCADir(pool *x509.CertPool, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("api: read CA directory: %w", err)
	}
	added := false
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		pem, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("api: read CA certificate: %w", err)
		}
		if pool.AppendCertsFromPEM(pem) {
			added = true
		}
	}
	if !added {
		return fmt.Errorf("api: no PEM certificates in %s", dir)
	}
	return nil
}

// checkRedirect follows a few redirects (standby nodes answer 307 with the
// active node's address) but never from https to http, which would send the
// token in the clear.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("api: too many redirects")
	}
	if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("api: refusing redirect from https to http")
	}
	return nil
}

// Address returns the server's base URL (http://localhost for a unix
// socket, which [Client.HTTPClient] dials).
func (c *Client) Address() string { return c.addr.String() }

// HTTPClient returns the HTTP client requests are sent with: its
// transport carries the TLS settings (and the unix socket) of the
// Config. Callers must not change it.
func (c *Client) HTTPClient() *http.Client { return c.http }

// Token returns the token sent with requests.
func (c *Client) Token() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token
}

// SetToken changes the token sent with later requests; "" sends none.
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = token
}

// WithToken returns a client that shares c's connection settings but sends
// token instead of c's token.
func (c *Client) WithToken(token string) *Client {
	return &Client{addr: c.addr, http: c.http, token: token, wrapTTL: c.wrapTTL}
}

// WithWrapTTL returns a client that shares c's connection settings and
// token but asks for every response wrapped for ttl (0: none); see
// [Config.WrapTTL].
func (c *Client) WithWrapTTL(ttl time.Duration) *Client {
	return &Client{addr: c.addr, http: c.http, token: c.Token(), wrapTTL: ttl}
}

// Response is a server answer: its status, headers and the whole body.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Secret decodes the body as a Vault secret envelope (see [ParseSecret]).
func (r *Response) Secret() (*Secret, error) {
	return ParseSecret(bytes.NewReader(r.Body))
}

// DecodeJSON decodes the body into v, keeping numbers as json.Number when v
// holds interface values.
func (r *Response) DecodeJSON(v any) error {
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("api: decode response: %w", err)
	}
	return nil
}

// Do sends one request for the logical path (for example
// "secret/data/foo"; a leading "/" or "/v1/" is ignored) and reads the
// whole answer.
//
// body, when not nil, is sent as JSON (a []byte or json.RawMessage is sent
// verbatim). PATCH requests are sent with Content-Type
// application/merge-patch+json. The method "LIST" is sent as GET with
// list=true in the query, which the server treats the same and which every
// proxy understands.
//
// Every request carries X-Vault-Request: true and, when the client has a
// token, X-Vault-Token (and X-Vault-Wrap-TTL with [Config.WrapTTL]).
//
// A status of 400 or more returns both the response and a
// [*ResponseError]; callers that care about a 404's body (KV v2 deleted
// versions) can still read it.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any) (*Response, error) {
	method = strings.ToUpper(method)
	q := url.Values{}
	for k, v := range query {
		q[k] = append([]string(nil), v...)
	}
	if method == "LIST" {
		method = http.MethodGet
		q.Set("list", "true")
	}
	u := c.url(path)
	u.RawQuery = q.Encode()

	var rd io.Reader
	if body != nil {
		var b []byte
		switch v := body.(type) {
		case []byte:
			b = v
		case json.RawMessage:
			b = v
		default:
			var err error
			if b, err = json.Marshal(body); err != nil {
				return nil, fmt.Errorf("api: encode request body: %w", err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("api: build request: %w", err)
	}
	req.Header.Set("X-Vault-Request", "true")
	if tok := c.Token(); tok != "" {
		req.Header.Set("X-Vault-Token", tok)
	}
	if c.wrapTTL > 0 {
		req.Header.Set("X-Vault-Wrap-TTL", c.wrapTTL.String())
	}
	if body != nil {
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}

	hr, err := c.http.Do(req)
	if err != nil {
		return nil, err // *url.Error: names the method and URL, wraps the cause
	}
	defer hr.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hr.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("api: read response of %s %s: %w", method, u.Redacted(), err)
	}
	resp := &Response{StatusCode: hr.StatusCode, Header: hr.Header, Body: data}
	if hr.StatusCode >= 400 {
		return resp, newResponseError(method, strings.TrimPrefix(u.Path, c.addr.Path+"/v1/"), u.Redacted(), resp)
	}
	return resp, nil
}

// url builds the full URL of a logical path.
func (c *Client) url(path string) *url.URL {
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimPrefix(path, "v1/")
	u := *c.addr
	u.Path = c.addr.Path + "/v1/" + path
	u.RawPath = ""
	return &u
}

// ResponseError is an error status (400 or more) from the server.
type ResponseError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Errors are the messages of the {"errors":[...]} body; may be empty.
	Errors []string
	// Method is the HTTP method sent (GET for a LIST).
	Method string
	// Path is the logical path, such as "secret/data/foo".
	Path string
	// URL is the full request URL.
	URL string
	// RawBody is the body when it was not a JSON error object.
	RawBody string
}

func newResponseError(method, path, rawURL string, r *Response) *ResponseError {
	e := &ResponseError{StatusCode: r.StatusCode, Method: method, Path: path, URL: rawURL}
	var body struct {
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(r.Body, &body); err == nil && body.Errors != nil {
		e.Errors = body.Errors
	} else {
		e.RawBody = strings.TrimSpace(string(r.Body))
	}
	return e
}

// Error formats the error the way Vault's client does.
func (e *ResponseError) Error() string {
	var b strings.Builder
	b.WriteString("Error making API request.\n\n")
	fmt.Fprintf(&b, "URL: %s %s\n", e.Method, e.URL)
	if len(e.Errors) == 0 {
		fmt.Fprintf(&b, "Code: %d. Raw Message:\n\n%s", e.StatusCode, e.RawBody)
		return b.String()
	}
	fmt.Fprintf(&b, "Code: %d. Errors:\n\n", e.StatusCode)
	for i, m := range e.Errors {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "* %s", m)
	}
	return b.String()
}

// HasMessage reports whether one of the error messages contains s.
func (e *ResponseError) HasMessage(s string) bool {
	for _, m := range e.Errors {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// StatusCode returns the HTTP status of err when it is (or wraps) a
// [*ResponseError], and 0 otherwise.
func StatusCode(err error) int {
	var re *ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}
