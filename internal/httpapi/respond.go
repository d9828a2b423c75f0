package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// envelope is Vault's success body.
type envelope struct {
	RequestID     string         `json:"request_id"`
	LeaseID       string         `json:"lease_id"`
	Renewable     bool           `json:"renewable"`
	LeaseDuration int64          `json:"lease_duration"`
	Data          map[string]any `json:"data"`
	WrapInfo      any            `json:"wrap_info"`
	Warnings      []string       `json:"warnings"`
	Auth          map[string]any `json:"auth"`
	MountType     string         `json:"mount_type,omitempty"`
}

// authObject renders the token a login or token creation made, as Vault
// does (spec §1.7): the Go client's Auth().Login refuses a response whose
// mfa_requirement is not null, and token_policies is left out when empty.
func authObject(a *logical.Auth) map[string]any {
	var meta any // null when empty
	if len(a.Metadata) > 0 {
		meta = a.Metadata
	}
	policies := a.Policies
	if policies == nil {
		policies = []string{}
	}
	m := map[string]any{
		"client_token":    a.ClientToken,
		"accessor":        a.Accessor,
		"policies":        policies,
		"metadata":        meta,
		"lease_duration":  int64(a.TTL.Seconds()),
		"renewable":       a.Renewable,
		"entity_id":       a.EntityID,
		"token_type":      a.TokenType,
		"orphan":          a.Orphan,
		"num_uses":        a.NumUses,
		"mfa_requirement": nil,
	}
	if len(a.Policies) > 0 {
		m["token_policies"] = a.Policies
	}
	return m
}

// injectPaths are the routes whose data keys are also copied to the top
// level of the body, for clients of Vault's older API.
var injectPaths = []string{
	"sys/audit", "sys/audit-hash/", "sys/auth", "sys/mounts", "sys/policy",
	"sys/capabilities", "sys/capabilities-accessor", "sys/capabilities-self",
	"sys/key-status", "sys/ha-status", "sys/rotate", "sys/remount",
	"sys/wrapping/wrap", "sys/config/cors", "sys/config/auditing/request-headers",
	"sys/rekey/backup", "sys/rekey/recovery-key-backup",
}

func injects(path string) bool {
	if !strings.HasPrefix(path, "sys/") {
		return false // every inject path is a sys/ one
	}
	for _, p := range injectPaths {
		if path == p || (len(path) > len(p) && path[:len(p)] == p && (p[len(p)-1] == '/' || path[len(p)] == '/')) {
			return true
		}
	}
	return false
}

