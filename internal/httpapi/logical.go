package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/jsonenc"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// errBodyTooLarge marks a body over the size limit (413).
var errBodyTooLarge = errors.New("request body too large")

// handleLogical serves every path that is not a seal endpoint.
func (h *Handler) handleLogical(ctx context.Context, w http.ResponseWriter, r *http.Request, path string, wrapTTL time.Duration, st *requestState, rl *routeLabels) {
	reqID := secret.UUID()
	op, data, status, msg := h.parseRequest(w, r)
	if status != 0 {
		writeErrors(w, status, msg)
		return
	}
	if op == logical.ListOperation && !strings.HasSuffix(path, "/") {
		path += "/"
	}
	if path == "sys/metrics" && op == logical.ReadOperation && data["format"] == nil {
		if f := metricsFormat(r); f != "" {
			if data == nil {
				data = map[string]any{}
			}
			data["format"] = f
		}
	}
	h.describeClient(&st.conn, r)
	req := &st.req
	*req = core.Request{
		ID:         reqID,
		Operation:  op,
		Path:       path,
		Data:       data,
		Token:      requestToken(r),
		Connection: &st.conn,
		Headers:    r.Header,
	}
	// The renderer is the request's state: no allocation on requests
	// that wrap nothing.
	st.reqID, st.path = reqID, path
	req.WrapTTL, req.WrapRender = wrapTTL, st
	res, err := h.core.HandleRequest(ctx, req)
	rl.set(req.Mount, string(op))
	if err != nil {
		h.respondError(w, reqID, path, err)
		return
	}
	h.respondResult(w, reqID, path, res)
}

// parseRequest maps the method to an operation and decodes the data. A
// non-zero status is an error to send as is.
func (h *Handler) parseRequest(w http.ResponseWriter, r *http.Request) (op logical.Operation, data map[string]any, status int, msg string) {
	switch r.Method {
	case http.MethodGet:
		data, err := queryData(r.URL.RawQuery)
		if err != nil {
			return "", nil, http.StatusBadRequest, err.Error()
		}
		op := logical.ReadOperation
		if v, ok := data["list"]; ok {
			list, err := strconv.ParseBool(asString(v))
			if err != nil {
				return "", nil, http.StatusBadRequest, "invalid value for \"list\" query parameter"
			}
			delete(data, "list")
			if list {
				op = logical.ListOperation
			}
		}
		if v, ok := data["help"]; ok {
			if help, _ := strconv.ParseBool(asString(v)); help {
				op = logical.HelpOperation
			}
			delete(data, "help")
		}
		return op, data, 0, ""
	case "LIST":
		data, err := queryData(r.URL.RawQuery)
		if err != nil {
			return "", nil, http.StatusBadRequest, err.Error()
		}
		delete(data, "list")
		return logical.ListOperation, data, 0, ""
	case http.MethodDelete:
		data, err := queryData(r.URL.RawQuery)
		if err != nil {
			return "", nil, http.StatusBadRequest, err.Error()
		}
		return logical.DeleteOperation, data, 0, ""
	case http.MethodPost, http.MethodPut:
		data, status, msg := h.parseBody(w, r, true)
		return logical.UpdateOperation, data, status, msg
	case http.MethodPatch:
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/merge-patch+json" {
			return "", nil, http.StatusUnsupportedMediaType,
				"PATCH requires Content-Type of application/merge-patch+json, provided " + r.Header.Get("Content-Type")
		}
		data, status, msg := h.parseBody(w, r, false)
		return logical.PatchOperation, data, status, msg
	}
	return "", nil, http.StatusMethodNotAllowed, ""
}

// parseBody reads a JSON object body (or a form when the content type says
// so and the body is not JSON). An empty body is no data.
func (h *Handler) parseBody(w http.ResponseWriter, r *http.Request, formOK bool) (map[string]any, int, string) {
	raw, err := readBody(w, r, h.maxSize)
	if errors.Is(err, errBodyTooLarge) {
		return nil, http.StatusRequestEntityTooLarge, "request body too large"
	}
	if err != nil {
		return nil, http.StatusBadRequest, "failed to read request body"
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, 0, ""
	}
	if formOK && trimmed[0] != '{' && trimmed[0] != '[' {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/x-www-form-urlencoded" {
			data, err := queryData(string(trimmed))
			if err != nil {
				return nil, http.StatusBadRequest, err.Error()
			}
			return data, 0, ""
		}
	}
	data, err := decodeObject(trimmed)
	if err != nil {
		return nil, http.StatusBadRequest, err.Error()
	}
	return data, 0, ""
}

// decodeObject parses a JSON object with numbers kept as json.Number.
func decodeObject(raw []byte) (map[string]any, error) {
	v, err := jsonenc.Decode(raw)
	if err != nil {
		return nil, errors.New("failed to parse JSON input: " + jsonErrText(err))
	}
	if v == nil {
		// JSON null: what the Vault Go client sends for a write with no
		// data (Logical().Write(path, nil)); Vault takes it as {}.
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("failed to parse JSON input: the body must be a JSON object")
	}
	return m, nil
}

// jsonErrText describes a JSON syntax error without echoing the input
// (jsonenc's errors never quote it).
func jsonErrText(err error) string {
	if errors.Is(err, jsonenc.ErrUnexpectedEnd) {
		return "unexpected end of input"
	}
	return err.Error()
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	raw, err := io.ReadAll(body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errBodyTooLarge
	}
	return raw, err
}

// queryData decodes a query string: one value → string, several → []string.
func queryData(raw string) (map[string]any, error) {
	if raw == "" {
		return nil, nil
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errors.New("failed to parse query parameters")
	}
	data := make(map[string]any, len(vals))
	for k, vs := range vals {
		if len(vs) == 1 {
			data[k] = vs[0]
		} else {
			data[k] = vs
		}
	}
	return data, nil
}

func asString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case []string:
		if len(t) > 0 {
			return t[0]
		}
	}
	return ""
}

// connection describes the client, believing X-Forwarded-For only from a
// trusted proxy.
func (h *Handler) connection(r *http.Request) *logical.Connection {
	c := new(logical.Connection)
	h.describeClient(c, r)
	return c
}

// describeClient fills in c, a zero Connection, for connection.
func (h *Handler) describeClient(c *logical.Connection, r *http.Request) {
	host, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	c.RemoteAddr = host
	c.RemotePort, _ = strconv.Atoi(port)
	if fh, fp, subject, ok := h.forwardedClient(r); ok {
		// A standby of this cluster vouches for its client.
		c.RemoteAddr, c.RemotePort, c.ClientCertSubject = fh, fp, subject
		return
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		// Only a certificate the listener verified names the client.
		c.ClientCertSubject = r.TLS.VerifiedChains[0][0].Subject.String()
	}
	if len(h.proxies) == 0 {
		return
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !h.trusted(addr) {
		return
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		// The nearest untrusted hop is the client.
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop := strings.TrimSpace(hops[i])
			a, err := netip.ParseAddr(hop)
			if err != nil {
				break
			}
			c.RemoteAddr, c.RemotePort = a.String(), 0
			if !h.trusted(a) {
				break
			}
		}
	}
}

func (h *Handler) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range h.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
