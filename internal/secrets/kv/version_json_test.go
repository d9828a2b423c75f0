package kv

import (
	"encoding/json"
	"testing"
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
