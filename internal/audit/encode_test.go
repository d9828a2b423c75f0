package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/auditlog"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// reencode decodes an entry and encodes it again with encoding/json: the
// hand-written encoder must have written exactly that.
func reencode(t *testing.T, entry []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(entry))
	dec.UseNumber()
	var e auditlog.Entry
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, entry)
	}
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// typedValue's fields are in key order, so that its JSON survives the
// round trip through a map unchanged.
type typedValue struct {
	Name  string   `json:"name"`
	Rate  float64  `json:"rate"`
	Sizes []int    `json:"sizes"`
	Tags  []string `json:"tags,omitempty"`
}

func TestEncoderMatchesEncodingJSON(t *testing.T) {
	awkward := "quote\" back\\ <html> & \u2028 tab\t nl\n é 日本 \x01"
	allowed := false
	data := map[string]any{
		"s": awkward, "n": json.Number("12.5"), "i": 7, "i64": int64(-3), "u": uint64(9), "f": 0.25, "t": true, "nil": nil,
		"list": []any{"a", json.Number("1"), false, map[string]any{"k": "v"}},
		"strs": []string{"x", awkward},
		"smap": map[string]string{"b": "2", "a": "1"},
		// Keys in order: a raw document is compacted, not re-sorted.
		"raw":    json.RawMessage(`{"api_key":"sk-1","n":-1.5e3,"nested":{"esc":"a\"bé","list":["a",1,true,null]}}`),
		"bytes":  []byte("binary"),
		"time":   time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		"typed":  typedValue{Name: "resnet", Sizes: []int{1, 2}, Rate: 0.5},
		"empty":  map[string]any{},
		"key<&>": "v",
	}
	in := &Input{
		Time: testTime,
		Auth: &Auth{Accessor: "acc", DisplayName: awkward, Policies: []string{"default"}, Metadata: map[string]string{"z": awkward, "a": "1"},
			TokenType: "batch", TTL: 90 * time.Second, IssueTime: testTime, RemainingUses: 2, Allowed: &allowed},
		Request: &Request{ID: "id", Operation: "update", Path: "secret/data/" + awkward, Data: data, ClientToken: secret.NewString("tok"),
			ClientTokenAccessor: "acc", RemoteAddr: "::1", RemotePort: 1, MountPoint: "secret/", MountType: "kv",
			Headers: []Header{{Name: "x-a", Values: []string{awkward, ""}}, {Name: "x-b", Values: []string{awkward}, HMAC: true}}},
		Response: &Response{Data: data, Warnings: []string{awkward}, LeaseID: "lease/1",
			Auth: &Auth{ClientToken: secret.NewString("new"), Accessor: "a2", Policies: []string{"p"}},
			WrapInfo: &WrapInfo{Token: secret.NewString("wrap"), Accessor: "wa", TTL: time.Minute, CreationTime: testTime,
				CreationPath: "auth/approle/role/" + awkward + "/secret-id", WrappedAccessor: "a2"}},
		Err: errors.New(awkward),
	}
	for _, opts := range []formatOptions{{hmacAccessor: true}, {logRaw: true}, {hmacAccessor: false, elideLists: true}} {
		f := newFormatter(opts, testSalt)
		for _, typ := range []string{"request", "response"} {
			got := f.format(typ, in)
			if want := reencode(t, got); !bytes.Equal(got, want) {
				t.Errorf("%+v %s:\n got %s\nwant %s", opts, typ, got, want)
			}
		}
	}
	// Every string value of the raw document is hashed; its keys are not.
	f := newFormatter(formatOptions{hmacAccessor: true}, testSalt)
	out := string(f.format("response", in))
	for _, clear := range []string{"sk-1", "resnet", `"a\"b`, "binary"} {
		if strings.Contains(out, clear) {
			t.Errorf("%q in clear", clear)
		}
	}
	for _, key := range []string{`"api_key":"hmac-sha256:`, `"esc":"hmac-sha256:`, `"n":-1.5e3`, `"sizes":[1,2]`} {
		if !strings.Contains(out, key) {
			t.Errorf("%s missing", key)
		}
	}
	// A string's hash is the hash of its value, not of its escaped form.
	if !strings.Contains(out, f.h.hash("a\"bé")) {
		t.Error("escaped string hashed in its escaped form")
	}
}

func TestStringEnd(t *testing.T) {
	for raw, want := range map[string]int{
		`"abc"`:          4,
		`""`:             1,
		`"a\"b"`:         5,
		`"a\\"b"`:        4,
		`"\\\"x"`:        6,
		`"\\"`:           3,
		`"unterminated`:  -1,
		`"escaped end\"`: -1,
		`x"a"`:           3, // from the quote at 1
	} {
		i := strings.IndexByte(raw, '"')
		if got := stringEnd([]byte(raw), i); got != want {
			t.Errorf("stringEnd(%s, %d) = %d, want %d", raw, i, got, want)
		}
	}
}

