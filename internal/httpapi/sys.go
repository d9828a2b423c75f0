package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/core"
)

// sealStatusBody is sys/seal-status (and the answer to sys/unseal).
type sealStatusBody struct {
	Type         string `json:"type"`
	Initialized  bool   `json:"initialized"`
	Sealed       bool   `json:"sealed"`
	T            int    `json:"t"`
	N            int    `json:"n"`
	Progress     int    `json:"progress"`
	Nonce        string `json:"nonce"`
	Version      string `json:"version"`
	BuildDate    string `json:"build_date"`
	Migration    bool   `json:"migration"`
	ClusterName  string `json:"cluster_name,omitempty"`
	ClusterID    string `json:"cluster_id,omitempty"`
	RecoverySeal bool   `json:"recovery_seal"`
	// RecoverySealType is "shamir" for an auto seal's recovery keys.
	RecoverySealType string `json:"recovery_seal_type,omitempty"`
	StorageType      string `json:"storage_type,omitempty"`
}

func (h *Handler) sealStatusBody(st core.SealStatus) sealStatusBody {
	return sealStatusBody{
		Type: st.Type, Initialized: st.Initialized, Sealed: st.Sealed,
		T: st.Threshold, N: st.Shares, Progress: st.Progress, Nonce: st.Nonce,
		Version: h.version, BuildDate: "", ClusterName: st.ClusterName, ClusterID: st.ClusterID,
		RecoverySeal: st.RecoverySeal, RecoverySealType: st.RecoverySealType, StorageType: st.StorageType,
	}
}

func methodIs(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	writeErrors(w, http.StatusMethodNotAllowed)
	return false
}

func (h *Handler) handleSealStatus(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if !methodIs(w, r, http.MethodGet) {
		return
	}
	st, err := h.core.SealStatus(ctx)
	if err != nil {
		h.respondError(w, "", "sys/seal-status", err)
		return
	}
	writeJSON(w, http.StatusOK, h.sealStatusBody(st))
}

// healthCodes are sys/health's query parameters and defaults.
var healthCodes = map[string]int{
	"activecode":             http.StatusOK,
	"standbycode":            http.StatusTooManyRequests,
	"drsecondarycode":        472,
	"performancestandbycode": 473,
	"haunhealthycode":        474,
	"removedcode":            530,
	"sealedcode":             http.StatusServiceUnavailable,
	"uninitcode":             http.StatusNotImplemented,
}

func (h *Handler) handleHealth(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if !methodIs(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	q := r.URL.Query()
	codes := make(map[string]int, len(healthCodes))
	for name, def := range healthCodes {
		codes[name] = def
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 100 || n > 999 {
				writeErrors(w, http.StatusBadRequest, fmt.Sprintf("bad code value for %s", name))
				return
			}
			codes[name] = n
		}
	}
	for _, b := range []string{"standbyok", "perfstandbyok"} {
		if v := q.Get(b); v != "" {
			if _, err := strconv.ParseBool(v); err != nil {
				writeErrors(w, http.StatusBadRequest, fmt.Sprintf("bad value for %s parameter", b))
				return
			}
		}
	}
	st, err := h.core.SealStatus(ctx)
	if err != nil {
		h.respondError(w, "", "sys/health", err)
		return
	}
	status := codes["activecode"]
	switch {
	case !st.Initialized:
		status = codes["uninitcode"]
	case st.Sealed:
		status = codes["sealedcode"]
	case st.Standby && !queryBool(q.Get("standbyok")):
		status = codes["standbycode"]
	}
	body := struct {
		Initialized                bool   `json:"initialized"`
		Sealed                     bool   `json:"sealed"`
		Standby                    bool   `json:"standby"`
		PerformanceStandby         bool   `json:"performance_standby"`
		ReplicationPerformanceMode string `json:"replication_performance_mode"`
		ReplicationDRMode          string `json:"replication_dr_mode"`
		ServerTimeUTC              int64  `json:"server_time_utc"`
		Version                    string `json:"version"`
		ClusterName                string `json:"cluster_name,omitempty"`
		ClusterID                  string `json:"cluster_id,omitempty"`
	}{
		Initialized: st.Initialized, Sealed: st.Sealed, Standby: st.Standby,
		ReplicationPerformanceMode: "disabled", ReplicationDRMode: "disabled",
		ServerTimeUTC: h.now().Unix(), Version: h.version,
		ClusterName: st.ClusterName, ClusterID: st.ClusterID,
	}
	if r.Method == http.MethodHead {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, body)
}

