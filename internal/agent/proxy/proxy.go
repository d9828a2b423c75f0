// Package proxy is the local HTTP server of `vigil agent`: Vault Agent's
// listener, api_proxy and cache blocks. Processes on the node send Vault
// API requests to the agent's listeners (tcp or unix, with or without TLS),
// and the proxy forwards them to the server with their method, path,
// query, body and headers, streaming the answer back; WebSocket upgrades
// (sys/events/subscribe) pass through too.
//
// # Tokens
//
// With use_auto_auth_token a request that carries no token (no
// X-Vault-Token, no Authorization: Bearer) is sent with the agent's
// auto-auth token; with "force" every request is, whatever token it had.
// When the proxy put the auto-auth token on a token lookup or renewal, the
// token and its accessor are removed from the answer, so that local
// processes use the token without learning it.
//
// # Lease cache
//
// With a cache block the proxy shares leased answers among local
// processes, as Vault Agent's lease cache does: one token and one lease per
// node instead of one per process. An answer is cached when it carries
// a renewable lease (dynamic credentials) obtained with a token the agent
// manages (the auto-auth token, or a token created through the proxy), or
// a new renewable token (a login, or a token created through the proxy by
// a managed token or as an orphan). An identical request (same method,
// path, query, body, X-Vault-* options and token) then gets the cached
// answer, with its lease_duration lowered to the time left, instead of a
// new lease. Answers without a lease (KV reads) are always forwarded.
// Identical requests in flight at the same time wait for the first, so a
// burst of processes starting asks for one lease.
//
// The proxy renews what it cached in the background with the token that
// obtained it (at about two thirds of the TTL, see [lifetime.Keep]) and
// evicts an entry when renewing fails or can no longer extend it (the max
// TTL), when the token it belongs to is revoked or evicted, when a client
// revokes it through the proxy, and on POST /agent/v1/cache-clear. The
// number of entries is bounded; the least recently used goes first.
//
// Cached answers hold secrets: they are kept in memory only, never written
// anywhere, and neither they nor any token appear in a log line or error.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// DefaultMaxCacheEntries bounds the lease cache when
// [Options.MaxCacheEntries] is zero.
const DefaultMaxCacheEntries = 4096

// Limits of the proxy's own work.
const (
	// maxRequestBody bounds a request body the cache reads to compute the
	// request's key (the server's own limit is the same).
	maxRequestBody = 32 << 20
	// maxInspectedBody bounds how much of an answer the proxy reads to
	// decide whether to cache it; larger answers stream through uncached.
	maxInspectedBody = 1 << 20
	// shutdownTimeout bounds the graceful part of Serve's shutdown.
	shutdownTimeout = 10 * time.Second
	// readHeaderTimeout and idleTimeout protect the listeners from
	// clients that hold connections open doing nothing.
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 5 * time.Minute
)

// ErrServed is returned by [Proxy.Serve] when the proxy was already
// served or closed.
var ErrServed = errors.New("proxy: already served or closed")

// Options configures a [Proxy].
type Options struct {
	// Listeners are the listener blocks to serve on; at least one.
	Listeners []config.AgentListener
	// UseAutoAuthToken puts the auto-auth token on requests that carry
	// none; ForceAutoAuthToken puts it on every request (api_proxy's
	// use_auto_auth_token = true or "force", or the cache block's legacy
	// keys). Either needs Token.
	UseAutoAuthToken, ForceAutoAuthToken bool
	// Cache enables the lease cache (a cache block is present).
	Cache bool
	// MaxCacheEntries bounds the lease cache; 0 means
	// [DefaultMaxCacheEntries].
	MaxCacheEntries int
	// Address is the server's base URL, e.g. https://vigil.internal:8200.
	Address string
	// HTTPClient carries the TLS settings to reach the server: its
	// Transport forwards requests (its Timeout does not apply to them, so
	// that event streams can last) and its whole self renews cached
	// leases. Nil uses a default client.
	HTTPClient *http.Client
	// Token returns the current auto-auth token (empty before the first
	// login); nil without auto_auth. It is called for each request and
	// must not block.
	Token func() secret.String
	// Quit is called on POST /agent/v1/quit on a listener with
	// EnableQuit. It must only signal (cancel the agent's context, say):
	// it is called from the request's handler.
	Quit func()
	// Clock times cache renewals and TTLs; nil is the wall clock.
	Clock clock.Clock
	// Logger receives the proxy's logs; nil discards them.
	Logger *slog.Logger
}

