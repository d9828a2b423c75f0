package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"strings"

	"github.com/vigil-secrets/vigil/internal/audit"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// auditHeadersKey stores the request headers the audit log records
// (sys/config/auditing/request-headers), behind the barrier.
const auditHeadersKey = "core/audited-headers"

// AuditedHeader is how the audit log records one request header.
type AuditedHeader struct {
	// HMAC logs the header's values as hashes, as secret values are.
	HMAC bool `json:"hmac"`
}

// credentialHeaders carry tokens and session secrets: recording them in
// clear would put credentials into the audit log.
var credentialHeaders = []string{"authorization", "cookie", "proxy-authorization", "x-vault-token"}

// defaultAuditedHeaders are recorded, in clear, without being configured,
// as Vault (1.17 and later) does: a client's correlation id ties its
// requests to its own logs. Configuring one (hmac=true) overrides it;
// deleting that setting returns to the default.
var defaultAuditedHeaders = []string{"correlation-id", "x-correlation-id"}

// auditHeaderSet is the headers the audit log records; it is replaced
// whole, never changed, so requests read it without a lock.
type auditHeaderSet struct {
	configured map[string]AuditedHeader // by lower-case name, as stored
	byName     map[string]AuditedHeader // configured plus the defaults
	names      []string                 // of byName, sorted
	keys       []string                 // the same, as http.Header keys them
}

func newAuditHeaderSet(configured map[string]AuditedHeader) *auditHeaderSet {
	s := &auditHeaderSet{configured: configured, byName: maps.Clone(configured)}
	for _, n := range defaultAuditedHeaders {
		if _, ok := s.byName[n]; !ok {
			s.byName[n] = AuditedHeader{}
		}
	}
	s.names = slices.Sorted(maps.Keys(s.byName))
	for _, n := range s.names {
		s.keys = append(s.keys, textproto.CanonicalMIMEHeaderKey(n))
	}
	return s
}

// pick returns the configured headers that h carries, sorted by name; nil
// when there are none.
func (s *auditHeaderSet) pick(h map[string][]string) []audit.Header {
	var out []audit.Header
	for i, k := range s.keys {
		if vs := h[k]; len(vs) > 0 {
			n := s.names[i]
			out = append(out, audit.Header{Name: n, Values: vs, HMAC: s.byName[n].HMAC})
		}
	}
	return out
}

// loadAuditHeaders reads the configured headers at unseal.
func (c *Core) loadAuditHeaders(ctx context.Context) error {
	m := map[string]AuditedHeader{}
	raw, err := c.barrier.Get(ctx, auditHeadersKey)
	switch {
	case errors.Is(err, logical.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read audited request headers: %w", err)
	default:
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("decode audited request headers: %w", err)
		}
	}
	c.auditHeaders.Store(newAuditHeaderSet(m))
	return nil
}

// AuditedHeaders returns the configured headers, by lower-case name (the
// defaults recorded without configuration are not among them).
func (c *Core) AuditedHeaders() map[string]AuditedHeader {
	if s := c.auditHeaders.Load(); s != nil {
		return maps.Clone(s.configured)
	}
	return map[string]AuditedHeader{}
}

// SetAuditedHeader makes the audit log record the request header name
// (any case). A header that carries credentials is refused without hmac.
func (c *Core) SetAuditedHeader(ctx context.Context, name string, h AuditedHeader) error {
	n, err := auditHeaderName(name)
	if err != nil {
		return err
	}
	if slices.Contains(credentialHeaders, n) && !h.HMAC {
		return logical.BadRequest("header %q carries credentials: it can only be audited with hmac = true", n)
	}
	return c.changeAuditHeaders(ctx, func(m map[string]AuditedHeader) { m[n] = h })
}

// DeleteAuditedHeader stops recording the header name; it is no error if
// it was not recorded.
func (c *Core) DeleteAuditedHeader(ctx context.Context, name string) error {
	n, err := auditHeaderName(name)
	if err != nil {
		return err
	}
	return c.changeAuditHeaders(ctx, func(m map[string]AuditedHeader) { delete(m, n) })
}

// changeAuditHeaders stores a changed copy of the configuration, then
// publishes it.
func (c *Core) changeAuditHeaders(ctx context.Context, change func(map[string]AuditedHeader)) error {
	st := c.auditState
	if st == nil {
		return ErrSealed
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	m := c.AuditedHeaders()
	change(m)
	if err := c.putJSON(ctx, auditHeadersKey, m); err != nil {
		return err
	}
	c.auditHeaders.Store(newAuditHeaderSet(m))
	return nil
}

// auditHeaderName checks a header name and returns it in lower case.
func auditHeaderName(name string) (string, error) {
	if name == "" {
		return "", logical.BadRequest("header name must not be empty")
	}
	for i := range len(name) {
		if !isTokenChar(name[i]) {
			return "", logical.BadRequest("invalid header name %q", name)
		}
	}
	return strings.ToLower(name), nil
}

// isTokenChar reports whether b may appear in an HTTP header name (a
// token, RFC 9110 section 5.6.2).
func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}
