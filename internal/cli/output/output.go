// Package output renders the CLI's results as aligned tables, JSON or YAML,
// in the shapes the Vault CLI uses, so that scripts written against
// `vault ... -format=json` keep working.
//
// It only formats: it makes no requests and decides nothing about exit
// codes. Everything it prints goes to the writer it is given (stdout);
// warnings from the server go to the separate error writer. It never
// prints a value unless asked to, and never to the error writer.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-secrets/vigil/api"
)

// Format is an output format.
type Format string

// The output formats.
const (
	Table Format = "table"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// ParseFormat checks a -format value; "" means [Table].
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return Table, nil
	case Table, JSON, YAML:
		return f, nil
	case "yml":
		return YAML, nil
	}
	return "", fmt.Errorf("invalid output format %q: want table, json or yaml", s)
}

// Printer writes results in one format.
type Printer struct {
	Out    io.Writer
	Err    io.Writer
	Format Format
}

// Row is one Key/Value line of a table.
type Row struct {
	Key   string
	Value any
}

// Structured writes v as JSON (indented, with a trailing newline) or YAML.
// With the table format it falls back to JSON, which is the only faithful
// rendering of arbitrary data.
func (p *Printer) Structured(v any) error {
	if p.Format == YAML {
		g, err := generic(v)
		if err != nil {
			return err
		}
		b, err := yaml.Marshal(g)
		if err != nil {
			return fmt.Errorf("output: encode yaml: %w", err)
		}
		_, err = p.Out.Write(b)
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("output: encode json: %w", err)
	}
	_, err = p.Out.Write(append(b, '\n'))
	return err
}

// generic converts v to maps, slices and json.Number through JSON, so that
// YAML uses the JSON field names.
func generic(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("output: encode: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("output: decode: %w", err)
	}
	return numbersToYAML(g), nil
}

// numbersToYAML turns json.Number into int64 or float64 so YAML prints
// numbers, not strings.
func numbersToYAML(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	case map[string]any:
		for k, x := range t {
			t[k] = numbersToYAML(x)
		}
	case []any:
		for i, x := range t {
			t[i] = numbersToYAML(x)
		}
	}
	return v
}

// KeyValues prints rows as a Key/Value table, or as one JSON/YAML object.
func (p *Printer) KeyValues(rows []Row) error {
	if p.Format != Table {
		m := make(map[string]any, len(rows))
		for _, r := range rows {
			m[r.Key] = r.Value
		}
		return p.Structured(m)
	}
	return WriteKeyValues(p.Out, rows)
}

// WriteKeyValues writes rows as a Vault-style table: a "Key Value" header,
// a dashed line, then one aligned line per row.
func WriteKeyValues(w io.Writer, rows []Row) error {
	cells := make([][]string, 0, len(rows))
	for _, r := range rows {
		cells = append(cells, []string{r.Key, Cell(r.Value)})
	}
	return WriteTable(w, []string{"Key", "Value"}, cells)
}

// Table prints rows under header as an aligned table, or as a list of
// objects keyed by the header names in JSON/YAML.
func (p *Printer) Table(header []string, rows [][]string) error {
	if p.Format != Table {
		list := make([]map[string]string, 0, len(rows))
		for _, r := range rows {
			m := map[string]string{}
			for i, h := range header {
				if i < len(r) {
					m[h] = r[i]
				}
			}
			list = append(list, m)
		}
		return p.Structured(list)
	}
	return WriteTable(p.Out, header, rows)
}

