package jwks

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// errRedirect refuses every redirect.
var errRedirect = errors.New("redirects are not followed")

// HTTPClient returns a client over base (http.DefaultTransport when nil)
// with timeout, that follows no redirect: a key set is read from the URL
// configured and nowhere else, and a request carrying a bearer token (the
// Kubernetes method's TokenReview) must not be sent on. With caPEM, only
// those CAs are trusted; that needs base to be an *http.Transport, which
// is cloned.
func HTTPClient(base http.RoundTripper, caPEM string, timeout time.Duration) (*http.Client, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	rt := base
	if caPEM != "" {
		pool, err := CertPool(caPEM)
		if err != nil {
			return nil, err
		}
		t, ok := base.(*http.Transport)
		if !ok {
			return nil, errors.New("a CA PEM needs an *http.Transport")
		}
		t = t.Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		rt = t
	}
	return &http.Client{
		Transport:     rt,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect },
	}, nil
}

// getJSON GETs url into v, within [FetchTimeout] and [MaxFetchSize].
func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err // a *url.Error: names the URL and the cause
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxFetchSize+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if len(body) > MaxFetchSize {
		return fmt.Errorf("%s answered more than %d bytes", url, MaxFetchSize)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s answered malformed JSON", url)
	}
	return nil
}