// respondResult renders a served request.
func (h *Handler) respondResult(w http.ResponseWriter, reqID, path string, res *core.Result) {
	if res.Wrap != nil {
		writeJSON(w, http.StatusOK, wrappedEnvelope(reqID, res.Wrap))
		return
	}
	resp := res.Response
	status := http.StatusOK
	if resp.StatusCode != 0 {
		status = resp.StatusCode
	}
	if raw := resp.Raw; raw != nil {
		w.Header()["Content-Type"] = []string{raw.ContentType}
		w.WriteHeader(status)
		_, _ = w.Write(raw.Body)
		return
	}
	if resp.Data == nil && resp.Secret == nil && resp.Auth == nil && len(resp.Warnings) == 0 && resp.StatusCode == 0 {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	env := envelopeOf(reqID, res)
	if injects(path) && resp.Data != nil {
		writeJSON(w, status, injected(env))
		return
	}
	bp := h.bufs.Get().(*[]byte)
	body, err := appendEnvelope((*bp)[:0], &env)
	if err != nil {
		h.bufs.Put(bp)
		h.log.Error("encode response", "path", path, "error", err)
		writeErrors(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
	// Response bodies carry secrets: clear the buffer before reuse, and
	// drop buffers grown by a large response.
	clear(body)
	if cap(body) <= maxPooledBuf {
		*bp = body[:0]
		h.bufs.Put(bp)
	}
}

const maxPooledBuf = 64 << 10

// envelopeOf is the envelope of a served request's response.
func envelopeOf(reqID string, res *core.Result) envelope {
	resp := res.Response
	env := envelope{
		RequestID: reqID,
		Data:      resp.Data,
		Warnings:  resp.Warnings,
		MountType: res.MountType,
	}
	if resp.Auth != nil {
		env.Auth = authObject(resp.Auth)
	}
	if s := resp.Secret; s != nil {
		env.LeaseID = s.LeaseID
		env.Renewable = s.Renewable
		env.LeaseDuration = int64(s.TTL.Seconds())
	}
	return env
}

// renderWrapped renders a response as respondResult would send it, for a
// wrapping token to hold (an unwrapped response, already rendered, as it
// is).
func renderWrapped(reqID, path string, res *core.Result) ([]byte, error) {
	resp := res.Response
	if raw := resp.Raw; raw != nil {
		return bytes.Clone(raw.Body), nil
	}
	env := envelopeOf(reqID, res)
	if injects(path) && resp.Data != nil {
		return json.Marshal(injected(env))
	}
	return appendEnvelope(nil, &env)
}

// wrappedEnvelope is the answer to a wrapped request: the wrapping token
// in wrap_info, nothing else (spec §11).
func wrappedEnvelope(reqID string, wi *core.WrapInfo) map[string]any {
	info := map[string]any{
		"token":         wi.Token.Reveal(),
		"accessor":      wi.Accessor,
		"ttl":           int64(wi.TTL / time.Second),
		"creation_time": wi.CreationTime.UTC().Format(time.RFC3339Nano),
		"creation_path": wi.CreationPath,
	}
	if wi.WrappedAccessor != "" {
		info["wrapped_accessor"] = wi.WrappedAccessor
	}
	return map[string]any{
		"request_id":     reqID,
		"lease_id":       "",
		"renewable":      false,
		"lease_duration": 0,
		"data":           nil,
		"wrap_info":      info,
		"warnings":       nil,
		"auth":           nil,
	}
}

// jsonContentType is the Content-Type of JSON answers: one slice shared by
// all responses and never modified (net/http only reads header values),
// which saves an allocation per response.
var jsonContentType = []string{"application/json"}

// injected returns env as a map with the data keys copied to the top level
// (envelope fields win on a clash).
func injected(env envelope) map[string]any {
	m := make(map[string]any, len(env.Data)+9)
	for k, v := range env.Data {
		m[k] = v
	}
	m["request_id"] = env.RequestID
	m["lease_id"] = env.LeaseID
	m["renewable"] = env.Renewable
	m["lease_duration"] = env.LeaseDuration
	m["data"] = env.Data
	m["wrap_info"] = nil
	m["warnings"] = env.Warnings
	m["auth"] = env.Auth // a nil map renders as null
	if env.MountType != "" {
		m["mount_type"] = env.MountType
	}
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeErrors writes {"errors":[...]} (an empty list when msgs is empty).
func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, struct {
		Errors []string `json:"errors"`
	}{msgs})
}

// noRouteMessage is the exact text clients match for an unmounted path.
func noRouteMessage(path string) string {
	return `no handler for route "` + path + `". route entry not found.`
}

// errorStatus is the one table that maps errors to HTTP statuses and the
// messages clients see. Anything it does not know is a 500 whose cause is
// logged, not sent.
func errorStatus(err error, path string) (status int, msgs []string, internal bool) {
	var coded *logical.CodedError
	switch {
	case errors.As(err, &coded):
		return coded.Status, []string{coded.Msg}, coded.Status >= 500
	case errors.Is(err, core.ErrSealed):
		return http.StatusServiceUnavailable, []string{"Vault is sealed"}, false
	case errors.Is(err, core.ErrStandby):
		return http.StatusServiceUnavailable, []string{"node is not active"}, false
	case errors.Is(err, core.ErrNoLeader):
		return http.StatusServiceUnavailable, []string{"no active Vault instance found"}, false
	case errors.Is(err, core.ErrCannotSealStandby):
		return http.StatusBadRequest, []string{"cannot seal a standby node; stop its process instead"}, false
	case errors.Is(err, core.ErrNotInitialized):
		return http.StatusBadRequest, []string{"server is not yet initialized"}, false
	case errors.Is(err, core.ErrAlreadyInitialized):
		return http.StatusBadRequest, []string{"Vault is already initialized"}, false
	case errors.Is(err, core.ErrAlreadyUnsealed):
		return http.StatusBadRequest, []string{"vault is unsealed"}, false
	case errors.Is(err, core.ErrNoRoute):
		return http.StatusNotFound, []string{noRouteMessage(path)}, false
	case errors.Is(err, core.ErrTooManySubscribers):
		return http.StatusServiceUnavailable, []string{"too many event subscriptions: try again later"}, false
	case errors.Is(err, logical.ErrRateLimited):
		return http.StatusTooManyRequests, []string{"rate limit exceeded: too many login attempts from this address"}, false
	case errors.Is(err, logical.ErrPermissionDenied):
		return http.StatusForbidden, []string{"permission denied"}, false
	case errors.Is(err, logical.ErrNotFound):
		return http.StatusNotFound, nil, false
	case errors.Is(err, logical.ErrUnsupportedPath):
		return http.StatusNotFound, []string{"unsupported path"}, false
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return http.StatusMethodNotAllowed, []string{"unsupported operation"}, false
	case errors.Is(err, logical.ErrInvalidRequest):
		return http.StatusBadRequest, []string{err.Error()}, false
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, []string{"request timed out"}, true
	}
	return http.StatusInternalServerError, []string{"internal error"}, true
}

// respondError renders err; internal causes are logged with the request id.
func (h *Handler) respondError(w http.ResponseWriter, reqID, path string, err error) {
	status, msgs, internal := errorStatus(err, path)
	var rl *logical.RateLimitError
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(rl.RetryAfter.Seconds())), 10))
	}
	if internal {
		h.log.Error("request failed", "request_id", reqID, "path", path, "status", status, "error", err)
	}
	writeErrors(w, status, msgs...)
}
