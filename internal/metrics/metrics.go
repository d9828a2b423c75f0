// Package metrics is the server's telemetry: Prometheus collectors for
// requests, logins, audit devices, leases, the seal and storage, rendered
// for sys/metrics as JSON or in the Prometheus text format.
//
// It observes the other parts from outside: the HTTP layer and the core
// report events through their own small interfaces, which *Metrics
// satisfies; the core's state is read at each scrape ([Metrics.Watch]);
// storage is wrapped ([Metrics.Storage]). Each server has its own
// registry: nothing here is global.
//
// Names follow Vault's where Vault has the metric (vault_core_unsealed,
// vault_expire_num_leases) and Prometheus conventions otherwise: base
// units (seconds), _total for counters, labels instead of names built from
// paths.
package metrics

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Formats of Render.
const (
	FormatJSON       = "json"
	FormatPrometheus = "prometheus"
)

// PrometheusContentType is the content type of the text format.
const PrometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

// none labels a request no mount served, or without an operation.
const none = "none"

// Latency buckets, in seconds: requests take tens of microseconds (a
// cached KV read) to seconds (a login that waits on a remote issuer);
// storage operations from microseconds to an fsync.
var (
	requestBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	storageBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// Options configures New.
type Options struct {
	// DisablePrometheus refuses the Prometheus format (telemetry
	// prometheus_retention_time = 0, as in Vault).
	DisablePrometheus bool
	// Now tells the time of the JSON dump; time.Now when nil.
	Now func() time.Time
}

// Metrics holds one server's collectors. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	promOff    bool
	now        func() time.Time
	requests   *durationVec
	logins     *prometheus.CounterVec
	storageDur *durationVec
	storageErr *prometheus.CounterVec

	// observers caches the request histogram's children by label set:
	// a map lookup instead of joining the label values every request.
	observers sync.Map // requestKey → *durationHistogram
}

type requestKey struct {
	mount, operation string
	status           int
}

// New returns the collectors of one server, with the Go runtime's and the
// process's.
func New(opts Options) *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		promOff: opts.DisablePrometheus,
		now:     opts.Now,
		requests: newDurationVec("vault_request_duration_seconds",
			"Time to serve an API request, by the mount that served it (none when no mount did), operation and HTTP status.",
			requestBuckets, []string{"mount", "operation", "status"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vault_logins_total",
			Help: "Login attempts, by auth method type, mount, role (of successful logins) and result (success or failure).",
		}, []string{"method", "mount", "role", "result"}),
		storageDur: newDurationVec("vault_storage_operation_duration_seconds",
			"Time of a physical storage operation, by backend and operation (get, put, delete, list, transaction).",
			storageBuckets, []string{"backend", "operation"}),
		storageErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vault_storage_operation_errors_total",
			Help: "Physical storage operations that failed (a missing key is not a failure), by backend and operation.",
		}, []string{"backend", "operation"}),
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.reg.MustRegister(m.requests, m.logins, m.storageDur, m.storageErr,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for tests and for registering more
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest counts and times one API request (httpapi.Metrics).
func (m *Metrics) ObserveRequest(mount, operation string, status int, took time.Duration) {
	key := requestKey{mount, operation, status}
	o, ok := m.observers.Load(key)
	if !ok {
		if mount == "" {
			mount = none
		}
		if operation == "" {
			operation = none
		}
		o, _ = m.observers.LoadOrStore(key, m.requests.with(mount, operation, strconv.Itoa(status)))
	}
	o.(*durationHistogram).Observe(took)
}

// ObserveLogin counts one login attempt (core.Metrics).
func (m *Metrics) ObserveLogin(method, mount, role string, ok bool) {
	result := "failure"
	if ok {
		result = "success"
	}
	m.logins.WithLabelValues(labelValue(method), labelValue(mount), labelValue(role), result).Inc()
}

// labelValue is s as a Prometheus label value, which must be UTF-8: a
// mount or audit device path made before such paths were refused may
// hold any bytes, and Prometheus would panic on them. Invalid bytes
// become U+FFFD.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Render renders every metric (core.Metrics, httpapi.Metrics).
func (m *Metrics) Render(format string) (*logical.RawBody, error) {
	switch format {
	case "", FormatJSON:
		fams, err := m.reg.Gather()
		if err != nil {
			return nil, err
		}
		body, err := encodeJSON(fams, m.now())
		if err != nil {
			return nil, err
		}
		return &logical.RawBody{ContentType: "application/json", Body: body}, nil
	case FormatPrometheus:
		if m.promOff {
			return nil, &logical.CodedError{Status: 400, Msg: "prometheus is not enabled"}
		}
		fams, err := m.reg.Gather()
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		for _, f := range fams {
			if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
				return nil, err
			}
		}
		return &logical.RawBody{ContentType: PrometheusContentType, Body: buf.Bytes()}, nil
	}
	return nil, &logical.CodedError{Status: 400, Msg: `unknown metrics format "` + format + `": want json or prometheus`}
}

// Source is what Watch reads at each scrape: *core.Core.
type Source interface {
	Stats() core.Stats
}

// Watch reports src's state (seal, audit devices, leases) at each scrape.
// Call it once per source.
func (m *Metrics) Watch(src Source) {
	m.reg.MustRegister(&coreCollector{src: src})
}
