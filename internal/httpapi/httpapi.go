// Package httpapi is Vigil's HTTP face: the Vault-compatible /v1 API. It
// turns HTTP requests into core requests (method → operation, body and query
// → data, token headers), renders results in Vault's JSON envelope, and maps
// errors to status codes in exactly one place ([errorStatus]).
//
// It serves the seal endpoints (health, seal-status, init, unseal, leader,
// seal, generate-root) itself against a small [Core] interface; everything else goes
// through Core.HandleRequest. It never holds a concrete *core.Core. The
// storage snapshot endpoints (sys_snapshot.go) stream their bodies, and the
// event subscriptions (events.go) are WebSockets, so they too are served
// here, each against a small interface of its own.
package httpapi

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vigil-secrets/vigil/api"
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
	GenerateRootStatus(ctx context.Context) (core.GenerateRootStatus, error)
	GenerateRootInit(ctx context.Context, otp, pgpKey string) (core.GenerateRootStatus, error)
	GenerateRootUpdate(ctx context.Context, key, nonce string) (core.GenerateRootStatus, error)
	GenerateRootCancel(ctx context.Context) error
	StepDown(ctx context.Context, token secret.String, conn *logical.Connection) error
	Leader(ctx context.Context) (core.LeaderStatus, error)
	// Standby, ActiveAddress, ForgetLeader, ForwardMAC and
	// CheckForwardMAC serve request forwarding (forward.go).
	Standby() bool
	ActiveAddress(ctx context.Context) (string, error)
	ForgetLeader()
	ForwardMAC(msg []byte) ([]byte, bool)
	CheckForwardMAC(msg, mac []byte) bool
}

// Metrics is what the HTTP layer needs of the server's metrics.
type Metrics interface {
	// ObserveRequest counts one request: the mount that served it ("" for
	// none), its operation ("" when the method has none), the status sent
	// and how long it took.
	ObserveRequest(mount, operation string, status int, took time.Duration)
	// Render renders every metric in format ("" or "json", or
	// "prometheus"); a bad format is a *logical.CodedError.
	Render(format string) (*logical.RawBody, error)
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
	// MaxSnapshotSize limits the body of a snapshot restore instead; 0
	// means DefaultMaxSnapshotSize.
	MaxSnapshotSize int64
	// MaxRequestDuration bounds each request; 0 means 90 s.
	MaxRequestDuration time.Duration
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Version is reported by health and seal-status.
	Version string
	// Now tells the time (server_time_utc); time.Now when nil.
	Now func() time.Time
	// Metrics, when set, counts and times every request.
	Metrics Metrics
	// UnauthenticatedMetrics serves sys/metrics without a token (and
	// without an audit entry), even while sealed: for scrapers on a
	// listener that only they can reach.
	UnauthenticatedMetrics bool
	// ForwardTLS is the TLS configuration for forwarding a standby's
	// clients to the active server (nil: the system's roots).
	ForwardTLS *tls.Config
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
	metrics Metrics
	// unauthMetrics serves sys/metrics here, without a token.
	unauthMetrics bool
	// bufs recycles the buffers of small responses (see respondResult).
	bufs sync.Pool
	// fwd carries a standby's clients to the active server, copying
	// bodies through fwdBufs.
	fwd     *http.Transport
	fwdBufs bufferPool

	// maxSnapshot limits a snapshot restore's body.
	maxSnapshot int64
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
		metrics: opts.Metrics,

		unauthMetrics: opts.UnauthenticatedMetrics && opts.Metrics != nil,
		fwd:           newForwardTransport(opts.ForwardTLS),
	}
	h.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	h.maxSnapshot = opts.MaxSnapshotSize
	if h.maxSnapshot <= 0 {
		h.maxSnapshot = DefaultMaxSnapshotSize
	}
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
	st := new(requestState)
	start := time.Now()
	if h.metrics == nil {
		h.serve(w, r, start, st, nil)
		return
	}
	sw := &st.sw
	sw.ResponseWriter = w
	rl := &st.labels
	h.serve(sw, r, start, st, rl)
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusSwitchingProtocols {
		// An event subscription: its duration is the client's, not the
		// server's latency.
		return
	}
	h.metrics.ObserveRequest(rl.mount, rl.operation, status, time.Since(start))
}

// requestState is what serving a request needs of its own, allocated in
// one piece: the deadline of its context, the metrics' view of it and,
// for a logical request, the request and its client's description.
type requestState struct {
	deadline deadlineCtx
	sw       statusWriter
	labels   routeLabels
	req      core.Request
	conn     logical.Connection
	// reqID and path render the response, should it be wrapped.
	reqID, path string
}

// RenderWrapped implements core.WrapRenderer.
func (st *requestState) RenderWrapped(res *core.Result) ([]byte, error) {
	return renderWrapped(st.reqID, st.path, res)
}

// routeLabels is what a served request tells the metrics: its mount and
// operation.
type routeLabels struct {
	mount, operation string
}

func (rl *routeLabels) set(mount, operation string) {
	if rl != nil {
		rl.mount, rl.operation = mount, operation
	}
}

// statusWriter remembers the status a handler sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sysOperation is the operation of a request to a seal endpoint, which
// has no logical operation of its own.
func sysOperation(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return string(logical.ReadOperation)
	case http.MethodPut, http.MethodPost:
		return string(logical.UpdateOperation)
	}
	return ""
}

// noStore is the Cache-Control of every answer, shared like
// jsonContentType.
var noStore = []string{"no-store"}

