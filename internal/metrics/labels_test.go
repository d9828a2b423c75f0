package metrics

import (
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/core"
)

// statsSource is a Source with fixed figures.
type statsSource core.Stats

func (s statsSource) Stats() core.Stats { return core.Stats(s) }

// TestLabelsNotUTF8: label values that are not UTF-8 (the path of a mount
// or an audit device made before such paths were refused) are scraped
// with U+FFFD in place of their bad bytes, in both formats, where
// Prometheus would have panicked on them.
func TestLabelsNotUTF8(t *testing.T) {
	m := New(Options{})
	m.Watch(statsSource{
		Audit:         []core.AuditDeviceStats{{Path: "file\xff/", Healthy: true}},
		LeasesByMount: map[string]int{"db\xff/": 2},
	})
	m.ObserveRequest("kv\xff/", "read", 200, 1000)
	m.ObserveLogin("approle", "app\xff/", "role\xff", true)
	for _, format := range []string{FormatPrometheus, FormatJSON} {
		body, err := m.Render(format)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		text := string(body.Body)
		if strings.Contains(text, "\xff") {
			t.Errorf("%s: a label holds invalid UTF-8", format)
		}
		for _, want := range []string{"kv\uFFFD/", "app\uFFFD/", "role\uFFFD", "file\uFFFD/", "db\uFFFD/"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no label %q", format, want)
			}
		}
	}
}
