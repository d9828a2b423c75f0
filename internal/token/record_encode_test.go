package token

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

// encodeBoth returns r encoded by appendRecord and by encoding/json.
func encodeBoth(t testing.TB, r *record) (mine []byte, ok bool, want []byte) {
	t.Helper()
	mine, ok = appendRecord(nil, r)
	want, err := json.Marshal(r)
	if err != nil && ok {
		t.Fatalf("appendRecord encoded what encoding/json refuses (%v): %s", err, mine)
	}
	return mine, ok, want
}

// TestAppendRecordIsJSON checks that the hand-written encoder writes, byte
// for byte, what encoding/json writes for the stored record: the format
// does not change, so entries stay readable by every version.
func TestAppendRecordIsJSON(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 9, 30, 15, 123456789, time.UTC)
	full := record{
		V: recordVersion, Accessor: "acc", SealedAccessor: []byte{0, 1, 2, 250, 251, 252, 253},
		Policies: []string{"default", "dev"}, Path: "auth/approle/login", DisplayName: "approle-app",
		Meta:         map[string]string{"role_name": "app", "env": "prod", "z": "", "a<b>&c": "\"q\"\\\n\t\u2028é\xff"},
		CreationTime: now, TTL: time.Hour, Type: TypeService, Parent: "abc", NumUses: 3,
		ExplicitMaxTTL: 2 * time.Hour, MaxTTL: 3 * time.Hour, Period: time.Minute, Renewable: true,
		ExpireTime: now.Add(time.Hour), LastRenewal: now.Add(time.Minute).In(time.FixedZone("x", 3600)),
		Role: "r", BoundCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"), {}},
		EntityID: "ent", MountPath: "auth/approle/",
		InternalData: map[string]any{"role_name": "app", "n": json.Number("3"), "f": 1.5, "nested": map[string]any{"<": []any{true, nil}}},
		Alias:        &aliasRecord{Name: "role-id", Metadata: map[string]string{"k": "v"}},
	}
	cases := map[string]record{
		"empty":              {},
		"nil policies":       {V: recordVersion, Path: "auth/token/root", DisplayName: "root", CreationTime: now},
		"empty policies":     {V: recordVersion, Policies: []string{}, CreationTime: now},
		"login":              {V: recordVersion, SealedAccessor: []byte("sealed"), Policies: []string{"default", "dev"}, Path: "auth/approle/login", DisplayName: "approle-app", Meta: map[string]string{"role_name": "app"}, CreationTime: now, TTL: time.Hour, Type: TypeService, Renewable: true, ExpireTime: now.Add(time.Hour), MountPath: "auth/approle/", InternalData: map[string]any{"role_name": "app"}, Alias: &aliasRecord{Name: "x"}},
		"full":               full,
		"negative numbers":   {NumUses: -1, TTL: -5, Period: -time.Second, CreationTime: now},
		"local time":         {CreationTime: now.In(time.FixedZone("minus", -7*3600-30*60))},
		"zero creation time": {V: recordVersion},
		"empty meta":         {Meta: map[string]string{}, InternalData: map[string]any{}, BoundCIDRs: []netip.Prefix{}},
	}
	for name, r := range cases {
		mine, ok, want := encodeBoth(t, &r)
		if !ok {
			t.Errorf("%s: appendRecord gave up", name)
			continue
		}
		if !bytes.Equal(mine, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, mine, want)
		}
	}
	// A time encoding/json refuses: appendRecord leaves it to json.
	if _, ok, _ := encodeBoth(t, &record{CreationTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); ok {
		t.Error("appendRecord encoded the year 10000")
	}
}

// FuzzAppendRecord checks the same over arbitrary strings and numbers.
func FuzzAppendRecord(f *testing.F) {
	f.Add("default", "auth/approle/login", "approle-app", "role_name", "app", int64(3600e9), int64(1700000000), 3, "10.0.0.0/8")
	f.Add("<&>", "\x00\xff", "\u2028", "", "\"", int64(-1), int64(-62135596800), -1, "::1/128")
	f.Fuzz(func(t *testing.T, policy, path, display, mk, mv string, ttl, unix int64, uses int, cidr string) {
		r := record{
			V: recordVersion, Policies: []string{policy, path}, Path: path, DisplayName: display,
			Meta: map[string]string{mk: mv, mv: mk}, CreationTime: time.Unix(unix, ttl%1e9).UTC(), TTL: time.Duration(ttl),
			Type: display, Parent: mk, NumUses: uses, MaxTTL: time.Duration(unix), ExpireTime: time.Unix(unix+ttl/1e9, 0).UTC(),
			Role: mv, EntityID: policy, MountPath: path, InternalData: map[string]any{mk: mv, "n": json.Number("1")},
			Alias: &aliasRecord{Name: mv, Metadata: map[string]string{policy: display}},
		}
		if p, err := netip.ParsePrefix(cidr); err == nil {
			r.BoundCIDRs = []netip.Prefix{p}
		}
		mine, ok, want := encodeBoth(t, &r)
		if ok && !bytes.Equal(mine, want) {
			t.Fatalf("\n got %s\nwant %s", mine, want)
		}
	})
}
