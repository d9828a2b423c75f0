package httpapi

import (
	"encoding/json"
	"testing"
	"time"
)

// The hand-written encoder must produce exactly what encoding/json does.
func TestEnvelopeMatchesEncodingJSON(t *testing.T) {
	data := map[string]any{
		"s": "plain", "esc": "quote\" back\\ nl\n tab\t cr\r <html> & \u2028\u2029 \x01 \x7f é 😀 \xff",
		"b": true, "i": 42, "i64": int64(-7), "u32": uint32(3), "u64": uint64(1 << 60), "i32": int32(-3),
		"f": 1.5, "n": json.Number("12.50"), "nil": nil, "t": time.Unix(0, 0).UTC(),
		"m":  map[string]any{"z": 1, "a": []any{"x", 2, nil, map[string]any{}}},
		"ss": []string{"a", "<b>"}, "nilss": []string(nil), "nilm": map[string]any(nil), "nila": []any(nil),
		"ms": map[string]string{"k": "v"},
	}
	for _, env := range []envelope{
		{RequestID: "id", Data: data, Warnings: []string{"w"}, MountType: "kv", LeaseDuration: 3600, Renewable: true, LeaseID: "l"},
		{RequestID: "id"},
		{RequestID: "id", Data: map[string]any{}, Warnings: []string{}},
	} {
		got, err := appendEnvelope(nil, &env)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(env)
		if string(got) != string(want) {
			t.Errorf("encoder differs:\n got %s\nwant %s", got, want)
		}
	}
	// Raw JSON is passed through.
	got, _ := appendEnvelope(nil, &envelope{Data: map[string]any{"data": json.RawMessage(`{"k":"v"}`)}})
	var back map[string]any
	if err := json.Unmarshal(got, &back); err != nil || back["data"].(map[string]any)["data"].(map[string]any)["k"] != "v" {
		t.Fatalf("raw message: %s %v", got, err)
	}
	// Values encoding/json refuses are errors, not broken output.
	if _, err := appendEnvelope(nil, &envelope{Data: map[string]any{"c": make(chan int)}}); err == nil {
		t.Fatal("unencodable value accepted")
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "<>&", "\u2028", "\xff\xfe", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
