// Package httpapi is Vigil's HTTP face: the Vault-compatible /v1 API. It
// turns HTTP requests into core requests (method → operation, body and query
// → data, token headers), renders results in Vault's JSON envelope, and maps
// errors to status codes in exactly one place ([errorStatus]).
//
// It serves the seal endpoints (health, seal-status, init, unseal, leader,
// seal) itself against a small [Core] interface; everything else goes
// through Core.HandleRequest. It never holds a concrete *core.Core.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Core is what the HTTP layer needs of the server core.
type Core interface {
	HandleRequest(ctx context.Context, req *core.Request) (*core.Result, error)
	Initialized(ctx context.Context) (bool, error)
	Init(ctx context.Context, req core.InitRequest) (*core.InitResult, error)
	Unseal(ctx context.Context, key string) (core.SealStatus, error)
	ResetUnseal(ctx context.Context) (core.SealStatus, error)
	Seal(ctx context.Context, token secret.String, conn *logical.Connection) error
	SealStatus(ctx context.Context) (core.SealStatus, error)
}

// Defaults of Options.
const (
	DefaultMaxRequestSize     = 32 << 20
	DefaultMaxRequestDuration = 90 * time.Second
)

// Options configures the handler.
type Options struct {
	Core   Core
	Logger *slog.Logger
	// MaxRequestSize limits request bodies (413 beyond); 0 means 32 MiB.
	MaxRequestSize int64
	// MaxRequestDuration bounds each request; 0 means 90 s.
	MaxRequestDuration time.Duration
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Version is reported by health and seal-status.
	Version string
	// Now tells the time (server_time_utc); time.Now when nil.
	Now func() time.Time
}

// Handler serves the API.
type Handler struct {
	core    Core
	log     *slog.Logger
	maxSize int64
	maxDur  time.Duration
	proxies []netip.Prefix
	version string
	now     func() time.Time
	// bufs recycles the buffers of small responses (see respondResult).
	bufs sync.Pool
}

// New returns the API handler.
func New(opts Options) *Handler {
	h := &Handler{
		core:    opts.Core,
		log:     opts.Logger,
		maxSize: opts.MaxRequestSize,
		maxDur:  opts.MaxRequestDuration,
		proxies: opts.TrustedProxies,
		version: opts.Version,
		now:     opts.Now,
	}
	h.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "http")
	if h.maxSize <= 0 {
		h.maxSize = DefaultMaxRequestSize
	}
	if h.maxDur <= 0 {
		h.maxDur = DefaultMaxRequestDuration
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr["Cache-Control"] = []string{"no-store"}
	if ns := r.Header.Get("X-Vault-Namespace"); ns != "" {
		hdr.Set("X-Vault-Namespace", ns)
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		writeErrors(w, http.StatusNotFound)
		return
	}
	if msg := checkPath(p); msg != "" {
		writeErrors(w, http.StatusBadRequest, msg)
		return
	}
	if !rootNamespace(r.Header.Get("X-Vault-Namespace")) {
		writeErrors(w, http.StatusNotFound, noRouteMessage(p))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.maxDur)
	defer cancel()
	switch p {
	case "sys/health":
		h.handleHealth(ctx, w, r)
	case "sys/seal-status":
		h.handleSealStatus(ctx, w, r)
	case "sys/init":
		h.handleInit(ctx, w, r)
	case "sys/unseal":
		h.handleUnseal(ctx, w, r)
	case "sys/leader":
		h.handleLeader(w, r)
	case "sys/seal":
		h.handleSeal(ctx, w, r)
	default:
		h.handleLogical(ctx, w, r, p)
	}
}

// rootNamespace reports whether an X-Vault-Namespace value names the root
// namespace, the only one this server has.
func rootNamespace(ns string) bool {
	ns = strings.Trim(ns, "/ ")
	return ns == "" || ns == "root"
}

// checkPath rejects parent references and non-printable characters.
func checkPath(p string) string {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "invalid request path: parent references are not allowed"
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "invalid request path: non-printable characters are not allowed"
		}
	}
	return ""
}

// requestToken returns X-Vault-Token, else the bearer token of
// Authorization.
func requestToken(r *http.Request) secret.String {
	if t := r.Header.Get("X-Vault-Token"); t != "" {
		return secret.NewString(t)
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return secret.NewString(strings.TrimSpace(a[7:]))
	}
	return secret.String{}
}
