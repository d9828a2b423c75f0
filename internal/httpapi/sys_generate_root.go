package httpapi

import (
	"context"
	"net/http"

	"github.com/vigil-secrets/vigil/internal/core"
)

// generateRootBody is the body of sys/generate-root/attempt and
// sys/generate-root/update, as Vault sends it.
type generateRootBody struct {
	Nonce            string `json:"nonce"`
	Started          bool   `json:"started"`
	Progress         int    `json:"progress"`
	Required         int    `json:"required"`
	Complete         bool   `json:"complete"`
	EncodedToken     string `json:"encoded_token"`
	EncodedRootToken string `json:"encoded_root_token"`
	PGPFingerprint   string `json:"pgp_fingerprint"`
	OTP              string `json:"otp"`
	OTPLength        int    `json:"otp_length"`
}

func writeGenerateRoot(w http.ResponseWriter, st core.GenerateRootStatus) {
	writeJSON(w, http.StatusOK, generateRootBody{
		Nonce: st.Nonce, Started: st.Started, Progress: st.Progress, Required: st.Required,
		Complete: st.Complete, EncodedToken: st.EncodedToken, EncodedRootToken: st.EncodedToken,
		OTP: st.OTP, OTPLength: st.OTPLength,
	})
}

// handleGenerateRootAttempt serves sys/generate-root/attempt: GET the
// status, PUT to start (otp or pgp_key), DELETE to cancel. Like the other
// seal endpoints it needs no token: the key shares are the authority.
func (h *Handler) handleGenerateRootAttempt(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	const path = "sys/generate-root/attempt"
	var st core.GenerateRootStatus
	var err error
	switch r.Method {
	case http.MethodGet:
		st, err = h.core.GenerateRootStatus(ctx)
	case http.MethodPut, http.MethodPost:
		data, ok := h.readParams(w, r)
		if !ok {
			return
		}
		p := fields{data: data}
		otp, pgp := p.string("otp"), p.string("pgp_key")
		if err := p.err(); err != nil {
			writeErrors(w, http.StatusBadRequest, err.Error())
			return
		}
		st, err = h.core.GenerateRootInit(ctx, otp, pgp)
	case http.MethodDelete:
		if err := h.core.GenerateRootCancel(ctx); err != nil {
			h.respondError(w, "", path, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		writeErrors(w, http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		h.respondError(w, "", path, err)
		return
	}
	writeGenerateRoot(w, st)
}

// handleGenerateRootUpdate serves sys/generate-root/update: one key share
// (key) for the attempt named by nonce.
func (h *Handler) handleGenerateRootUpdate(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if !methodIs(w, r, http.MethodPut, http.MethodPost) {
		return
	}
	data, ok := h.readParams(w, r)
	if !ok {
		return
	}
	p := fields{data: data}
	key, nonce := p.string("key"), p.string("nonce")
	if err := p.err(); err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	if key == "" {
		writeErrors(w, http.StatusBadRequest, "'key' must be specified in request body as JSON")
		return
	}
	st, err := h.core.GenerateRootUpdate(ctx, key, nonce)
	if err != nil {
		h.respondError(w, "", "sys/generate-root/update", err)
		return
	}
	writeGenerateRoot(w, st)
}
