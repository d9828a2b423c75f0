package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vigil-secrets/vigil/api"
)

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Format{"": Table, "table": Table, "JSON": JSON, " yaml ": YAML, "yml": YAML} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("xml accepted")
	}
}

func TestCellAndRaw(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        any
		cell, raw string
	}{
		{"", "n/a", ""},
		{"x", "x", "x"},
		{nil, "<nil>", ""},
		{json.Number("12"), "12", "12"},
		{true, "true", "true"},
		{map[string]any{"b": "2", "a": "1"}, "map[a:1 b:2]", `{"a":"1","b":"2"}`},
		{[]any{"x", "y"}, "[x y]", `["x","y"]`},
	}
	for _, tt := range tests {
		if got := Cell(tt.in); got != tt.cell {
			t.Errorf("Cell(%#v) = %q, want %q", tt.in, got, tt.cell)
		}
		if got := Raw(tt.in); got != tt.raw {
			t.Errorf("Raw(%#v) = %q, want %q", tt.in, got, tt.raw)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{0: "0s", 45: "45s", 60: "1m", 3600: "1h", 5400: "1h30m", 2764800: "768h", 3661: "1h1m1s"} {
		if got := HumanDuration(in); got != want {
			t.Errorf("HumanDuration(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestKeyValuesTable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	p := &Printer{Out: &b, Format: Table}
	if err := p.KeyValues([]Row{{"a", "1"}, {"longer_key", ""}}); err != nil {
		t.Fatal(err)
	}
	want := "Key           Value\n---           -----\na             1\nlonger_key    n/a\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestSecretTableAndWarnings(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	p := &Printer{Out: &out, Err: &errOut, Format: Table}
	s := &api.Secret{
		LeaseID: "db/creds/ro/abc", LeaseDuration: 3600, Renewable: true,
		Data:     map[string]any{"username": "u", "password": "p"},
		Warnings: []string{"careful"},
	}
	if err := p.Secret(s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lease_id           db/creds/ro/abc\n", "lease_duration     1h\n", "lease_renewable    true\n", "password           p\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "* careful") || strings.Contains(errOut.String(), "password") {
		t.Errorf("warnings: %q", errOut.String())
	}

	out.Reset()
	auth := &api.Secret{Auth: &api.SecretAuth{ClientToken: "t", Accessor: "a", Policies: []string{"default"}, Metadata: map[string]string{"role": "r"}}}
	_ = p.Secret(auth)
	if !strings.Contains(out.String(), "token_duration       ∞") || !strings.Contains(out.String(), "token_meta_role      r") {
		t.Errorf("auth rows:\n%s", out.String())
	}
}

func TestStructuredFormats(t *testing.T) {
	t.Parallel()
	s := &api.Secret{RequestID: "r", Data: map[string]any{"n": json.Number("3"), "f": json.Number("1.5"), "s": "x"}}
	var b bytes.Buffer
	if err := (&Printer{Out: &b, Format: JSON}).Secret(s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"n": 3`) || !strings.HasSuffix(b.String(), "}\n") || strings.Contains(b.String(), "auth") {
		t.Errorf("json:\n%s", b.String())
	}
	b.Reset()
	if err := (&Printer{Out: &b, Format: YAML}).Secret(s); err != nil {
		t.Fatal(err)
	}
	var y map[string]any
	if err := yaml.Unmarshal(b.Bytes(), &y); err != nil {
		t.Fatal(err)
	}
	d := y["data"].(map[string]any)
	if d["n"] != 3 || d["f"] != 1.5 || y["request_id"] != "r" {
		t.Errorf("yaml:\n%s", b.String())
	}
	b.Reset()
	if err := (&Printer{Out: &b, Format: JSON}).List(nil); err != nil || b.String() != "[]\n" {
		t.Errorf("empty json list %q %v", b.String(), err)
	}
	b.Reset()
	_ = (&Printer{Out: &b, Format: JSON}).Table([]string{"Path", "Type"}, [][]string{{"a/", "kv"}})
	if !strings.Contains(b.String(), `"Path": "a/"`) {
		t.Errorf("json table %s", b.String())
	}
}

func TestHeader(t *testing.T) {
	t.Parallel()
	if got := Header("Secret Path", 2); got != "== Secret Path ==" {
		t.Errorf("Header = %q", got)
	}
	if got := Header("Data", 6); got != "====== Data ======" {
		t.Errorf("Header = %q", got)
	}
}
