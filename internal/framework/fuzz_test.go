package framework

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

var allTypes = []FieldType{
	TypeString, TypeInt, TypeInt64, TypeBool, TypeDurationSecond, TypeSignedDurationSecond,
	TypeCommaStringSlice, TypeCommaIntSlice, TypeStringSlice, TypeMap, TypeKVPairs, TypeNameString,
}

// wire is the JSON form a coerced value is sent back in: what a client
// would send to set the field to that value.
func wire(v any) any {
	if d, ok := v.(time.Duration); ok {
		return int64(d / time.Second)
	}
	return v
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// FuzzCoerce feeds arbitrary JSON values to every field type. Coercion must
// never panic, and a value that coerced must coerce to the same result when
// sent again in its JSON wire form.
func FuzzCoerce(f *testing.F) {
	for _, seed := range []string{
		`"abc"`, `""`, `"5"`, `" 5 "`, `5`, `-3`, `5.0`, `1e3`, `5.5`, `99999999999999999999`,
		`true`, `false`, `"t"`, `null`, `"1h"`, `"0s"`, `"1d"`, `"-1h"`, `"1500ms"`, `3600`,
		`"a,b"`, `["a"," b "]`, `["1","3"]`, `[1,3]`, `"1,3"`, `[]`, `{}`, `{"a":"b"}`,
		`{"a":{"b":null}}`, `["k=v","x=y=z"]`, `"k=v,k2=v2"`, `[[1]]`, `"my-role.v1"`, `"é,ü"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, err := decodeJSON(in)
		if err != nil {
			return
		}
		for _, typ := range allTypes {
			got, err := typ.coerce(raw)
			if err != nil {
				// The error must render without panicking, too.
				_ = fieldError("f", &FieldSchema{Type: typ}, raw, err).Error()
				continue
			}
			enc, err := json.Marshal(wire(got))
			if err != nil {
				t.Fatalf("%s: coerced %#v to %#v, which does not encode: %v", typ, raw, got, err)
			}
			again, err := decodeJSON(enc)
			if err != nil {
				t.Fatalf("%s: decode %s: %v", typ, enc, err)
			}
			got2, err := typ.coerce(again)
			if err != nil {
				t.Fatalf("%s: %s coerced to %#v, whose wire form %s is rejected: %v", typ, in, got, enc, err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(got2)) {
				t.Fatalf("%s: %s coerced to %#v, but its wire form %s coerced to %#v", typ, in, got, enc, got2)
			}
		}
	})
}

// normalize treats nil and empty slices and maps alike: JSON null and []
// both mean "none".
func normalize(v any) any {
	switch t := v.(type) {
	case []string:
		if len(t) == 0 {
			return nil
		}
	case []int:
		if len(t) == 0 {
			return nil
		}
	case map[string]string:
		if len(t) == 0 {
			return nil
		}
	case map[string]any:
		if len(t) == 0 {
			return nil
		}
	}
	return v
}
