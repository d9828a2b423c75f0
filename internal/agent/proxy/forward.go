package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// Token headers, as the server reads them: X-Vault-Token first, else a
// bearer Authorization.
const (
	tokenHeader = "X-Vault-Token"
	authHeader  = "Authorization"
)

// exchange is what the proxy knows of one forwarded request, carried in
// the request's context from the handler to the response hooks of the
// reverse proxy.
type exchange struct {
	// token is the token sent to the server (maybe the auto-auth token).
	token secret.String
	// injected says the proxy put the auto-auth token on the request.
	injected bool
	// apiPath is the path without its /v1/ prefix ("" outside /v1/).
	apiPath string

	// The rest is set for requests through the lease cache only.
	cached bool
	key    cacheKey
	body   []byte
	flight *flight
}

type exchangeKey struct{}

func exchangeOf(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// serveAPI forwards one request to the server, through the lease cache
// when there is one.
func (p *Proxy) serveAPI(w http.ResponseWriter, r *http.Request) {
	x := &exchange{}
	x.apiPath, _ = strings.CutPrefix(r.URL.Path, "/v1/")
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		x.apiPath = ""
	}
	x.token, x.injected = p.setToken(r.Header)
	p.log.Debug("proxy request", "method", r.Method, "path", logPath(r.URL.Path), "auto_auth_token", x.injected)

	// Compressed answers could not be read to cache them or to remove the
	// auto-auth token: ask for plain ones (the transport still compresses
	// on the wire by itself).
	r.Header.Del("Accept-Encoding")

	if p.cache == nil || x.apiPath == "" || isUpgrade(r) {
		p.forward(w, r, x)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		writeError(w, http.StatusBadRequest, "failed to read the request body")
		return
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	x.cached, x.body = true, body
	x.key = keyOf(r, body, x.token)

	hit, f, leader := p.cache.begin(x.key)
	if hit != nil {
		p.log.Debug("cache hit", "method", r.Method, "path", logPath(r.URL.Path))
		hit.write(w)
		return
	}
	if !leader {
		// An identical request is in flight: wait for its answer, which
		// is shared when it is cached.
		select {
		case <-f.done:
		case <-r.Context().Done():
			return
		}
		if hit := p.cache.lookup(x.key); hit != nil {
			p.log.Debug("cache hit after waiting", "method", r.Method, "path", logPath(r.URL.Path))
			hit.write(w)
			return
		}
		// Not cacheable: forward this one alone.
		p.forward(w, r, x)
		return
	}
	x.flight = f
	defer p.cache.finish(x.key, f)
	p.forward(w, r, x)
}

// forward sends r to the server through the reverse proxy.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, x *exchange) {
	p.forwarder.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)))
}

// setToken applies api_proxy's token rules to a request's headers and
// returns the token the server will see and whether it is the auto-auth
// token the proxy added.
func (p *Proxy) setToken(h http.Header) (secret.String, bool) {
	own := requestToken(h)
	if !p.o.UseAutoAuthToken {
		return own, false
	}
	if !p.o.ForceAutoAuthToken && !own.IsEmpty() {
		return own, false
	}
	// Replace whatever token the request had (force) or add one.
	h.Del(tokenHeader)
	if isBearer(h.Get(authHeader)) {
		h.Del(authHeader)
	}
	tok := p.o.Token()
	if tok.IsEmpty() {
		// Before the first login: the request goes without a token.
		return secret.String{}, false
	}
	h.Set(tokenHeader, tok.Reveal())
	return tok, true
}

// requestToken returns the request's token as the server reads it.
func requestToken(h http.Header) secret.String {
	if t := h.Get(tokenHeader); t != "" {
		return secret.NewString(t)
	}
	if a := h.Get(authHeader); isBearer(a) {
		return secret.NewString(strings.TrimSpace(a[len("bearer "):]))
	}
	return secret.String{}
}

func isBearer(a string) bool {
	return len(a) > len("bearer ") && strings.EqualFold(a[:len("bearer ")], "bearer ")
}

// isUpgrade reports a protocol upgrade (a WebSocket): it is streamed,
// never cached.
func isUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return false
}

