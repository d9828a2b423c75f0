package metrics

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gatherOne gathers c alone and returns its one series.
func gatherOne(t *testing.T, c prometheus.Collector) *dto.Metric {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 1 || len(fams[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one family of one series", fams)
	}
	if fams[0].GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("type %v, want a histogram", fams[0].GetType())
	}
	return fams[0].GetMetric()[0]
}

// TestDurationHistogramMatchesPrometheus feeds the same durations to a
// durationVec and to a prometheus.HistogramVec with the same buckets, and
// compares what a scrape of each reads: labels, count, sum and every
// bucket, the bounds themselves and a nanosecond either side of each
// included.
func TestDurationHistogramMatchesPrometheus(t *testing.T) {
	for _, buckets := range [][]float64{storageBuckets, requestBuckets, {.001, 1}} {
		ours := newDurationVec("ours", "help", buckets, []string{"a", "b"})
		ref := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ref", Help: "help", Buckets: buckets}, []string{"a", "b"})
		h, r := ours.with("x", "y"), ref.WithLabelValues("x", "y")
		observe := func(d time.Duration) {
			h.Observe(d)
			r.Observe(d.Seconds())
		}
		for _, le := range buckets {
			d := time.Duration(math.Round(le * float64(time.Second)))
			observe(d - 1)
			observe(d)
			observe(d + 1)
		}
		for _, d := range []time.Duration{0, 1, 3 * time.Microsecond, 40 * time.Millisecond, time.Minute, 100 * time.Hour} {
			observe(d)
		}
		got, want := gatherOne(t, ours), gatherOne(t, ref)
		if len(got.GetLabel()) != 2 || got.GetLabel()[0].GetValue() != "x" || got.GetLabel()[1].GetValue() != "y" {
			t.Errorf("labels %v, want a=x, b=y", got.GetLabel())
		}
		gh, wh := got.GetHistogram(), want.GetHistogram()
		if gh.GetSampleCount() != wh.GetSampleCount() {
			t.Errorf("count %d, want %d", gh.GetSampleCount(), wh.GetSampleCount())
		}
		if diff := math.Abs(gh.GetSampleSum() - wh.GetSampleSum()); diff > 1e-9*wh.GetSampleSum() {
			t.Errorf("sum %v, want %v", gh.GetSampleSum(), wh.GetSampleSum())
		}
		if len(gh.GetBucket()) != len(wh.GetBucket()) {
			t.Fatalf("%d buckets, want %d", len(gh.GetBucket()), len(wh.GetBucket()))
		}
		for i, b := range gh.GetBucket() {
			w := wh.GetBucket()[i]
			if b.GetUpperBound() != w.GetUpperBound() || b.GetCumulativeCount() != w.GetCumulativeCount() {
				t.Errorf("bucket %d: le=%v count %d, want le=%v count %d", i, b.GetUpperBound(), b.GetCumulativeCount(), w.GetUpperBound(), w.GetCumulativeCount())
			}
		}
	}
}

// TestDurationHistogramConcurrent observes from many goroutines at once:
// nothing is lost, and the sum is exact.
func TestDurationHistogramConcurrent(t *testing.T) {
	v := newDurationVec("d", "help", storageBuckets, nil)
	h := v.with()
	const workers, each = 8, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				h.Observe(time.Duration(w*each+i) * time.Nanosecond)
			}
		})
	}
	wg.Wait()
	m := gatherOne(t, v).GetHistogram()
	const n = workers * each
	if m.GetSampleCount() != n {
		t.Errorf("count %d, want %d", m.GetSampleCount(), n)
	}
	if want := float64(n*(n-1)/2) / 1e9; m.GetSampleSum() != want {
		t.Errorf("sum %v, want %v", m.GetSampleSum(), want)
	}
}

// TestDurationVecChildren: one series per label set, the same one for
// the same values.
func TestDurationVecChildren(t *testing.T) {
	v := newDurationVec("d", "help", storageBuckets, []string{"op"})
	if v.with("get") != v.with("get") || v.with("get") == v.with("put") {
		t.Fatal("with does not return one histogram per label set")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(v)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fams[0].GetMetric()); n != 2 {
		t.Errorf("%d series, want 2", n)
	}
}

// TestDurationVecInvalidUTF8: a label value that is not UTF-8 (a mount
// path may be anything) is scraped with U+FFFD in place of its bad bytes,
// rather than failing the scrape.
func TestDurationVecInvalidUTF8(t *testing.T) {
	v := newDurationVec("d", "help", storageBuckets, []string{"mount"})
	v.with("ml\xff/").Observe(time.Microsecond)
	m := gatherOne(t, v)
	if got := m.GetLabel()[0].GetValue(); got != "ml\uFFFD/" {
		t.Errorf("label %q, want %q", got, "ml\uFFFD/")
	}
	if v.with("ml\xff/") != v.with("ml\uFFFD/") {
		t.Error("the same label, scraped, is two series")
	}
}

func TestShardCount(t *testing.T) {
	for procs, want := range map[int]int{0: 4, 1: 4, 2: 8, 3: 16, 4: 16, 5: 16, 64: 16} {
		if got := shardCount(procs); got != want {
			t.Errorf("shardCount(%d) = %d, want %d", procs, got, want)
		}
	}
}

// BenchmarkObserve observes on every processor at once, as requests do.
func BenchmarkObserve(b *testing.B) {
	b.Run("durationHistogram", func(b *testing.B) {
		h := newDurationVec("d", "help", storageBuckets, nil).with()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.Observe(3 * time.Microsecond)
			}
		})
	})
	b.Run("prometheus", func(b *testing.B) {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d", Buckets: storageBuckets})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.Observe((3 * time.Microsecond).Seconds())
			}
		})
	})
}
