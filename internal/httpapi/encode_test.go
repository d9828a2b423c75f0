package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
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
		{RequestID: "id", Auth: authObject(&logical.Auth{ClientToken: "hvs.x", Accessor: "a", Policies: []string{"default", "p"},
			Metadata: map[string]string{"role_name": "ci"}, TTL: time.Hour, Renewable: true, TokenType: "service", Orphan: true})},
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

// The auth object has every field clients read (spec §1.7), with the
// types they assert.
func TestAuthObject(t *testing.T) {
	raw, err := appendEnvelope(nil, &envelope{Auth: authObject(&logical.Auth{ClientToken: "hvs.x", Accessor: "acc", TTL: 90 * time.Second, TokenType: "batch"})})
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Auth map[string]any `json:"auth"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	a := body.Auth
	if a["client_token"] != "hvs.x" || a["accessor"] != "acc" || a["lease_duration"] != 90.0 || a["token_type"] != "batch" ||
		a["renewable"] != false || a["orphan"] != false || a["num_uses"] != 0.0 || a["entity_id"] != "" {
		t.Fatalf("auth = %v", a)
	}
	for _, k := range []string{"metadata", "mfa_requirement"} {
		if v, ok := a[k]; !ok || v != nil {
			t.Errorf("%s = %v, present %v; want null", k, v, ok)
		}
	}
	if p, ok := a["policies"].([]any); !ok || len(p) != 0 {
		t.Errorf("policies = %#v, want []", a["policies"])
	}
	if _, ok := a["token_policies"]; ok {
		t.Error("token_policies present although empty")
	}
}
