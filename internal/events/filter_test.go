package events

import (
	"errors"
	"testing"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	write := ev("kv-v2/data-write") // data_path secret/data/a, operation data-write
	del := ev("kv-v2/data-delete")
	del.Metadata = map[string]string{MetaOperation: "data-delete", MetaDataPath: "secret/data/b"}
	for _, tc := range []struct {
		name, filter   string
		matchW, matchD bool
		wantErr        bool
		wantNil        bool
	}{
		{name: "empty", filter: "  ", matchW: true, matchD: true, wantNil: true},
		{name: "bare value", filter: "data_path == secret/data/a", matchW: true},
		{name: "quoted", filter: `operation == "data-delete"`, matchD: true},
		{name: "no spaces", filter: `operation!="data-delete"`, matchW: true},
		{name: "and", filter: `event_type == kv-v2/data-write and data_path != "secret/data/b"`, matchW: true},
		{name: "Vault's example", filter: `data_path == secret/data/a and operation != "data-write"`},
		{name: "mount", filter: `source_plugin_mount == "secret/"`, matchW: true, matchD: true},
		{name: "namespace", filter: `namespace == ""`, matchW: true, matchD: true},
		{name: "escape", filter: `data_path == "secret/data/\"a"`},
		{name: "or", filter: `operation == a or operation == b`, wantErr: true},
		{name: "not", filter: `not operation == a`, wantErr: true},
		{name: "parens", filter: `(operation == a)`, wantErr: true},
		{name: "matches", filter: `operation matches "a.*"`, wantErr: true},
		{name: "in", filter: `"a" in operation`, wantErr: true},
		{name: "unknown selector", filter: `plugin == kv`, wantErr: true},
		{name: "single =", filter: `operation = a`, wantErr: true},
		{name: "missing value", filter: `operation ==`, wantErr: true},
		{name: "operator as value", filter: `operation == ==`, wantErr: true},
		{name: "trailing and", filter: `operation == a and`, wantErr: true},
		{name: "unterminated", filter: `operation == "a`, wantErr: true},
		{name: "single quotes", filter: `operation == 'a'`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFilter(tc.filter)
			if tc.wantErr {
				if !errors.Is(err, ErrFilter) {
					t.Fatalf("err = %v, want ErrFilter", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (f == nil) != tc.wantNil {
				t.Fatalf("filter nil = %v", f == nil)
			}
			if got := f.Match(write); got != tc.matchW {
				t.Errorf("match write = %v", got)
			}
			if got := f.Match(del); got != tc.matchD {
				t.Errorf("match delete = %v", got)
			}
		})
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`data_path == secret/data/a and operation != "data-write"`, `a == "\"`, `x==y and`, `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("error does not wrap ErrFilter: %v", err)
			}
			return
		}
		flt.Match(ev("kv-v2/data-write"))
	})
}
