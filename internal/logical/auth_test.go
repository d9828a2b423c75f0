package logical

import "testing"

func TestMatchSpecial(t *testing.T) {
	patterns := []string{"login", "role/*", "*x"}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"login", true},
		{"login/", false},
		{"logi", false},
		{"role/", true},
		{"role/a/b", true},
		{"role", false},
		{"*x", true}, // '*' only matters at the end
		{"ax", false},
	} {
		if got := MatchSpecial(patterns, tc.path); got != tc.want {
			t.Errorf("MatchSpecial(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	if !MatchSpecial([]string{"*"}, "anything") || !MatchSpecial([]string{"*"}, "") {
		t.Error(`"*" should match every path`)
	}
	if MatchSpecial(nil, "") {
		t.Error("no patterns should match nothing")
	}
}
