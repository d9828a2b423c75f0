package proxy

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// The agent's own endpoints.
const (
	pathQuit       = "/agent/v1/quit"
	pathCacheClear = "/agent/v1/cache-clear"
	agentPrefix    = "/agent/"
)

// requestHeader is the header require_request_header asks for, with the
// value "true": a browser cannot send it cross-origin without a preflight,
// which protects the listener from request forgery.
const requestHeader = "X-Vault-Request"

// handler is what one listener serves: the agent's endpoints and, for
// everything else, the server's API through the proxy.
func (p *Proxy) handler(l config.AgentListener) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.RequireRequestHeader && r.Header.Get(requestHeader) != "true" {
			writeError(w, http.StatusPreconditionFailed, "missing '"+requestHeader+"' header")
			return
		}
		switch path := r.URL.Path; {
		case path == pathQuit:
			p.serveQuit(w, r, l)
		case path == pathCacheClear && p.cache != nil:
			p.serveCacheClear(w, r)
		case strings.HasPrefix(path, agentPrefix):
			writeError(w, http.StatusNotFound, "no handler for route \""+path+"\"")
		default:
			p.serveAPI(w, r)
		}
	})
}

// serveQuit asks the agent to stop, on listeners with agent_api {
// enable_quit = true }.
func (p *Proxy) serveQuit(w http.ResponseWriter, r *http.Request, l config.AgentListener) {
	if !l.EnableQuit {
		writeError(w, http.StatusNotFound, "no handler for route \""+pathQuit+"\": agent_api { enable_quit } is not set on this listener")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed: use POST")
		return
	}
	p.log.Info("quit requested through the agent API")
	w.WriteHeader(http.StatusOK)
	p.o.Quit()
}

// cacheClearRequest is the body of /agent/v1/cache-clear.
type cacheClearRequest struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	// Namespace is accepted for Vault's clients and ignored: Vigil has
	// no namespaces.
	Namespace string `json:"namespace"`
}

// serveCacheClear evicts cache entries by request path, lease, token,
// token accessor, or all of them.
func (p *Proxy) serveCacheClear(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed: use POST or PUT")
		return
	}
	var req cacheClearRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		msg := "failed to parse JSON input"
		if errors.Is(err, io.EOF) {
			msg += ": empty JSON provided"
		}
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	value := secret.NewString(req.Value) // a token, for type "token"
	n, err := p.cache.clear(req.Type, value)
	if err != nil {
		writeError(w, http.StatusBadRequest, "failed to clear cache: "+err.Error())
		return
	}
	p.log.Info("cache cleared", "type", req.Type, "evicted", n)
	w.WriteHeader(http.StatusOK)
}

// writeError answers with Vault's error envelope.
func writeError(w http.ResponseWriter, status int, msgs ...string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors []string `json:"errors"`
	}{msgs})
}
