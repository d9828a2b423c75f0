package httpapi

import (
	"context"
	"net/http"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/core"
)

// writeGenerateRoot renders an attempt as Vault does (api's wire type).
func writeGenerateRoot(w http.ResponseWriter, st core.GenerateRootStatus) {
	writeJSON(w, http.StatusOK, api.GenerateRootStatusResponse{
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
		p, ok := h.readParams(w, r)
		if !ok {
			return
		}
		otp, pgp := p.string("otp"), p.string("pgp_key")
		if p.refused(w) {
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
	p, ok := h.readParams(w, r)
	if !ok {
		return
	}
	key, nonce := p.string("key"), p.string("nonce")
	if p.refused(w) {
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
