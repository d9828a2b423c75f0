package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

func TestRedaction(t *testing.T) {
	s := NewString("sk-live-123")
	b := Bytes("key-bytes")
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "s", s, "b", b)
	js, _ := json.Marshal(map[string]any{"s": s, "b": b})
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %q %x %s", s, s, s, s, s, s),
		fmt.Sprint(b), fmt.Sprintf("%v %#v %q %x %s", b, b, b, b, b),
		fmt.Sprintf("%v", struct{ S String }{s}), logged.String(), string(js),
	} {
		if strings.Contains(out, "sk-live") || strings.Contains(out, "key-bytes") || strings.Contains(out, "6b65792d") {
			t.Errorf("secret leaked: %s", out)
		}
	}
	if s.Reveal() != "sk-live-123" || string(b.Reveal()) != "key-bytes" || s.IsEmpty() || !NewString("").IsEmpty() {
		t.Fatal("Reveal/IsEmpty")
	}
	if !s.Equal(NewString("sk-live-123")) || s.Equal(NewString("sk-live-124")) || Equal([]byte("a"), []byte("ab")) {
		t.Fatal("Equal")
	}
	z := []byte{1, 2, 3}
	Zero(z)
	if !bytes.Equal(z, []byte{0, 0, 0}) {
		t.Fatal("Zero")
	}
}

func TestRandom(t *testing.T) {
	uuidRe := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		u := UUID()
		if !uuidRe.MatchString(u) || seen[u] {
			t.Fatalf("bad or repeated UUID %q", u)
		}
		seen[u] = true
		r := RandomBase62(24)
		if len(r) != 24 || strings.Trim(r, base62) != "" {
			t.Fatalf("bad base62 %q", r)
		}
	}
	if len(RandomBytes(32)) != 32 || bytes.Equal(RandomBytes(16), RandomBytes(16)) {
		t.Fatal("RandomBytes")
	}
}

func BenchmarkUUID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = UUID()
	}
}
