package policy

import (
	"slices"
	"testing"
)

func TestParseCapability(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		want    Capability
		wantErr bool
	}{
		{"create", Create, false},
		{"read", Read, false},
		{"update", Update, false},
		{"patch", Patch, false},
		{"delete", Delete, false},
		{"list", List, false},
		{"sudo", Sudo, false},
		{"deny", Deny, false},
		{"subscribe", Subscribe, false},
		{"recover", Recover, false},
		{"scan", Scan, false},
		{"root", 0, true},
		{"READ", 0, true},
		{"write", 0, true},
		{"", 0, true},
	}
	for _, tc := range cases {
		got, err := ParseCapability(tc.name)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseCapability(%q) = %v, %v; want %v, err %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCapabilityStrings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		c    Capability
		want []string
	}{
		{"none is deny", 0, []string{"deny"}},
		{"deny", Deny, []string{"deny"}},
		{"deny overrides", Deny | Read | Sudo, []string{"deny"}},
		{"sorted", Update | Read | Create | List, []string{"create", "list", "read", "update"}},
		{"all", Granting, []string{"create", "delete", "list", "patch", "read", "recover", "scan", "subscribe", "sudo", "update"}},
		{"sudo alone", Sudo, []string{"sudo"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.c.Strings(); !slices.Equal(got, tc.want) {
				t.Errorf("Strings() = %v, want %v", got, tc.want)
			}
			if !slices.IsSorted(tc.c.Strings()) {
				t.Error("not sorted")
			}
		})
	}
	if got := (Read | List).String(); got != "list,read" {
		t.Errorf("String() = %q", got)
	}
}

func TestCapabilityHas(t *testing.T) {
	t.Parallel()
	if !(Read | List).Has(Read) {
		t.Error("read|list should have read")
	}
	if (Read | Deny).Has(Read) {
		t.Error("a deny set has nothing but deny")
	}
	if !(Read | Deny).Has(Deny) {
		t.Error("deny set should have deny")
	}
	if Read.Has(0) {
		t.Error("Has(0) should be false")
	}
	if Read.Has(Read | List) {
		t.Error("Has needs every bit")
	}
}
