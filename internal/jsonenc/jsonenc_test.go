package jsonenc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzAppendString checks AppendString against encoding/json. The seeds
// put every kind of byte at every offset of an eight-byte word, so that
// the word-at-a-time path and the byte path both meet each of them.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "<>&", "\u2028", "\xff\xfe", "日本", "plain text longer than a word"} {
		f.Add(s)
	}
	for _, c := range []string{"\"", "\\", "<", ">", "&", "\n", "\x00", "\x1f", "\x7f", "\x80", "é", "\u2029"} {
		for i := range 9 {
			f.Add(strings.Repeat("x", i) + c + strings.Repeat("y", 16-i))
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	s := "secret/data/ml/openai/production-key"
	buf := make([]byte, 0, 128)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}

// TestAppendMapsAndTime checks the map and time encoders against
// encoding/json.
func TestAppendMapsAndTime(t *testing.T) {
	sm := []map[string]string{nil, {}, {"b": "2", "a": "<1>", "": "é\u2028", "z\x00": "\xff"}}
	for _, m := range sm {
		want, _ := json.Marshal(m)
		if got := AppendStringMap(nil, m); string(got) != string(want) {
			t.Errorf("AppendStringMap(%q) = %s, want %s", m, got, want)
		}
	}
	am := []map[string]any{nil, {}, {"s": "x&y", "b": true, "n": nil, "i": 3, "f": 1.5, "l": []any{"a", 1}, "m": map[string]any{"k": "v"}}}
	for _, m := range am {
		want, _ := json.Marshal(m)
		if got, ok := AppendAnyMap(nil, m); !ok || string(got) != string(want) {
			t.Errorf("AppendAnyMap(%v) = %s %v, want %s", m, got, ok, want)
		}
	}
	if _, ok := AppendAnyMap(nil, map[string]any{"c": make(chan int)}); ok {
		t.Error("AppendAnyMap accepted a value encoding/json refuses")
	}
	for _, tm := range []time.Time{time.Unix(0, 1714557600123456789).UTC(), time.Date(2024, 5, 1, 10, 0, 0, 0, time.FixedZone("x", 3600)), {}} {
		want, _ := json.Marshal(tm)
		if got, ok := AppendTime(nil, tm); !ok || string(got) != string(want) {
			t.Errorf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	}
	if _, ok := AppendTime(nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
		t.Error("AppendTime accepted a year encoding/json refuses")
	}
	// A member time is written as encoding/json writes an omitzero field.
	type member struct {
		T time.Time `json:"t,omitzero"`
	}
	for _, tm := range []time.Time{time.Date(2024, 5, 1, 10, 0, 0, 5, time.UTC), {}} {
		js, _ := json.Marshal(member{tm}) // {"t":"…"} or {}
		want := `{"a":1` + strings.Replace(string(js), "{", ",", 1)
		if tm.IsZero() {
			want = `{"a":1}`
		}
		got, ok := AppendTimeMember([]byte(`{"a":1`), `,"t":`, tm)
		if got = append(got, '}'); !ok || string(got) != want {
			t.Errorf("AppendTimeMember(%v) = %s %v, want %s", tm, got, ok, want)
		}
	}
	if got, ok := AppendTimeMember([]byte("x"), `,"t":`, time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)); ok || string(got) != "x" {
		t.Errorf("AppendTimeMember of a year encoding/json refuses = %q %v", got, ok)
	}
}