func (h *Handler) handleLeader(w http.ResponseWriter, r *http.Request) {
	if !methodIs(w, r, http.MethodGet) {
		return
	}
	st, err := h.core.Leader(r.Context())
	if err != nil {
		h.respondError(w, "", "sys/leader", err)
		return
	}
	if !st.HAEnabled {
		// A single node is never part of an HA cluster: Vault's non-HA
		// answer, with the remaining fields present for clients that
		// decode them.
		st = core.LeaderStatus{}
	}
	at := st.ActiveTime
	if !at.IsZero() {
		at = at.UTC()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ha_enabled":                          st.HAEnabled,
		"is_self":                             st.IsSelf,
		"active_time":                         at.Format(time.RFC3339Nano),
		"leader_address":                      st.LeaderAddress,
		"leader_cluster_address":              "",
		"performance_standby":                 false,
		"performance_standby_last_remote_wal": 0,
	})
}

// handleStepDown makes the active server give up the leader lock (PUT
// sys/step-down, sudo). A standby forwards it to the active server.
func (h *Handler) handleStepDown(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if !methodIs(w, r, http.MethodPut, http.MethodPost) {
		return
	}
	if err := h.core.StepDown(ctx, requestToken(r), h.connection(r)); err != nil {
		h.respondError(w, "", "sys/step-down", err)
		return
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusNoContent)
}

// readParams decodes a JSON object body for the seal endpoints; when it
// cannot, it answers and returns false.
func (h *Handler) readParams(w http.ResponseWriter, r *http.Request) (*fields, bool) {
	data, status, msg := h.parseBody(w, r, false)
	if status != 0 {
		writeErrors(w, status, msg)
		return nil, false
	}
	return &fields{data: data}, true
}

func (h *Handler) handleInit(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		ok, err := h.core.Initialized(ctx)
		if err != nil {
			h.respondError(w, "", "sys/init", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"initialized": ok})
		return
	}
	if !methodIs(w, r, http.MethodPut, http.MethodPost) {
		return
	}
	p, ok := h.readParams(w, r)
	if !ok {
		return
	}
	req := core.InitRequest{
		SecretShares:      p.int("secret_shares"),
		SecretThreshold:   p.int("secret_threshold"),
		RecoveryShares:    p.int("recovery_shares"),
		RecoveryThreshold: p.int("recovery_threshold"),
		PGPKeys:           p.strings("pgp_keys"),
		RecoveryPGPKeys:   p.strings("recovery_pgp_keys"),
		RootTokenPGPKey:   p.string("root_token_pgp_key"),
	}
	if p.refused(w) {
		return
	}
	res, err := h.core.Init(ctx, req)
	if err != nil {
		h.respondError(w, "", "sys/init", err)
		return
	}
	keys, keysB64 := encodeKeys(res.Keys)
	body := map[string]any{
		"keys":        keys,
		"keys_base64": keysB64,
		"root_token":  res.RootToken.Reveal(),
	}
	if len(res.RecoveryKeys) > 0 {
		body["recovery_keys"], body["recovery_keys_base64"] = encodeKeys(res.RecoveryKeys)
	}
	writeJSON(w, http.StatusOK, body)
}

// encodeKeys renders key shares in hex and in base64 (never nil, so that
// an auto seal's empty unseal keys are [] as in Vault).
func encodeKeys(ks [][]byte) (hexKeys, b64Keys []string) {
	hexKeys, b64Keys = make([]string, len(ks)), make([]string, len(ks))
	for i, k := range ks {
		hexKeys[i] = hex.EncodeToString(k)
		b64Keys[i] = base64.StdEncoding.EncodeToString(k)
	}
	return hexKeys, b64Keys
}