// WriteTable writes an aligned table with a header and a dashed line under
// it. Columns are separated by four spaces, as in Vault.
func WriteTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 4, ' ', 0)
	line := func(cells []string) {
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if len(header) > 0 {
		line(header)
		dashes := make([]string, len(header))
		for i, h := range header {
			dashes[i] = strings.Repeat("-", len(h))
		}
		line(dashes)
	}
	for _, r := range rows {
		clean := make([]string, len(r))
		for i, c := range r {
			// A tab or newline in a cell would break the alignment.
			clean[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
		}
		line(clean)
	}
	return tw.Flush()
}

// List prints keys: one per line under a "Keys" header for tables, a JSON
// or YAML array otherwise (as `vault list -format=json` does).
func (p *Printer) List(keys []string) error {
	if p.Format != Table {
		if keys == nil {
			keys = []string{}
		}
		return p.Structured(keys)
	}
	rows := make([][]string, len(keys))
	for i, k := range keys {
		rows[i] = []string{k}
	}
	return WriteTable(p.Out, []string{"Keys"}, rows)
}

// Secret prints a secret: the whole envelope in JSON/YAML; for tables, the
// lease, auth and wrapping rows, then the data keys sorted. Server warnings
// are written to the error writer in table mode.
func (p *Printer) Secret(s *api.Secret) error {
	if p.Format != Table {
		return p.Structured(s)
	}
	p.Warnings(s)
	rows := SecretRows(s)
	if len(rows) == 0 {
		return nil
	}
	return WriteKeyValues(p.Out, rows)
}

// Warnings writes the secret's warnings to the error writer.
func (p *Printer) Warnings(s *api.Secret) {
	if s == nil || len(s.Warnings) == 0 || p.Err == nil {
		return
	}
	fmt.Fprintln(p.Err, "WARNING! The following warnings were returned from the server:")
	fmt.Fprintln(p.Err)
	for _, w := range s.Warnings {
		fmt.Fprintf(p.Err, "  * %s\n", w)
	}
	fmt.Fprintln(p.Err)
}

// SecretRows returns the table rows of a secret.
func SecretRows(s *api.Secret) []Row {
	if s == nil {
		return nil
	}
	var rows []Row
	if s.LeaseDuration > 0 {
		if s.LeaseID != "" {
			rows = append(rows,
				Row{"lease_id", s.LeaseID},
				Row{"lease_duration", HumanDuration(int64(s.LeaseDuration))},
				Row{"lease_renewable", s.Renewable})
		} else {
			rows = append(rows, Row{"refresh_interval", HumanDuration(int64(s.LeaseDuration))})
		}
	}
	if a := s.Auth; a != nil {
		dur := "∞"
		if a.LeaseDuration > 0 {
			dur = HumanDuration(int64(a.LeaseDuration))
		}
		rows = append(rows,
			Row{"token", a.ClientToken},
			Row{"token_accessor", a.Accessor},
			Row{"token_duration", dur},
			Row{"token_renewable", a.Renewable},
			Row{"token_policies", a.TokenPolicies},
			Row{"identity_policies", a.IdentityPolicies},
			Row{"policies", a.Policies})
		keys := make([]string, 0, len(a.Metadata))
		for k := range a.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			rows = append(rows, Row{"token_meta_" + k, a.Metadata[k]})
		}
	}
	if w := s.WrapInfo; w != nil {
		rows = append(rows,
			Row{"wrapping_token:", w.Token},
			Row{"wrapping_accessor:", w.Accessor},
			Row{"wrapping_token_ttl:", HumanDuration(int64(w.TTL))},
			Row{"wrapping_token_creation_time:", w.CreationTime.String()},
			Row{"wrapping_token_creation_path:", w.CreationPath})
		if w.WrappedAccessor != "" {
			rows = append(rows, Row{"wrapped_accessor:", w.WrappedAccessor})
		}
	}
	return append(rows, MapRows(s.Data)...)
}

// MapRows returns one row per key of m, sorted by key.
func MapRows(m map[string]any) []Row {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([]Row, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, Row{k, m[k]})
	}
	return rows
}

// Cell renders a value for a table cell as Vault does: "n/a" for the empty
// string, "<nil>" for null, Go's %v for everything else (maps print with
// sorted keys).
func Cell(v any) string {
	switch t := v.(type) {
	case nil:
		return "<nil>"
	case string:
		if t == "" {
			return "n/a"
		}
		return t
	case json.Number:
		return t.String()
	}
	return fmt.Sprintf("%v", v)
}

// Raw renders a value for -field: strings verbatim, numbers and booleans as
// literals, null as nothing, and objects and arrays as compact JSON.
func Raw(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	case fmt.Stringer:
		return t.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// Header returns a section title padded with pad "=" on each side, as in
// "== Secret Path ==".
func Header(title string, pad int) string {
	if pad < 1 {
		pad = 1
	}
	eq := strings.Repeat("=", pad)
	return eq + " " + title + " " + eq
}

// HumanDuration prints seconds as Vault does: "768h", "1h30m", "45s",
// without zero-valued trailing units.
func HumanDuration(seconds int64) string {
	if seconds == 0 {
		return "0s"
	}
	s := (time.Duration(seconds) * time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
