package metrics

import (
	"encoding/json"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// dump is sys/metrics' JSON: the shape of Vault's in-memory metrics dump
// (Timestamp, Gauges, Points, Counters, Samples), filled from the
// Prometheus registry. Counters are cumulative since the server started;
// samples (histograms and summaries) give their count, sum and mean.
type dump struct {
	Timestamp string     `json:"Timestamp"`
	Gauges    []gauge    `json:"Gauges"`
	Points    []struct{} `json:"Points"`
	Counters  []counter  `json:"Counters"`
	Samples   []sample   `json:"Samples"`
}

type gauge struct {
	Name   string            `json:"Name"`
	Value  float64           `json:"Value"`
	Labels map[string]string `json:"Labels"`
}

type counter struct {
	Name   string            `json:"Name"`
	Count  int64             `json:"Count"`
	Sum    float64           `json:"Sum"`
	Labels map[string]string `json:"Labels"`
}

type sample struct {
	Name   string            `json:"Name"`
	Count  uint64            `json:"Count"`
	Sum    float64           `json:"Sum"`
	Mean   float64           `json:"Mean"`
	Labels map[string]string `json:"Labels"`
}

func encodeJSON(fams []*dto.MetricFamily, now time.Time) ([]byte, error) {
	d := dump{
		Timestamp: now.Round(time.Second).UTC().String(),
		Gauges:    []gauge{},
		Points:    []struct{}{},
		Counters:  []counter{},
		Samples:   []sample{},
	}
	for _, f := range fams {
		name := f.GetName()
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v := m.GetCounter().GetValue()
				d.Counters = append(d.Counters, counter{Name: name, Count: int64(v), Sum: v, Labels: labels})
			case dto.MetricType_GAUGE:
				d.Gauges = append(d.Gauges, gauge{Name: name, Value: finite(m.GetGauge().GetValue()), Labels: labels})
			case dto.MetricType_UNTYPED:
				d.Gauges = append(d.Gauges, gauge{Name: name, Value: finite(m.GetUntyped().GetValue()), Labels: labels})
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				d.Samples = append(d.Samples, newSample(name, h.GetSampleCount(), h.GetSampleSum(), labels))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				d.Samples = append(d.Samples, newSample(name, s.GetSampleCount(), s.GetSampleSum(), labels))
			}
		}
	}
	return json.Marshal(d)
}

func newSample(name string, count uint64, sum float64, labels map[string]string) sample {
	s := sample{Name: name, Count: count, Sum: finite(sum), Labels: labels}
	if count > 0 {
		s.Mean = s.Sum / float64(count)
	}
	return s
}

// finite maps the values JSON cannot carry (NaN, ±Inf) to 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
