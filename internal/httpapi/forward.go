package httpapi

import (
	"crypto/tls"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// Request forwarding: an HA standby serves its clients by passing their
// requests to the active server (a reverse proxy to the active's
// api_addr) and its answers back, so that clients see one service. The
// standby adds the client's address, the time and a MAC over them, the
// method and the path, under a key only the cluster's unsealed servers
// derive; the active server believes the forwarded address only when the
// MAC checks out and the time is recent. Anything else a client sends in
// those headers is ignored.

// The headers of a forwarded request.
const (
	hdrForwardedFor = "X-Vigil-Forwarded-For"
	hdrForwardedAt  = "X-Vigil-Forwarded-At"
	hdrForwardedMAC = "X-Vigil-Forwarded-Mac"
)

// forwardMaxAge bounds how old a forwarded request's signature may be.
const forwardMaxAge = time.Minute

// forwardMessage is what the MAC of a forwarded request covers.
func forwardMessage(client, at, method, path string) []byte {
	return []byte("vigil-forward v1\n" + client + "\n" + at + "\n" + method + "\n" + path)
}

// localOnStandby reports the paths a standby answers itself: the ones
// that describe this server, and unsealing it.
func localOnStandby(p string) bool {
	switch p {
	case "sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/leader", "sys/seal":
		return true
	}
	return false
}

// newForwardTransport returns the transport to the active server: many
// idle connections (a standby may carry a whole service's traffic), the
// given TLS settings, HTTP/2 where the active offers it.
func newForwardTransport(tc *tls.Config) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// forward passes r to the active server and its answer back to w.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, path string) {
	if r.Header.Get(hdrForwardedMAC) != "" {
		// Forwarded to a standby: its view of the leader is stale. The
		// client retries; forwarding again could loop.
		h.respondError(w, "", path, errStandbyHop)
		return
	}
	addr, err := h.core.ActiveAddress(r.Context())
	if err != nil {
		h.respondError(w, "", path, err)
		return
	}
	target, err := url.Parse(addr)
	if err != nil || target.Host == "" || (target.Scheme != "http" && target.Scheme != "https") {
		h.log.Error("the active server's api_addr is not a URL", "api_addr", addr)
		h.respondError(w, "", path, errStandbyHop)
		return
	}
	conn := h.connection(r)
	client := net.JoinHostPort(conn.RemoteAddr, strconv.Itoa(conn.RemotePort))
	at := strconv.FormatInt(h.now().Unix(), 10)
	mac, ok := h.core.ForwardMAC(forwardMessage(client, at, r.Method, r.URL.Path))
	if !ok {
		h.respondError(w, "", path, errStandbyHop)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(hdrForwardedFor, client)
			pr.Out.Header.Set(hdrForwardedAt, at)
			pr.Out.Header.Set(hdrForwardedMAC, hex.EncodeToString(mac))
		},
		Transport:  h.fwd,
		BufferPool: &h.fwdBufs,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.core.ForgetLeader()
			h.log.Warn("forwarding to the active server failed", "active", addr, "path", path, "error", err)
			writeErrors(w, http.StatusServiceUnavailable, "node is not active: the active server could not be reached")
		},
		ErrorLog: nil,
	}
	proxy.ServeHTTP(w, r)
}

// forwardedClient returns the client address a standby vouched for, and
// false when r was not forwarded or its signature does not check out.
func (h *Handler) forwardedClient(r *http.Request) (host string, port int, ok bool) {
	macHex := r.Header.Get(hdrForwardedMAC)
	if macHex == "" {
		return "", 0, false
	}
	client, at := r.Header.Get(hdrForwardedFor), r.Header.Get(hdrForwardedAt)
	mac, err := hex.DecodeString(macHex)
	if err != nil {
		return "", 0, false
	}
	sec, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return "", 0, false
	}
	if age := h.now().Sub(time.Unix(sec, 0)); age > forwardMaxAge || age < -forwardMaxAge {
		return "", 0, false
	}
	if !h.core.CheckForwardMAC(forwardMessage(client, at, r.Method, r.URL.Path), mac) {
		return "", 0, false
	}
	host, p, err := net.SplitHostPort(client)
	if err != nil {
		return "", 0, false
	}
	port, _ = strconv.Atoi(p)
	return strings.Trim(host, "[]"), port, true
}

// bufferPool recycles the buffers a standby copies response bodies
// through (httputil.ReverseProxy would allocate 32 KiB per request).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// errStandbyHop answers a request that cannot be forwarded now; clients
// (the Vault client among them) retry a 503.
var errStandbyHop = &logical.CodedError{Status: http.StatusServiceUnavailable, Msg: "node is not active"}
