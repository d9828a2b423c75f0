package jsonenc

import (
	"encoding/json"
	"strings"
	"testing"
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
