package metrics

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The two histograms every request observes (its latency, and each of
// its storage operations) are written by all processors at once, several
// times a request. A prometheus.Histogram keeps one set of counters that
// every observation updates with three atomic operations: on two
// processors their cache lines move back and forth on nearly every
// observation (56 ns an observation in BenchmarkObserve, against 20 ns on
// one processor; a few percent of a cached KV read's time in the
// server). A durationHistogram spreads observations over shards, each
// on cache lines of its own, and adds them up only when scraped; it
// counts whole nanoseconds, so its sum needs no compare-and-swap loop.
// Scraped, it is a Prometheus histogram like any other.

// maxBuckets bounds a durationHistogram's buckets (both of ours have 16),
// so that a shard is one fixed-size array.
const maxBuckets = 16

// durationVec is a histogram of durations partitioned by labels, like a
// prometheus.HistogramVec. It is a prometheus.Collector.
type durationVec struct {
	desc   *prometheus.Desc
	upper  []float64 // bucket upper bounds, in seconds
	bounds [maxBuckets]int64
	shards int

	mu       sync.Mutex
	children map[string]*durationHistogram
}

// newDurationVec returns a vector of histograms with the given bucket
// upper bounds, in seconds (ascending, at most maxBuckets).
func newDurationVec(name, help string, buckets []float64, labels []string) *durationVec {
	if len(buckets) > maxBuckets {
		panic("metrics: too many buckets") // fixed at build time
	}
	v := &durationVec{
		desc:     prometheus.NewDesc(name, help, labels, nil),
		upper:    buckets,
		shards:   shardCount(runtime.GOMAXPROCS(0)),
		children: map[string]*durationHistogram{},
	}
	for i := range v.bounds {
		v.bounds[i] = math.MaxInt64
		if i < len(buckets) {
			v.bounds[i] = int64(math.Round(buckets[i] * float64(time.Second)))
		}
	}
	return v
}

// shardCount is the number of shards for procs processors: four a
// processor, so that two observing at once seldom meet on a shard, as a
// power of two between 4 and 16 (a label set's histogram is 192 bytes a
// shard, and a busy server has hundreds of label sets).
func shardCount(procs int) int {
	n := min(max(4*procs, 4), 16)
	return 1 << bits.Len(uint(n-1))
}

// with returns the histogram of the label values, made on first use.
// The values are made UTF-8 (see labelValue), and the byte 0xff, which
// never occurs in UTF-8, joins them into a key.
func (v *durationVec) with(values ...string) *durationHistogram {
	labels := make([]string, len(values))
	for i, s := range values {
		labels[i] = labelValue(s)
	}
	key := strings.Join(labels, "\xff")
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.children[key]
	if h == nil {
		h = &durationHistogram{vec: v, labels: labels, shards: make([]histShard, v.shards)}
		v.children[key] = h
	}
	return h
}

// Describe implements prometheus.Collector.
func (v *durationVec) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

// Collect implements prometheus.Collector.
func (v *durationVec) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	hs := make([]*durationHistogram, 0, len(v.children))
	for _, h := range v.children {
		hs = append(hs, h)
	}
	v.mu.Unlock()
	for _, h := range hs {
		ch <- h.metric()
	}
}

// durationHistogram is one label set's histogram. Observe is safe for
// concurrent use.
type durationHistogram struct {
	vec    *durationVec
	labels []string
	shards []histShard
}

// histShard is one shard's counts: per bucket (not cumulative), the last
// one past the highest bound, and the sum in nanoseconds. Its size is a
// multiple of 64 bytes, so that shards share no cache line.
type histShard struct {
	counts [maxBuckets + 1]atomic.Uint64
	sum    atomic.Int64
	_      [48]byte
}

// Observe records one duration (prometheus.Observer takes seconds; this
// takes the duration itself).
func (h *durationHistogram) Observe(d time.Duration) {
	ns := int64(d)
	b := &h.vec.bounds
	i := 0
	for i < maxBuckets && ns > b[i] {
		i++
	}
	s := &h.shards[rand.Uint32()&uint32(len(h.shards)-1)]
	s.counts[i].Add(1)
	s.sum.Add(ns)
}

// metric adds up the shards into a Prometheus histogram. Each count is
// read once, so the count and the buckets always agree; an observation
// under way may be in the sum and not yet in a bucket.
func (h *durationHistogram) metric() prometheus.Metric {
	var counts [maxBuckets + 1]uint64
	var sum int64
	for i := range h.shards {
		s := &h.shards[i]
		for j := range counts {
			counts[j] += s.counts[j].Load()
		}
		sum += s.sum.Load()
	}
	v := h.vec
	buckets := make(map[float64]uint64, len(v.upper))
	var total uint64
	for i, le := range v.upper {
		total += counts[i]
		buckets[le] = total
	}
	for _, c := range counts[len(v.upper):] {
		total += c
	}
	return prometheus.MustNewConstHistogram(v.desc, total, time.Duration(sum).Seconds(), buckets, h.labels...)
}
