package lease

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// encodeBoth returns l's record encoded by appendRecord and by
// encoding/json.
func encodeBoth(t testing.TB, l *Lease) (mine []byte, ok bool, want []byte) {
	t.Helper()
	mine, ok = appendRecord(nil, l)
	want, err := json.Marshal(record{V: recordVersion, Lease: *l})
	if err != nil && ok {
		t.Fatalf("appendRecord encoded what encoding/json refuses (%v): %s", err, mine)
	}
	return mine, ok, want
}

// TestAppendRecordIsJSON checks that the hand-written encoder writes, byte
// for byte, what encoding/json writes: the stored format does not change.
func TestAppendRecordIsJSON(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 9, 30, 15, 123456789, time.UTC)
	cases := map[string]Lease{
		"empty": {},
		"token": {ID: "auth/approle/login/0a1b", Path: "auth/approle/login", Kind: KindToken, IssueTime: now, ExpireTime: now.Add(time.Hour), Renewable: true, TokenKey: "0a1b"},
		"full": {ID: "database/creds/ro/AbC", Path: "database/creds/ro", Kind: KindSecret, IssueTime: now,
			ExpireTime: now.Add(time.Hour), LastRenewal: now.Add(time.Minute).In(time.FixedZone("x", -3600)), Renewable: true,
			MaxTTL: 24 * time.Hour, TokenKey: "tok<&>", InternalData: map[string]any{"username": "v-ro-1", "n": json.Number("3"), "f": 2.5, "b": false, "nil": nil},
			Data: map[string]any{"password": "p\"\\\n\u2028\xff", "list": []any{"a", 1}}, Irrevocable: true, RevokeAttempts: 6, RevokeError: "dial tcp: <refused>"},
		"empty maps": {ID: "x", InternalData: map[string]any{}, Data: map[string]any{}},
	}
	for name, l := range cases {
		mine, ok, want := encodeBoth(t, &l)
		if !ok {
			t.Errorf("%s: appendRecord gave up", name)
			continue
		}
		if !bytes.Equal(mine, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, mine, want)
		}
		if got, err := decode(l.ID, mine); err != nil || got.ID != l.ID {
			t.Errorf("%s: decode: %+v, %v", name, got, err)
		}
	}
	if _, ok, _ := encodeBoth(t, &Lease{IssueTime: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}); ok {
		t.Error("appendRecord encoded the year -1")
	}
	if _, ok, _ := encodeBoth(t, &Lease{Data: map[string]any{"ch": make(chan int)}}); ok {
		t.Error("appendRecord encoded a channel")
	}
}

// FuzzAppendRecord checks the same over arbitrary strings and numbers.
func FuzzAppendRecord(f *testing.F) {
	f.Add("auth/approle/login/0a1b", "token", "k", "v", int64(1700000000), int64(3600e9), 0)
	f.Add("<&>\u2028", "\x00\xff", "\"", "", int64(-62135596800), int64(-1), -3)
	f.Fuzz(func(t *testing.T, id, kind, k, v string, unix, ttl int64, attempts int) {
		l := Lease{ID: id, Path: v, Kind: Kind(kind), IssueTime: time.Unix(unix, ttl%1e9).UTC(), ExpireTime: time.Unix(unix+ttl/1e9, 0).UTC(),
			Renewable: attempts%2 == 0, MaxTTL: time.Duration(ttl), TokenKey: k, InternalData: map[string]any{k: v, v: json.Number("12")},
			Data: map[string]any{id: k, "t": true}, Irrevocable: attempts < 0, RevokeAttempts: attempts, RevokeError: v}
		mine, ok, want := encodeBoth(t, &l)
		if ok && !bytes.Equal(mine, want) {
			t.Fatalf("\n got %s\nwant %s", mine, want)
		}
	})
}
