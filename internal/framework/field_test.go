package framework

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCoerce(t *testing.T) {
	t.Parallel()
	type tc struct {
		name string
		typ  FieldType
		in   any
		want any
		bad  bool
	}
	num := func(s string) json.Number { return json.Number(s) }
	cases := []tc{
		// TypeString
		{"string/string", TypeString, "abc", "abc", false},
		{"string/empty", TypeString, "", "", false},
		{"string/json.Number", TypeString, num("42"), "42", false},
		{"string/float", TypeString, 1.5, "1.5", false},
		{"string/int", TypeString, 7, "7", false},
		{"string/bool", TypeString, true, "true", false},
		{"string/null", TypeString, nil, "", false},
		{"string/object", TypeString, map[string]any{"a": "b"}, nil, true},
		{"string/list", TypeString, []any{"a"}, nil, true},
		{"string/repeated query", TypeString, []string{"a", "b"}, nil, true},

		// TypeNameString
		{"name/ok", TypeNameString, "my-role.v1", "my-role.v1", false},
		{"name/single", TypeNameString, "a", "a", false},
		{"name/number", TypeNameString, num("12"), "12", false},
		{"name/slash", TypeNameString, "a/b", nil, true},
		{"name/trailing dot", TypeNameString, "a.", nil, true},
		{"name/empty", TypeNameString, "", nil, true},
		{"name/null", TypeNameString, nil, nil, true},

		// TypeInt
		{"int/json.Number", TypeInt, num("5"), 5, false},
		{"int/json.Number negative", TypeInt, num("-3"), -3, false},
		{"int/json.Number integral fraction", TypeInt, num("5.0"), 5, false},
		{"int/json.Number exponent", TypeInt, num("1e3"), 1000, false},
		{"int/json.Number fraction", TypeInt, num("5.5"), nil, true},
		{"int/float64", TypeInt, 12.0, 12, false},
		{"int/float64 fraction", TypeInt, 1.25, nil, true},
		{"int/int", TypeInt, 9, 9, false},
		{"int/int64", TypeInt, int64(9), 9, false},
		{"int/string", TypeInt, "5", 5, false},
		{"int/string spaces", TypeInt, " 5 ", 5, false},
		{"int/empty string", TypeInt, "", 0, false},
		{"int/null", TypeInt, nil, 0, false},
		{"int/garbage", TypeInt, "abc", nil, true},
		{"int/bool", TypeInt, true, nil, true},
		{"int/overflow", TypeInt, num("99999999999999999999"), nil, true},
		{"int/list", TypeInt, []any{num("1")}, nil, true},

		// TypeInt64
		{"int64/json.Number", TypeInt64, num("9007199254740993"), int64(9007199254740993), false},
		{"int64/string", TypeInt64, "-8", int64(-8), false},
		{"int64/garbage", TypeInt64, "1x", nil, true},

		// TypeBool
		{"bool/true", TypeBool, true, true, false},
		{"bool/false", TypeBool, false, false, false},
		{"bool/string true", TypeBool, "true", true, false},
		{"bool/string t", TypeBool, "t", true, false},
		{"bool/string TRUE", TypeBool, "TRUE", true, false},
		{"bool/string 0", TypeBool, "0", false, false},
		{"bool/string f", TypeBool, "f", false, false},
		{"bool/empty", TypeBool, "", false, false},
		{"bool/json.Number 1", TypeBool, num("1"), true, false},
		{"bool/json.Number 0", TypeBool, num("0"), false, false},
		{"bool/json.Number 2", TypeBool, num("2"), nil, true},
		{"bool/garbage", TypeBool, "yes", nil, true},
		{"bool/object", TypeBool, map[string]any{}, nil, true},

		// TypeDurationSecond
		{"dur/json.Number seconds", TypeDurationSecond, num("3600"), time.Hour, false},
		{"dur/float seconds", TypeDurationSecond, 60.0, time.Minute, false},
		{"dur/int seconds", TypeDurationSecond, 30, 30 * time.Second, false},
		{"dur/numeric string", TypeDurationSecond, "3600", time.Hour, false},
		{"dur/go duration", TypeDurationSecond, "1h", time.Hour, false},
		{"dur/go duration compound", TypeDurationSecond, "1h30m", 90 * time.Minute, false},
		{"dur/768h", TypeDurationSecond, "768h", 768 * time.Hour, false},
		{"dur/0s", TypeDurationSecond, "0s", time.Duration(0), false},
		{"dur/sub-second truncated", TypeDurationSecond, "1500ms", time.Second, false},
		{"dur/empty", TypeDurationSecond, "", time.Duration(0), false},
		{"dur/days rejected", TypeDurationSecond, "1d", nil, true},
		{"dur/negative rejected", TypeDurationSecond, "-1h", nil, true},
		{"dur/negative seconds rejected", TypeDurationSecond, num("-5"), nil, true},
		{"dur/garbage", TypeDurationSecond, "soon", nil, true},
		{"dur/bool", TypeDurationSecond, true, nil, true},
		{"dur/overflow", TypeDurationSecond, num("9223372036854775807"), nil, true},
		{"sdur/negative", TypeSignedDurationSecond, "-1h", -time.Hour, false},
		{"sdur/negative seconds", TypeSignedDurationSecond, num("-1"), -time.Second, false},

		// TypeCommaStringSlice
		{"cslice/list", TypeCommaStringSlice, []any{"a", " b "}, []string{"a", "b"}, false},
		{"cslice/comma string", TypeCommaStringSlice, "a, b,,c", []string{"a", "b", "c"}, false},
		{"cslice/single", TypeCommaStringSlice, "a", []string{"a"}, false},
		{"cslice/empty string", TypeCommaStringSlice, "", []string{}, false},
		{"cslice/query repeated", TypeCommaStringSlice, []string{"a", "b"}, []string{"a", "b"}, false},
		{"cslice/numbers", TypeCommaStringSlice, []any{num("1"), true}, []string{"1", "true"}, false},
		{"cslice/elements not split", TypeCommaStringSlice, []any{"a,b"}, []string{"a,b"}, false},
		{"cslice/null", TypeCommaStringSlice, nil, []string(nil), false},
		{"cslice/nested", TypeCommaStringSlice, []any{[]any{"a"}}, nil, true},
		{"cslice/object", TypeCommaStringSlice, map[string]any{"a": "b"}, nil, true},

		// TypeCommaIntSlice
		{"islice/json.Numbers", TypeCommaIntSlice, []any{num("1"), num("3")}, []int{1, 3}, false},
		{"islice/cli strings", TypeCommaIntSlice, []any{"1", "3"}, []int{1, 3}, false},
		{"islice/comma string", TypeCommaIntSlice, "1,3", []int{1, 3}, false},
		{"islice/comma string spaces", TypeCommaIntSlice, " 1 , 3 ", []int{1, 3}, false},
		{"islice/single number", TypeCommaIntSlice, num("2"), []int{2}, false},
		{"islice/single int", TypeCommaIntSlice, 2, []int{2}, false},
		{"islice/floats", TypeCommaIntSlice, []any{1.0, 2.0}, []int{1, 2}, false},
		{"islice/query repeated", TypeCommaIntSlice, []string{"1", "2,3"}, []int{1, 2, 3}, false},
		{"islice/empty", TypeCommaIntSlice, []any{}, []int{}, false},
		{"islice/empty string", TypeCommaIntSlice, "", []int{}, false},
		{"islice/null", TypeCommaIntSlice, nil, []int(nil), false},
		{"islice/garbage", TypeCommaIntSlice, []any{"one"}, nil, true},
		{"islice/garbage string", TypeCommaIntSlice, "1,x", nil, true},
		{"islice/fraction", TypeCommaIntSlice, []any{1.5}, nil, true},
		{"islice/object", TypeCommaIntSlice, map[string]any{}, nil, true},

		// TypeStringSlice
		{"slice/list", TypeStringSlice, []any{"a,b", " c"}, []string{"a,b", " c"}, false},
		{"slice/single", TypeStringSlice, "a,b", []string{"a,b"}, false},
		{"slice/empty string", TypeStringSlice, "", []string{}, false},
		{"slice/query repeated", TypeStringSlice, []string{"x", "y"}, []string{"x", "y"}, false},
		{"slice/nested", TypeStringSlice, []any{map[string]any{}}, nil, true},

		// TypeMap
		{"map/object", TypeMap, map[string]any{"a": num("1"), "b": map[string]any{"c": nil}}, map[string]any{"a": num("1"), "b": map[string]any{"c": nil}}, false},
		{"map/empty", TypeMap, map[string]any{}, map[string]any{}, false},
		{"map/string map", TypeMap, map[string]string{"a": "b"}, map[string]any{"a": "b"}, false},
		{"map/null", TypeMap, nil, map[string]any(nil), false},
		{"map/string", TypeMap, `{"a":"b"}`, nil, true},
		{"map/list", TypeMap, []any{}, nil, true},
		{"map/number", TypeMap, num("1"), nil, true},

		// TypeKVPairs
		{"kv/object", TypeKVPairs, map[string]any{"a": "b", "n": num("2"), "t": true, "z": nil}, map[string]string{"a": "b", "n": "2", "t": "true", "z": ""}, false},
		{"kv/list", TypeKVPairs, []any{"a=b", "c=d=e"}, map[string]string{"a": "b", "c": "d=e"}, false},
		{"kv/query repeated", TypeKVPairs, []string{"a=b", "c="}, map[string]string{"a": "b", "c": ""}, false},
		{"kv/comma string", TypeKVPairs, "a=b,c=d", map[string]string{"a": "b", "c": "d"}, false},
		{"kv/empty string", TypeKVPairs, "", map[string]string{}, false},
		{"kv/null", TypeKVPairs, nil, map[string]string(nil), false},
		{"kv/nested value", TypeKVPairs, map[string]any{"a": map[string]any{}}, nil, true},
		{"kv/no equals", TypeKVPairs, []any{"ab"}, nil, true},
		{"kv/empty key", TypeKVPairs, "=v", nil, true},
		{"kv/number", TypeKVPairs, num("1"), nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.typ.coerce(c.in)
			if c.bad {
				if err == nil {
					t.Fatalf("coerce(%#v) = %#v, want an error", c.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("coerce(%#v): %v", c.in, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("coerce(%#v) = %#v (%T), want %#v (%T)", c.in, got, got, c.want, c.want)
			}
		})
	}
}

func TestParseInt(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   any
		want int
		ok   bool
	}{
		{json.Number("3"), 3, true},
		{"4", 4, true},
		{2.0, 2, true},
		{nil, 0, false},
		{"x", 0, false},
		{true, 0, false},
		{map[string]any{}, 0, false},
	} {
		got, err := ParseInt(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseInt(%#v) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100)
	for _, c := range []struct {
		in   any
		want string
	}{
		{"abc", `"abc"`},
		{json.Number("1.5"), "1.5"},
		{nil, "null"},
		{true, "true"},
		{map[string]any{}, "an object"},
		{[]any{}, "a list"},
		{[]string{}, "a list"},
	} {
		if got := describe(c.in); got != c.want {
			t.Errorf("describe(%#v) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := describe(long); !strings.HasSuffix(got, `"...`) || len(got) > maxShown+8 {
		t.Errorf("describe(long) = %s: not truncated on a rune boundary", got)
	}
}

func TestParseDurationSecond(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   any
		want time.Duration
		ok   bool
	}{
		{"1h", time.Hour, true},
		{json.Number("60"), time.Minute, true},
		{"90", 90 * time.Second, true},
		{nil, 0, false},
		{"1d", 0, false},
		{"-1s", 0, false},
		{map[string]any{}, 0, false},
	} {
		got, err := ParseDurationSecond(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseDurationSecond(%#v) = %v, %v; want %v, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}
