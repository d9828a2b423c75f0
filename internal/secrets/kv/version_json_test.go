package kv

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestVersionJSON checks that the read path's hand-written metadata is
// what encoding/json makes of versionData, the form write responses use.
func TestVersionJSON(t *testing.T) {
	cases := []struct {
		m keyMetadata
		v versionMetadata
	}{
		{v: versionMetadata{Version: 1, CreatedTime: 1714557600123456789}},
		{v: versionMetadata{Version: 7, CreatedTime: 1714557600000000000, DeletionTime: 1714557660100000000, Destroyed: true}},
		{m: keyMetadata{CustomMetadata: map[string]string{"team": "ml", "owner": "<a&b> \"q\" \u2028", "": "é"}},
			v: versionMetadata{Version: 12, CreatedTime: 1}},
	}
	for i, c := range cases {
		want, err := json.Marshal(versionData(&c.m, &c.v))
		if err != nil {
			t.Fatal(err)
		}
		if got := versionJSON(&c.m, &c.v); string(got) != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestRecordJSON checks that the records every write stores encode by
// hand exactly as encoding/json encodes them, and that a new field of
// keyMetadata or versionMetadata cannot be forgotten by the hand encoder.
func TestRecordJSON(t *testing.T) {
	if n := reflect.TypeFor[keyMetadata]().NumField(); n != 10 {
		t.Fatalf("keyMetadata has %d fields: teach keyMetadata.appendJSON the new ones, then this test", n)
	}
	if n := reflect.TypeFor[versionMetadata]().NumField(); n != 4 {
		t.Fatalf("versionMetadata has %d fields: teach keyMetadata.appendJSON the new ones, then this test", n)
	}
	metas := []*keyMetadata{
		{},
		{Key: "ml/openai", CurrentVersion: 3, OldestVersion: 1, CreatedTime: 1714557600123456789, UpdatedTime: 1714557600223456789,
			Versions: []versionMetadata{{Version: 1, CreatedTime: 1}, {Version: 2, CreatedTime: 2, DeletionTime: 3}, {Version: 3, CreatedTime: 4, Destroyed: true}}},
		{Key: "<a&b> \"q\" \u2028 é \xff", MaxVersions: 5, CASRequired: true, DeleteVersionAfter: 90 * time.Second,
			CustomMetadata: map[string]string{"team": "ml", "": "x", "owner": "<&>"}, Versions: []versionMetadata{}},
		{Key: "k", CurrentVersion: -1, MaxVersions: -2, DeleteVersionAfter: -time.Nanosecond, CustomMetadata: map[string]string{}},
	}
	for i, m := range metas {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.appendJSON(nil)
		if err != nil || string(got) != string(want) {
			t.Errorf("metadata %d:\n got %s, %v\nwant %s", i, got, err, want)
		}
	}
	records := []versionRecord{
		{},
		{Data: map[string]any{}},
		{Data: map[string]any{"api_key": "sk-<&>", "n": json.Number("12.5e3"), "f": 1.5, "ok": true, "none": nil,
			"nested": map[string]any{"list": []any{"a", json.Number("1"), map[string]any{}}}}},
	}
	for i, r := range records {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.appendJSON(nil)
		if err != nil || string(got) != string(want) {
			t.Errorf("record %d:\n got %s, %v\nwant %s", i, got, err, want)
		}
	}
	// A value encoding/json refuses is refused with its error.
	if _, err := (versionRecord{Data: map[string]any{"c": make(chan int)}}).appendJSON(nil); err == nil {
		t.Error("a channel value was encoded")
	}
	if _, err := (versionRecord{Data: map[string]any{"n": json.Number("1x")}}).appendJSON(nil); err == nil {
		t.Error("an invalid json.Number was encoded")
	}
}
