package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Descriptions of what the core reports at each scrape.
var (
	unsealedDesc = prometheus.NewDesc("vault_core_unsealed",
		"1 when the server is unsealed, 0 when sealed.", nil, nil)
	auditEntriesDesc = prometheus.NewDesc("vault_audit_log_entries_total",
		"Entries an audit device wrote since unseal, by device path.", []string{"device"}, nil)
	auditFailuresDesc = prometheus.NewDesc("vault_audit_log_failures_total",
		"Entries an audit device failed to record since unseal (write failed or timed out), by device path.", []string{"device"}, nil)
	auditHealthyDesc = prometheus.NewDesc("vault_audit_device_healthy",
		"1 when the audit device's last write succeeded, by device path.", []string{"device"}, nil)
	leasesDesc = prometheus.NewDesc("vault_expire_num_leases",
		"Leases the expiration manager holds, by the mount that issued them.", []string{"mount"}, nil)
	irrevocableDesc = prometheus.NewDesc("vault_expire_num_irrevocable_leases",
		"Leases whose revocation failed too often; an operator must revoke them.", nil, nil)
	expiredDesc = prometheus.NewDesc("vault_expire_leases_expired_total",
		"Leases revoked on expiry since unseal.", nil, nil)
	revokeFailuresDesc = prometheus.NewDesc("vault_expire_revoke_failures_total",
		"Failed attempts to revoke an expired lease since unseal (each retry counts).", nil, nil)
)

// coreCollector reads the core's state at each scrape: nothing on the
// request path, and the figures are never stale.
type coreCollector struct {
	src Source
}

func (c *coreCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{unsealedDesc, auditEntriesDesc, auditFailuresDesc, auditHealthyDesc,
		leasesDesc, irrevocableDesc, expiredDesc, revokeFailuresDesc} {
		ch <- d
	}
}

func (c *coreCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(unsealedDesc, prometheus.GaugeValue, boolValue(!s.Sealed))
	if s.Sealed {
		// The rest exists only while unsealed.
		return
	}
	for _, d := range s.Audit {
		ch <- prometheus.MustNewConstMetric(auditEntriesDesc, prometheus.CounterValue, float64(d.Entries), labelValue(d.Path))
		ch <- prometheus.MustNewConstMetric(auditFailuresDesc, prometheus.CounterValue, float64(d.Failures), labelValue(d.Path))
		ch <- prometheus.MustNewConstMetric(auditHealthyDesc, prometheus.GaugeValue, boolValue(d.Healthy), labelValue(d.Path))
	}
	if s.LeasesByMount == nil {
		return // no expiration manager (yet)
	}
	for mount, n := range s.LeasesByMount {
		ch <- prometheus.MustNewConstMetric(leasesDesc, prometheus.GaugeValue, float64(n), labelValue(mount))
	}
	ch <- prometheus.MustNewConstMetric(irrevocableDesc, prometheus.GaugeValue, float64(s.IrrevocableLeases))
	ch <- prometheus.MustNewConstMetric(expiredDesc, prometheus.CounterValue, float64(s.LeasesExpired))
	ch <- prometheus.MustNewConstMetric(revokeFailuresDesc, prometheus.CounterValue, float64(s.LeaseRevokeFailures))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