// serve serves a request that arrived at start; rl, when set, learns its
// labels.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, start time.Time, st *requestState, rl *routeLabels) {
	hdr := w.Header()
	hdr["Cache-Control"] = noStore
	ns := header(r.Header, "X-Vault-Namespace")
	if ns != "" {
		hdr.Set("X-Vault-Namespace", ns)
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		writeErrors(w, http.StatusNotFound)
		return
	}
	if msg := checkPath(p, r.Method); msg != "" {
		writeErrors(w, http.StatusBadRequest, msg)
		return
	}
	wrapTTL, msg := parseWrapTTL(header(r.Header, "X-Vault-Wrap-Ttl"))
	if msg == "" && wrapTTL > 0 && !wrappable(p) {
		msg = "response wrapping (X-Vault-Wrap-TTL) is not supported on " + p + ": request the response unwrapped"
	}
	if msg != "" {
		writeErrors(w, http.StatusBadRequest, msg)
		return
	}
	if !rootNamespace(ns) {
		if rootOnly(p) {
			writeErrors(w, http.StatusBadRequest, "operation unavailable in namespaces")
			return
		}
		writeErrors(w, http.StatusNotFound, noRouteMessage(p))
		return
	}
	ctx := r.Context()
	if !isEventsPath(p) {
		// An event subscription lasts as long as its client wants.
		ctx = st.deadline.start(ctx, start.Add(h.maxDur))
		defer st.deadline.end(context.Canceled)
	}
	switch p {
	case "sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/leader", "sys/seal", "sys/step-down",
		"sys/generate-root/attempt", "sys/generate-root/update":
		rl.set("sys/", sysOperation(r.Method))
	case "sys/metrics":
		if h.unauthMetrics {
			rl.set("sys/", sysOperation(r.Method))
			h.handleMetrics(w, r)
			return
		}
	}
	if !localOnStandby(p) && h.core.Standby() {
		rl.set("", "")
		h.forward(w, r.WithContext(ctx), p)
		return
	}
	// After forwarding: snapshots are taken and restored by the active
	// server.
	if isSnapshotPath(p) {
		rl.set("sys/", sysOperation(r.Method))
		h.handleSnapshot(ctx, w, r, p)
		return
	}
	if isEventsPath(p) {
		rl.set("sys/", sysOperation(r.Method))
		h.handleEvents(ctx, w, r, p)
		return
	}
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
	case "sys/step-down":
		h.handleStepDown(ctx, w, r)
	case "sys/generate-root/attempt":
		h.handleGenerateRootAttempt(ctx, w, r)
	case "sys/generate-root/update":
		h.handleGenerateRootUpdate(ctx, w, r)
	default:
		h.handleLogical(ctx, w, r, p, wrapTTL, st, rl)
	}
}

// wrappable reports whether the response to a request for p may be
// wrapped: the paths served through the request pipeline. The others
// (health, seal and unseal, generate-root, snapshots, event streams)
// refuse a wrap TTL rather than answer in clear what the client asked to
// receive wrapped.
func wrappable(p string) bool {
	switch p {
	case "sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/leader", "sys/seal", "sys/step-down",
		"sys/generate-root/attempt", "sys/generate-root/update", "sys/metrics":
		return false
	}
	return !isSnapshotPath(p) && !isEventsPath(p)
}

// rootNamespace reports whether an X-Vault-Namespace value names the root
// namespace, the only one this server has.
func rootNamespace(ns string) bool {
	ns = strings.Trim(ns, "/ ")
	return ns == "" || ns == "root"
}

// rootOnly reports the paths Vault serves only in the root namespace: a
// request for one under another namespace is a 400, not a 404.
func rootOnly(p string) bool {
	switch p {
	case "sys/init", "sys/seal", "sys/unseal", "sys/health", "sys/step-down", "sys/metrics", "sys/raw":
		return true
	}
	for _, prefix := range []string{"sys/rekey", "sys/generate-root", "sys/raw/", "sys/storage", "sys/pprof"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// checkPath rejects parent references and non-printable characters, and
// writes (POST, PUT, PATCH) to a path that is not UTF-8: what they would
// create, JSON could not name (a list would show U+FFFD for its bad
// bytes, a name no client could ask for). Reads, lists and deletes still
// reach what an older version may have stored under such a path.
func checkPath(p, method string) string {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." {
			return "invalid request path: parent references are not allowed"
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "invalid request path: non-printable characters are not allowed"
		}
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if !utf8.ValidString(p) {
			return "invalid request path: not valid UTF-8"
		}
	}
	return ""
}

// parseWrapTTL parses X-Vault-Wrap-TTL: integer seconds or a Go
// duration; zero (or no header) asks for no wrapping. A value that is not
// a duration, or is negative, is refused (msg) as Vault refuses it.
func parseWrapTTL(v string) (ttl time.Duration, msg string) {
	if v == "" {
		return 0, ""
	}
	ttl, err := api.ParseDuration(v)
	switch {
	case err != nil:
		return 0, "error parsing X-Vault-Wrap-TTL header: not a duration"
	case ttl < 0:
		return 0, "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"
	}
	return ttl, ""
}

// header is h.Get(key) for a key already in canonical form, without
// canonicalizing it again on every request: the server stores received
// header names canonicalized.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// requestToken returns X-Vault-Token, else the bearer token of
// Authorization.
func requestToken(r *http.Request) secret.String {
	if t := header(r.Header, "X-Vault-Token"); t != "" {
		return secret.NewString(t)
	}
	if a := header(r.Header, "Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return secret.NewString(strings.TrimSpace(a[7:]))
	}
	return secret.String{}
}