func TestRawMalformed(t *testing.T) {
	f := newFormatter(formatOptions{}, testSalt)
	for _, raw := range []string{`{"a":"b"`, `{"a":"b]`, `]`, ``, `{"a":"unterminated}`} {
		got := f.appendRaw(nil, []byte(raw), true)
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Errorf("%q gave invalid JSON %s", raw, got)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	f := newFormatter(formatOptions{hmacAccessor: true}, testSalt)
	in := sampleInput()
	in.Response = &Response{Data: map[string]any{"data": json.RawMessage(`{"api_key":"sk-live-1234567890"}`),
		"metadata": map[string]any{"version": 3, "destroyed": false, "created_time": "2026-11-23T09:00:00Z", "deletion_time": "", "custom_metadata": nil}}}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.appendEntry(buf[:0], "response", in)
	}
}

// TestResponseReusesRequestMembers: the response entry of a request whose
// request entry was formatted copies its auth and request members; it
// must be what formatting them again writes, for each device (its own
// salt), with every option.
func TestResponseReusesRequestMembers(t *testing.T) {
	input := func() *Input {
		in := sampleInput()
		in.Response = &Response{Data: map[string]any{"data": json.RawMessage(`{"api_key":"sk-live-1"}`), "deletion_time": ""}}
		return in
	}
	for _, opts := range []formatOptions{{hmacAccessor: true}, {logRaw: true}, {}} {
		f1 := newFormatter(opts, testSalt)
		f2 := newFormatter(opts, []byte("another salt"))
		in := input()
		f1.format(auditlog.TypeRequest, in)
		f2.format(auditlog.TypeRequest, in)
		if in.written.by != f1 || in.written.buf == nil {
			t.Fatalf("%+v: the first device's members are not kept", opts)
		}
		in.Time, in.Err = testTime.Add(time.Second), errors.New("late")
		want1 := input()
		want1.Time, want1.Err = in.Time, in.Err
		want2 := input()
		want2.Time, want2.Err = in.Time, in.Err
		if got, want := f1.format(auditlog.TypeResponse, in), f1.format(auditlog.TypeResponse, want1); !bytes.Equal(got, want) {
			t.Errorf("%+v: reused response entry\n got %s\nwant %s", opts, got, want)
		}
		if in.written.buf != nil {
			t.Errorf("%+v: kept members not given back", opts)
		}
		if got, want := f2.format(auditlog.TypeResponse, in), f2.format(auditlog.TypeResponse, want2); !bytes.Equal(got, want) {
			t.Errorf("%+v: second device's response entry\n got %s\nwant %s", opts, got, want)
		}
		// A second response entry (nothing kept any more) is the same too.
		if got, want := f1.format(auditlog.TypeResponse, in), f1.format(auditlog.TypeResponse, want1); !bytes.Equal(got, want) {
			t.Errorf("%+v: repeated response entry\n got %s\nwant %s", opts, got, want)
		}
	}
}

// TestEmptyHash: the hash of "" kept by a hasher is the HMAC of "".
func TestEmptyHash(t *testing.T) {
	h := newHasher(testSalt)
	mac := hmac.New(sha256.New, testSalt)
	want := hashPrefix + hex.EncodeToString(mac.Sum(nil))
	if got := h.hash(""); got != want {
		t.Errorf("hash(\"\") = %s, want %s", got, want)
	}
	if got := string(h.appendHashBytes(nil, []byte{})); got != want {
		t.Errorf("appendHashBytes(\"\") = %s, want %s", got, want)
	}
	var v loggedValue
	newFormatter(formatOptions{}, testSalt).secret(&v, "tok")
	if got := string(v.append(nil)); got != `"`+h.hash("tok")+`"` {
		t.Errorf("logged token = %s", got)
	}
}

// BenchmarkFormatRequest measures a KV read's two entries, the request's
// then the response's, from a fresh input as the pipeline hands it over.
func BenchmarkFormatRequest(b *testing.B) {
	f := newFormatter(formatOptions{hmacAccessor: true}, testSalt)
	resp := &Response{Data: map[string]any{"data": json.RawMessage(`{"api_key":"sk-live-1234567890"}`),
		"metadata": map[string]any{"version": 3, "destroyed": false, "created_time": "2026-11-23T09:00:00Z", "deletion_time": "", "custom_metadata": nil}}}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		in := sampleInput()
		in.Request.Operation, in.Request.Data = "read", nil
		buf = f.appendEntry(buf[:0], "request", in)
		in.Response = resp
		buf = f.appendEntry(buf[:0], "response", in)
	}
}