func (h *Handler) handleUnseal(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if !methodIs(w, r, http.MethodPut, http.MethodPost) {
		return
	}
	p, ok := h.readParams(w, r)
	if !ok {
		return
	}
	key := p.string("key")
	reset := p.bool("reset")
	_ = p.bool("migrate")
	if p.refused(w) {
		return
	}
	var st core.SealStatus
	var err error
	switch {
	case reset:
		st, err = h.core.ResetUnseal(ctx)
	case key == "":
		writeErrors(w, http.StatusBadRequest, "'key' must be specified in request body as JSON, or 'reset' set to true")
		return
	default:
		st, err = h.core.Unseal(ctx, key)
	}
	if err != nil {
		h.respondError(w, "", "sys/unseal", err)
		return
	}
	writeJSON(w, http.StatusOK, h.sealStatusBody(st))
}

func (h *Handler) handleSeal(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if !methodIs(w, r, http.MethodPut, http.MethodPost) {
		return
	}
	if err := h.core.Seal(ctx, requestToken(r), h.connection(r)); err != nil {
		h.respondError(w, "", "sys/seal", err)
		return
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusNoContent)
}

// fields decodes the few loosely typed parameters of the seal endpoints,
// remembering the first error (which names the field).
type fields struct {
	data  map[string]any
	first error
}

func (f *fields) fail(name, want string) {
	if f.first == nil {
		f.first = fmt.Errorf("invalid value for %q: expected %s", name, want)
	}
}

// refused answers 400 naming the first field of the wrong type, if any,
// and reports whether it did.
func (f *fields) refused(w http.ResponseWriter) bool {
	if f.first == nil {
		return false
	}
	writeErrors(w, http.StatusBadRequest, f.first.Error())
	return true
}

func (f *fields) int(name string) int {
	switch v := f.data[name].(type) {
	case nil:
		return 0
	case json.Number:
		n, err := strconv.Atoi(v.String())
		if err != nil {
			f.fail(name, "an integer")
		}
		return n
	case string:
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			f.fail(name, "an integer")
		}
		return n
	}
	f.fail(name, "an integer")
	return 0
}

func (f *fields) bool(name string) bool {
	switch v := f.data[name].(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.fail(name, "a boolean")
		}
		return b
	}
	f.fail(name, "a boolean")
	return false
}

func (f *fields) string(name string) string {
	switch v := f.data[name].(type) {
	case nil:
		return ""
	case string:
		return v
	}
	f.fail(name, "a string")
	return ""
}

func (f *fields) strings(name string) []string {
	switch v := f.data[name].(type) {
	case nil:
		return nil
	case string:
		if v == "" {
			return nil
		}
		return strings.Split(v, ",")
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				f.fail(name, "a list of strings")
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	f.fail(name, "a list of strings")
	return nil
}

// handleMetrics serves sys/metrics without a token, for scrapers on a
// listener with unauthenticated metrics access.
func (h *Handler) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !methodIs(w, r, http.MethodGet) {
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = metricsFormat(r)
	}
	raw, err := h.metrics.Render(format)
	if err != nil {
		h.respondError(w, "", "sys/metrics", err)
		return
	}
	w.Header()["Content-Type"] = []string{raw.ContentType}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw.Body)
}

// metricsFormat is the format a sys/metrics request without a format
// parameter asks for in its Accept header: Prometheus scrapers ask for
// the text or OpenMetrics format.
func metricsFormat(r *http.Request) string {
	accept := r.Header.Get("Accept")
	if strings.HasPrefix(accept, "application/openmetrics-text") || strings.HasPrefix(accept, "text/plain") ||
		strings.Contains(accept, "prometheus/telemetry") {
		return "prometheus"
	}
	return ""
}

// queryBool reads a boolean query parameter already validated as one.
func queryBool(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b
}