// Proxy is the agent's API proxy: listeners opened by [New], served by
// [Proxy.Serve].
type Proxy struct {
	o         Options
	log       *slog.Logger
	listeners []*listener
	forwarder *httputil.ReverseProxy
	cache     *leaseCache // nil without a cache block
	served    atomic.Bool
}

// New checks o and opens every listener now, so that an address in use or
// an unreadable TLS certificate fails the agent's start. Call
// [Proxy.Serve] to serve them, or [Proxy.Close] to give them up.
func New(o Options) (*Proxy, error) {
	if len(o.Listeners) == 0 {
		return nil, errors.New("proxy: no listener")
	}
	target, err := url.Parse(o.Address)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("proxy: invalid server address %q: want a URL such as https://vigil.internal:8200", o.Address)
	}
	target.RawQuery, target.Fragment = "", ""
	if o.ForceAutoAuthToken {
		o.UseAutoAuthToken = true
	}
	if o.UseAutoAuthToken && o.Token == nil {
		return nil, errors.New("proxy: use_auto_auth_token needs the auto-auth token (Options.Token)")
	}
	for _, l := range o.Listeners {
		if l.EnableQuit && o.Quit == nil {
			return nil, fmt.Errorf("proxy: listener %s %q enables quit but Options.Quit is nil", l.Type, l.Address)
		}
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.MaxCacheEntries <= 0 {
		o.MaxCacheEntries = DefaultMaxCacheEntries
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: api.DefaultTimeout}
	}
	transport := hc.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	client, err := api.NewClient(api.Config{Address: target.String(), HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}

	p := &Proxy{o: o, log: log}
	p.forwarder = p.newForwarder(target, transport)
	if o.Cache {
		p.cache = newLeaseCache(client, o.Clock, log, o.MaxCacheEntries, o.Token)
	}
	for _, l := range o.Listeners {
		ln, err := openListener(l)
		if err != nil {
			p.closeListeners()
			return nil, err
		}
		p.listeners = append(p.listeners, ln)
	}
	return p, nil
}

// Addrs returns the listeners' addresses, in the order of
// [Options.Listeners].
func (p *Proxy) Addrs() []net.Addr {
	addrs := make([]net.Addr, len(p.listeners))
	for i, l := range p.listeners {
		addrs[i] = l.ln.Addr()
	}
	return addrs
}

// Close closes the listeners of a proxy that will not be served. It is
// not needed after [Proxy.Serve], which closes them itself.
func (p *Proxy) Close() error {
	if !p.served.CompareAndSwap(false, true) {
		return nil
	}
	return p.closeListeners()
}

func (p *Proxy) closeListeners() error {
	var errs []error
	for _, l := range p.listeners {
		if err := l.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Serve serves every listener until ctx ends, then shuts down: it stops
// accepting, lets requests in progress finish for a bounded time, closes
// what is left (event streams included), stops the cache's renewals and
// closes the listeners (removing unix sockets). It returns nil after ctx
// ends, or the first listener's failure. It may be called once.
func (p *Proxy) Serve(ctx context.Context) error {
	if !p.served.CompareAndSwap(false, true) {
		return ErrServed
	}
	defer p.closeListeners()
	if p.cache != nil {
		p.cache.start(ctx)
		defer p.cache.stop()
	}
	// Requests get a context of their own that Serve cancels after the
	// graceful shutdown: it ends the streams (WebSocket upgrades) that
	// http.Server.Shutdown does not track.
	connCtx, cancelConns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConns()
	var handlers sync.WaitGroup

	servers := make([]*http.Server, len(p.listeners))
	errc := make(chan error, len(p.listeners))
	for i, l := range p.listeners {
		h := p.handler(l.cfg)
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handlers.Add(1)
				defer handlers.Done()
				h.ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			BaseContext:       func(net.Listener) context.Context { return connCtx },
			ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		}
		servers[i] = srv
		go func() {
			err := srv.Serve(l.ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("proxy: serve %s %s: %w", l.cfg.Type, l.ln.Addr(), err)
			}
			errc <- err
		}()
		p.log.Info("proxy listening", "type", l.cfg.Type, "address", l.ln.Addr().String(), "tls", !l.cfg.TLSDisable)
	}

	var err error
	pending := len(servers)
	select {
	case <-ctx.Done():
	case err = <-errc:
		pending--
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			if serr := srv.Shutdown(sctx); serr != nil {
				_ = srv.Close()
			}
		})
	}
	wg.Wait()
	cancelConns()
	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		p.log.Warn("proxy shutdown: requests still running after the timeout")
	}
	for ; pending > 0; pending-- {
		if serr := <-errc; err == nil {
			err = serr
		}
	}
	p.log.Info("proxy stopped")
	return err
}
