package httpapi

import (
	"crypto/tls"
	"encoding/base64"
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
// standby adds the client's address, the subject of the TLS client
// certificate it verified (if any), the time and a MAC over them, the
// method and the path, under a key only the cluster's unsealed servers
// derive; the active server believes the forwarded address and subject
// only when the MAC checks out and the time is recent. Anything else a
// client sends in those headers is ignored.

// The headers of a forwarded request.
const (
	hdrForwardedFor = "X-Vigil-Forwarded-For"
	hdrForwardedAt  = "X-Vigil-Forwarded-At"
	hdrForwardedMAC = "X-Vigil-Forwarded-Mac"
	// hdrForwardedCert is the client certificate's subject, base64url
	// (a subject may hold bytes a header may not).
	hdrForwardedCert = "X-Vigil-Forwarded-Cert"
)

// forwardMaxAge bounds how old a forwarded request's signature may be.
const forwardMaxAge = time.Minute

// forwardMessage is what the MAC of a forwarded request covers; cert is
// the encoded subject (hdrForwardedCert). Without one it is the message
// of servers that forwarded no subject, so that a cluster of both kinds
// still agrees on forwarded addresses while it is upgraded.
func forwardMessage(client, cert, at, method, path string) []byte {
	if cert == "" {
		return []byte("vigil-forward v1\n" + client + "\n" + at + "\n" + method + "\n" + path)
	}
	return []byte("vigil-forward v2\n" + client + "\n" + cert + "\n" + at + "\n" + method + "\n" + path)
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
	fwd, ok := h.forwardHeader(r)
	if !ok {
		h.respondError(w, "", path, errStandbyHop)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// A client's own forwarding headers never pass.
			pr.Out.Header.Del(hdrForwardedCert)
			for k, v := range fwd {
				pr.Out.Header[k] = v
			}
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

// forwardHeader returns the headers a standby adds to r, forwarded: its
// client's address and certificate subject, signed; false when the
// standby has no forwarding key (sealed meanwhile).
func (h *Handler) forwardHeader(r *http.Request) (http.Header, bool) {
	conn := h.connection(r)
	client := net.JoinHostPort(conn.RemoteAddr, strconv.Itoa(conn.RemotePort))
	at := strconv.FormatInt(h.now().Unix(), 10)
	cert := ""
	if conn.ClientCertSubject != "" {
		cert = base64.RawURLEncoding.EncodeToString([]byte(conn.ClientCertSubject))
	}
	mac, ok := h.core.ForwardMAC(forwardMessage(client, cert, at, r.Method, r.URL.Path))
	if !ok {
		return nil, false
	}
	hdr := http.Header{
		hdrForwardedFor: {client},
		hdrForwardedAt:  {at},
		hdrForwardedMAC: {hex.EncodeToString(mac)},
	}
	if cert != "" {
		hdr[hdrForwardedCert] = []string{cert}
	}
	return hdr, true
}

// forwardedClient returns the client a standby vouched for, its address
// and the subject of its certificate ("" without one), and false when r
// was not forwarded or its signature does not check out.
func (h *Handler) forwardedClient(r *http.Request) (host string, port int, subject string, ok bool) {
	macHex := r.Header.Get(hdrForwardedMAC)
	if macHex == "" {
		return "", 0, "", false
	}
	client, at, cert := r.Header.Get(hdrForwardedFor), r.Header.Get(hdrForwardedAt), r.Header.Get(hdrForwardedCert)
	mac, err := hex.DecodeString(macHex)
	if err != nil {
		return "", 0, "", false
	}
	sec, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return "", 0, "", false
	}
	if age := h.now().Sub(time.Unix(sec, 0)); age > forwardMaxAge || age < -forwardMaxAge {
		return "", 0, "", false
	}
	if !h.core.CheckForwardMAC(forwardMessage(client, cert, at, r.Method, r.URL.Path), mac) {
		return "", 0, "", false
	}
	host, p, err := net.SplitHostPort(client)
	if err != nil {
		return "", 0, "", false
	}
	sub, err := base64.RawURLEncoding.DecodeString(cert)
	if err != nil {
		return "", 0, "", false
	}
	port, _ = strconv.Atoi(p)
	return strings.Trim(host, "[]"), port, string(sub), true
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
