package jsonenc

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// reference decodes data as the request path did before Decode: one value
// through encoding/json's Decoder with UseNumber, and nothing after it but
// white space.
func reference(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

var decodeSeeds = []string{
	``, ` `, `{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e-3`, `-12E+40`, `"x"`,
	`{"data":{"value":"sk-0123456789"},"options":{"cas":0}}`,
	`{"a":1,"a":2}`, `{"a":[1,"2",{"b":null}],"c":true}`, ` { "k" : "v" } `,
	`{"esc":"\"\\\/\b\f\n\r\t\u00e9\u20AC"}`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00\ud83d"`,
	`"\ud83d\u0041"`, `"\ud83dx"`, `"\ud83d\ud83d\ude00"`, "\"\xff\xfe\"", "\"a\xc3\"", "\"\xed\xa0\x80\"",
	"\"\xef\xbf\xbd\"", `"日本語"`, "\"tab\there\"", "\"nl\n\"", "\"\x7f\"",
	`01`, `-`, `1.`, `1e`, `1e+`, `.5`, `+1`, `tru`, `trux`, `nul`, `nullx`, `{"a"}`, `{"a":}`, `{"a":1,}`,
	`[1,]`, `[1 2]`, `{a:1}`, `{"a":1}}`, `{"a":1}]`, `{} x`, `"\x"`, `"\u12"`, `"\u12g4"`, `"abc`, `"\`,
	`[`, `{`, `{"a":1`, `{"a":1,`, "\ufeff{}", `{"a":1} `, "[\"\\u0000\"]",
}

func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range decodeSeeds {
		checkDecode(t, []byte(s))
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkDecode)
}

func checkDecode(t *testing.T, data []byte) {
	want, wantErr := reference(data)
	got, err := Decode(data)
	switch {
	case (err != nil) != (wantErr != nil):
		t.Fatalf("Decode(%q): error %v, encoding/json: %v", data, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("Decode(%q) = %#v, encoding/json: %#v", data, got, want)
	}
	if m, ok := got.(map[string]any); ok && err == nil {
		// What Decode makes, AppendAnyMap writes as encoding/json does.
		want, wantErr := json.Marshal(m)
		out, ok := AppendAnyMap(nil, m)
		if !ok || wantErr != nil || string(out) != string(want) {
			t.Fatalf("AppendAnyMap(Decode(%q)) = %s, %v; encoding/json: %s, %v", data, out, ok, want, wantErr)
		}
	}
	var se *SyntaxError
	if errors.As(err, &se) && (se.Offset < 0 || se.Offset > len(data)) {
		t.Fatalf("Decode(%q): offset %d outside the input", data, se.Offset)
	}
}

func TestAppendAnyNumbers(t *testing.T) {
	for _, n := range []json.Number{"", "0", "-0", "12", "1.5", "1e9", "-2.5E-3", "01", "1.", "+1", "x", "1e", "--1", "0x10", " 1"} {
		want, wantErr := json.Marshal(map[string]any{"n": n})
		got, ok := AppendAnyMap(nil, map[string]any{"n": n})
		if ok != (wantErr == nil) || ok && string(got) != string(want) {
			t.Errorf("json.Number %q: %s, %v; encoding/json: %s, %v", n, got, ok, want, wantErr)
		}
	}
	var nilSlice []any
	want, _ := json.Marshal(map[string]any{"a": nilSlice, "b": []any{}, "c": []any{1.5, "x", map[string]any{"d": nil}}})
	got, ok := AppendAnyMap(nil, map[string]any{"a": nilSlice, "b": []any{}, "c": []any{1.5, "x", map[string]any{"d": nil}}})
	if !ok || string(got) != string(want) {
		t.Errorf("slices: %s, %v; encoding/json: %s", got, ok, want)
	}
}

func TestDecodeDepth(t *testing.T) {
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, err := Decode([]byte(ok)); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	deep := "[" + ok + "]"
	_, err := Decode([]byte(deep))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Msg != "exceeded max depth" {
		t.Fatalf("%d levels: %v, want exceeded max depth", MaxDepth+1, err)
	}
	if _, refErr := reference([]byte(deep)); refErr == nil {
		t.Fatal("encoding/json accepted one level more than MaxDepth")
	}
}

// TestDecodeErrorsHideInput checks that no error quotes the input, which
// is a request body that may hold secrets.
func TestDecodeErrorsHideInput(t *testing.T) {
	for _, s := range []string{`{"password":"hunter2"x}`, `{"k":"hunter2`, `["hunter2",hunter2]`, `"\uhunter2"`} {
		_, err := Decode([]byte(s))
		if err == nil {
			t.Fatalf("Decode(%q) accepted it", s)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("Decode(%q) error quotes the input: %v", s, err)
		}
	}
}

func TestDecodeErrorOffset(t *testing.T) {
	_, err := Decode([]byte(`{"a": 1, "b": x}`))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 14 {
		t.Fatalf("error %v, want a syntax error at offset 14", err)
	}
	if _, err := Decode([]byte(`{"a": [1, 2`)); !errors.Is(err, ErrUnexpectedEnd) {
		t.Fatalf("truncated input: %v, want ErrUnexpectedEnd", err)
	}
}

func BenchmarkDecode(b *testing.B) {
	body := []byte(`{"data":{"value":"` + strings.Repeat("x", 256) + `"},"options":{"cas":3}}`)
	b.Run("jsonenc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reference(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
