package framework

import (
	"fmt"
	"time"
)

// FieldData holds a request's fields after the framework has checked them
// against the path's schema. Every supplied field has already been coerced,
// so the getters cannot fail on user input: they return the supplied value,
// else the schema default, else the type's zero value.
//
// Calling a getter for a field the path does not declare, or with the
// getter of another type, is a programming error and panics; the tests of
// each mount exercise every handler and catch it.
type FieldData struct {
	path   *compiledPath
	values []fieldValue
	// buf backs values for the common request with few fields, saving an
	// allocation.
	buf [4]fieldValue
}

// fieldValue is one supplied field: from the path pattern or the request
// data.
type fieldValue struct {
	name  string
	raw   any
	value any
}

func (d *FieldData) lookup(name string) (fieldValue, bool) {
	for _, v := range d.values {
		if v.name == name {
			return v, true
		}
	}
	return fieldValue{}, false
}

// get returns the coerced value of name, checking that the schema's type is
// one of want.
func (d *FieldData) get(name string, getter string, want ...FieldType) any {
	schema, ok := d.path.fields[name]
	if !ok {
		panic(fmt.Sprintf("framework: %s(%q): field not in the schema of path %q", getter, name, d.path.Pattern))
	}
	typeOK := false
	for _, t := range want {
		if schema.Type == t {
			typeOK = true
			break
		}
	}
	if !typeOK {
		panic(fmt.Sprintf("framework: %s(%q): field has type %s", getter, name, schema.Type))
	}
	if v, ok := d.lookup(name); ok {
		return v.value
	}
	return d.path.defaults[name]
}

// Has reports whether the request supplied the field, in its data (body or
// query) or through the path pattern. A supplied JSON null counts.
func (d *FieldData) Has(name string) bool {
	_, ok := d.lookup(name)
	return ok
}

// Raw returns the field's value exactly as the request supplied it, before
// coercion (nil when not supplied), for the rare handler that needs the JSON
// value itself: a merge patch's nulls, for example.
func (d *FieldData) Raw(name string) any {
	v, _ := d.lookup(name)
	return v.raw
}

// String returns a TypeString or TypeNameString field.
func (d *FieldData) String(name string) string {
	return d.get(name, "String", TypeString, TypeNameString).(string)
}

// Int returns a TypeInt or TypeInt64 field as an int.
func (d *FieldData) Int(name string) int {
	switch v := d.get(name, "Int", TypeInt, TypeInt64).(type) {
	case int64:
		return int(v)
	case int:
		return v
	}
	panic("unreachable")
}

// Int64 returns a TypeInt or TypeInt64 field as an int64.
func (d *FieldData) Int64(name string) int64 {
	switch v := d.get(name, "Int64", TypeInt, TypeInt64).(type) {
	case int64:
		return v
	case int:
		return int64(v)
	}
	panic("unreachable")
}

// Bool returns a TypeBool field.
func (d *FieldData) Bool(name string) bool {
	return d.get(name, "Bool", TypeBool).(bool)
}

// Duration returns a TypeDurationSecond or TypeSignedDurationSecond field.
func (d *FieldData) Duration(name string) time.Duration {
	return d.get(name, "Duration", TypeDurationSecond, TypeSignedDurationSecond).(time.Duration)
}

// StringSlice returns a TypeCommaStringSlice or TypeStringSlice field. The
// caller may modify the returned slice.
func (d *FieldData) StringSlice(name string) []string {
	v := d.get(name, "StringSlice", TypeCommaStringSlice, TypeStringSlice).([]string)
	if v == nil {
		return nil
	}
	return append([]string{}, v...)
}

// IntSlice returns a TypeCommaIntSlice field. The caller may modify the
// returned slice.
func (d *FieldData) IntSlice(name string) []int {
	v := d.get(name, "IntSlice", TypeCommaIntSlice).([]int)
	if v == nil {
		return nil
	}
	return append([]int{}, v...)
}

// Map returns a TypeMap field: the decoded JSON object, numbers as
// json.Number. It is the request's own map; the caller must not modify it.
func (d *FieldData) Map(name string) map[string]any {
	return d.get(name, "Map", TypeMap).(map[string]any)
}

// StringMap returns a TypeKVPairs field. The caller may modify the returned
// map.
func (d *FieldData) StringMap(name string) map[string]string {
	v := d.get(name, "StringMap", TypeKVPairs).(map[string]string)
	if v == nil {
		return nil
	}
	out := make(map[string]string, len(v))
	for k, s := range v {
		out[k] = s
	}
	return out
}