// newForwarder builds the reverse proxy to the server at target.
func (p *Proxy) newForwarder(target *url.URL, transport http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Append the client's address to the X-Forwarded-For it
			// came with (unix sockets have none to add).
			prior := pr.In.Header.Values("X-Forwarded-For")
			if host, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil && host != "" {
				prior = append(prior, host)
			}
			if len(prior) > 0 {
				pr.Out.Header.Set("X-Forwarded-For", strings.Join(prior, ", "))
			}
		},
		Transport:      transport,
		ModifyResponse: p.inspect,
		ErrorHandler:   p.upstreamError,
	}
}

// upstreamError answers 502 when the server could not be reached.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if x := exchangeOf(r.Context()); x != nil && x.flight != nil {
		p.cache.finish(x.key, x.flight)
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away.
		p.log.Debug("proxy request cancelled by the client", "method", r.Method, "path", logPath(r.URL.Path))
		return
	}
	p.log.Warn("proxy: cannot reach the server", "method", r.Method, "path", logPath(r.URL.Path), "error", err)
	writeError(w, http.StatusBadGateway, "error reaching the server: "+err.Error())
}

// inspect is the reverse proxy's ModifyResponse: it removes the auto-auth
// token from answers that would reveal it, and hands answers to the lease
// cache (evictions after revocations, caching leases and tokens).
func (p *Proxy) inspect(resp *http.Response) error {
	x := exchangeOf(resp.Request.Context())
	if x == nil {
		return nil
	}
	release := func() {
		if x.flight != nil {
			p.cache.finish(x.key, x.flight)
		}
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if x.cached {
		resp.Header.Set("X-Cache", "MISS")
		if ok {
			p.cache.afterRevocation(x)
		}
	}
	strip := x.injected && strings.HasPrefix(x.apiPath, "auth/token/")
	if !ok || !isJSON(resp.Header) || !(strip || x.cached) {
		release()
		return nil
	}
	body, complete, err := readUpTo(resp.Body, maxInspectedBody)
	if err != nil {
		release()
		return err
	}
	if !complete {
		// Too large to be a lease: stream it through.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		release()
		return nil
	}
	_ = resp.Body.Close()
	if strip {
		body = stripToken(body, x.token)
	}
	if x.cached {
		p.cache.store(x, resp.StatusCode, resp.Header, body)
	}
	release()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

func isJSON(h http.Header) bool {
	ct := h.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json") && h.Get("Content-Encoding") == ""
}

// readUpTo reads r up to limit bytes; complete says r ended within them.
func readUpTo(r io.Reader, limit int64) (b []byte, complete bool, err error) {
	b, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		return b, false, nil
	}
	return b, true, nil
}

// stripToken removes tok and its accessor from a token lookup or renewal
// answer (data.id and data.accessor, auth.client_token and
// auth.accessor), so that a process using the auto-auth token through the
// proxy does not learn it. Other answers are returned unchanged.
func stripToken(body []byte, tok secret.String) []byte {
	var env map[string]json.RawMessage
	if json.Unmarshal(body, &env) != nil {
		return body
	}
	changed := false
	for _, part := range []struct{ field, id string }{{"data", "id"}, {"auth", "client_token"}} {
		raw, ok := env[part.field]
		if !ok {
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			continue
		}
		var id string
		if json.Unmarshal(obj[part.id], &id) != nil || !secret.NewString(id).Equal(tok) {
			continue
		}
		delete(obj, part.id)
		delete(obj, "accessor")
		b, err := json.Marshal(obj)
		if err != nil {
			continue
		}
		env[part.field] = b
		changed = true
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(env)
	if err != nil {
		return body
	}
	return out
}

// logPath is a request path fit for a log line: the token of the legacy
// forms auth/token/lookup/<token>, renew/<token>, revoke/<token>... is
// replaced.
func logPath(p string) string {
	const tokenPaths = "/v1/auth/token/"
	rest, ok := strings.CutPrefix(p, tokenPaths)
	if !ok {
		return p
	}
	op, arg, has := strings.Cut(rest, "/")
	if !has || arg == "" || op == "create" || op == "roles" {
		return p
	}
	return tokenPaths + op + "/" + secret.Redacted
}
