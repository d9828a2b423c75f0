package core

import (
	"context"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
)

// Metrics is what the core needs of the server's metrics (package metrics
// implements it): it counts logins and renders sys/metrics. Its methods
// must be cheap, must not block and must be safe for concurrent use.
type Metrics interface {
	// ObserveLogin counts one login attempt on an auth mount: method is
	// the mount's type, mount its path, role the configured role a
	// successful login used (empty on failure: a failed login's role is
	// whatever the client sent, and must not become a label).
	ObserveLogin(method, mount, role string, ok bool)
	// Render renders every metric in format ("" or "json", or
	// "prometheus"). An unknown or disabled format is a
	// *logical.CodedError with status 400.
	Render(format string) (*logical.RawBody, error)
}

// Stats is what the core reports to the metrics at each scrape. It is
// read without the state lock (a scrape may run inside a request); while
// sealed only Sealed is set.
type Stats struct {
	Sealed bool
	// Audit are the enabled audit devices, by path.
	Audit []AuditDeviceStats
	// LeasesByMount counts the leases the expiration manager schedules,
	// by the path of the mount they came from ("" for a lease no mount
	// owns any more); every mount is listed, with 0 if it has none.
	LeasesByMount map[string]int
	// IrrevocableLeases counts leases whose revocation gave up.
	IrrevocableLeases int
	// LeasesExpired counts leases revoked on expiry since unseal, and
	// LeaseRevokeFailures the failed revocation attempts.
	LeasesExpired       uint64
	LeaseRevokeFailures uint64
}

// AuditDeviceStats is one audit device's counters since unseal.
type AuditDeviceStats struct {
	Path string
	// Entries counts the entries written, Failures the entries the
	// device failed to record (its write failed or timed out).
	Entries, Failures uint64
	// Healthy reports whether the last write succeeded.
	Healthy bool
}

// Stats returns the state the metrics report. Grouping leases by mount
// takes a router lookup per lease, outside every lock.
func (c *Core) Stats() Stats {
	s := Stats{Sealed: c.sealed.Load()}
	if s.Sealed {
		return s
	}
	for _, d := range c.audit.Devices() {
		st := d.Stats()
		s.Audit = append(s.Audit, AuditDeviceStats{Path: d.Path(), Entries: st.Entries, Failures: st.Failures, Healthy: d.Healthy()})
	}
	if m := c.leaseStats.Load(); m != nil {
		ls := m.Stats()
		s.IrrevocableLeases = ls.Irrevocable
		s.LeasesExpired, s.LeaseRevokeFailures = ls.Expired, ls.RevokeFailures
		routes := c.router.Routes()
		s.LeasesByMount = make(map[string]int, len(routes))
		for p := range routes {
			s.LeasesByMount[p] = 0
		}
		for _, id := range m.IDs() {
			s.LeasesByMount[leaseMount(c.router, id)]++
		}
	}
	return s
}

// leaseMount is the path of the mount a lease id belongs to: ids begin
// with the request path that created them.
func leaseMount(r *mount.Router, id string) string {
	if route, _, ok := r.Match(id); ok {
		return route.Entry.Path
	}
	return ""
}

// observeLogin counts a request to an auth mount's unauthenticated path:
// a login when it succeeded with a token or failed. A success without a
// token (an OIDC auth URL) is not a login.
func (c *Core) observeLogin(route *mount.Route, res *Result, err error) {
	m := c.cfg.Metrics
	if m == nil || !isAuthPath(route.Entry.Path) {
		return
	}
	switch {
	case err != nil:
		m.ObserveLogin(route.Entry.Type, route.Entry.Path, "", false)
	case res != nil && res.Response.Auth != nil:
		m.ObserveLogin(route.Entry.Type, route.Entry.Path, res.Response.Auth.Role, true)
	}
}

// metricsPaths serve sys/metrics.
func (s *systemBackend) metricsPaths() []*framework.Path {
	return []*framework.Path{{
		Pattern: "metrics",
		Fields: map[string]*framework.FieldSchema{
			"format": {Type: framework.TypeString, Description: `"prometheus" for the Prometheus text format; JSON otherwise`},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: {Handler: s.readMetrics, Summary: "Read the server's metrics."},
		},
		HelpSynopsis: "The server's metrics, as JSON or in the Prometheus text format.",
	}}
}

func (s *systemBackend) readMetrics(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	m := s.c.cfg.Metrics
	if m == nil {
		return nil, logical.BadRequest("metrics are not enabled on this server")
	}
	raw, err := m.Render(d.String("format"))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Raw: raw}, nil
}
