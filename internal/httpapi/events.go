package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Change events over a WebSocket, Vault's shape:
//
//	GET /v1/sys/events/subscribe/<event type>?json=true
//	X-Vault-Token: …   (or Authorization: Bearer …)
//	Connection: Upgrade, Upgrade: websocket
//
// The token is checked, and the request recorded, before the upgrade: a
// refusal is an ordinary JSON error answer (403, 400...). Once upgraded,
// the server sends each event as one text message (CloudEvents JSON, one
// line; see package events) and never reads anything but control frames.
// It pings every 30 seconds. It ends the stream with a close frame whose
// code says why:
//
//	1008 policy violation   the token was revoked, expired or lost access
//	1012 service restart    the server sealed or stopped being active
//	1013 try again later    the subscriber fell behind and lost events
//	1011 internal error
//
// after which the client subscribes again (and, after 1013, reads again
// what it watches). Vault sends protobuf unless json=true; Vigil sends JSON
// only and refuses a subscription without json=true. A filter (the
// "filter" parameter, go-bexpr) is accepted in the subset that
// events.ParseFilter documents. The namespaces parameter names child
// namespaces, which Vigil does not have: only the root namespace is
// served.
//
// The request has no time limit (MaxRequestDuration does not apply), and
// a standby forwards it to the active server like any request: the
// reverse proxy carries the upgraded connection.

// eventsCore is what the events endpoint needs of the core. It is kept
// apart from Core: a core without it answers 404.
type eventsCore interface {
	SubscribeEvents(ctx context.Context, req core.EventsRequest) (*core.EventStream, error)
}

// Timings of an event stream.
const (
	// eventPingInterval keeps idle connections (and the proxies on the
	// way) alive, and tells clients the server is there.
	eventPingInterval = 30 * time.Second
	// eventWriteTimeout bounds the sending of one message: a client that
	// stops reading is disconnected.
	eventWriteTimeout = 30 * time.Second
)

// isEventsPath reports the subscription paths.
func isEventsPath(p string) bool {
	return strings.HasPrefix(p, core.EventsSubscribePrefix) || p == strings.TrimSuffix(core.EventsSubscribePrefix, "/")
}

// handleEvents serves GET sys/events/subscribe/<event type>.
func (h *Handler) handleEvents(ctx context.Context, w http.ResponseWriter, r *http.Request, path string) {
	ec, ok := h.core.(eventsCore)
	if !ok {
		writeErrors(w, http.StatusNotFound, noRouteMessage(path))
		return
	}
	if r.Method != http.MethodGet {
		writeErrors(w, http.StatusMethodNotAllowed)
		return
	}
	eventType := strings.TrimSpace(strings.TrimPrefix(path, core.EventsSubscribePrefix))
	if eventType == "" || !strings.HasPrefix(path, core.EventsSubscribePrefix) {
		writeErrors(w, http.StatusBadRequest, "did not specify eventType to subscribe to")
		return
	}
	data, err := queryData(r.URL.RawQuery)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	if v := q.Get("json"); v == "" {
		writeErrors(w, http.StatusBadRequest, "events are sent as JSON only: subscribe with json=true")
		return
	} else if b, err := strconv.ParseBool(v); err != nil {
		writeErrors(w, http.StatusBadRequest, "invalid parameter for JSON: "+strconv.Quote(v))
		return
	} else if !b {
		writeErrors(w, http.StatusBadRequest, "events are sent as JSON only: subscribe with json=true")
		return
	}
	for _, ns := range q["namespaces"] {
		if !rootNamespace(ns) {
			writeErrors(w, http.StatusBadRequest, "namespaces are not supported: only the root namespace is served")
			return
		}
	}
	if !isWebSocketUpgrade(r) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		writeErrors(w, http.StatusUpgradeRequired, "sys/events/subscribe is served over a WebSocket: send an upgrade request")
		return
	}
	reqID := secret.UUID()
	stream, err := ec.SubscribeEvents(ctx, core.EventsRequest{
		ID:         reqID,
		EventType:  eventType,
		Filter:     q.Get("filter"),
		Data:       data,
		Token:      requestToken(r),
		Connection: h.connection(r),
		Headers:    r.Header,
	})
	if err != nil {
		h.respondError(w, reqID, path, err)
		return
	}
	defer stream.Close()
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		// Accept has answered the client.
		h.log.Warn("event subscription: websocket upgrade failed", "request_id", reqID, "error", err)
		return
	}
	h.serveEvents(ctx, conn, stream, reqID)
}

// serveEvents sends the stream's events until it ends, the client goes
// away or a write fails, then closes the connection with the code that
// says why.
func (h *Handler) serveEvents(ctx context.Context, conn *websocket.Conn, stream *core.EventStream, reqID string) {
	// The client sends nothing but control frames; CloseRead answers them
	// and ends ctx when the client closes or breaks the connection.
	ctx = conn.CloseRead(ctx)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		t := time.NewTicker(eventPingInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(ctx, eventWriteTimeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				cancel()
				return
			}
		}
	})
	for {
		msg, err := stream.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				// The client left (or stopped answering pings).
				_ = conn.CloseNow()
				return
			}
			code, reason := eventsCloseStatus(err)
			if code == websocket.StatusInternalError {
				h.log.Error("event subscription failed", "request_id", reqID, "error", err)
			}
			_ = conn.Close(code, reason)
			return
		}
		wctx, wcancel := context.WithTimeout(ctx, eventWriteTimeout)
		err = conn.Write(wctx, websocket.MessageText, msg)
		wcancel()
		if err != nil {
			_ = conn.CloseNow()
			return
		}
	}
}

// eventsCloseStatus maps the error that ended a stream to the WebSocket
// close code and reason the client sees: the WebSocket counterpart of
// errorStatus.
func eventsCloseStatus(err error) (websocket.StatusCode, string) {
	switch {
	case errors.Is(err, core.ErrEventsLost):
		return websocket.StatusTryAgainLater, "events were lost: the subscriber fell behind; subscribe again"
	case errors.Is(err, core.ErrEventsEnded), errors.Is(err, core.ErrSealed), errors.Is(err, core.ErrStandby):
		return websocket.StatusServiceRestart, "the server stopped publishing events; subscribe again"
	case errors.Is(err, logical.ErrPermissionDenied):
		return websocket.StatusPolicyViolation, "permission denied"
	}
	return websocket.StatusInternalError, "internal error"
}

// isWebSocketUpgrade reports whether r asks for a WebSocket: Connection
// lists "upgrade" and Upgrade is "websocket".
func isWebSocketUpgrade(r *http.Request) bool {
	upgrade := false
	for _, v := range r.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				upgrade = true
			}
		}
	}
	return upgrade && strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket")
}
