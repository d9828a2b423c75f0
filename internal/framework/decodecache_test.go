package framework

import (
	"fmt"
	"testing"
)

type testRecord struct {
	Name string `json:"name"`
}

type otherRecord struct {
	N int `json:"n"`
}

// TestDecodeCache checks that an entry serves only the bytes it was
// decoded from, that a key read as another type is decoded again, and
// that the cache stays within its bound while every answer is right.
func TestDecodeCache(t *testing.T) {
	var c DecodeCache
	a, err := Decode[testRecord](&c, "k", []byte(`{"name":"a"}`))
	if err != nil || a.Name != "a" {
		t.Fatalf("first decode: %+v, %v", a, err)
	}
	if again, _ := Decode[testRecord](&c, "k", []byte(`{"name":"a"}`)); again != a {
		t.Fatal("the same bytes were decoded again")
	}
	if b, _ := Decode[testRecord](&c, "k", []byte(`{"name":"b"}`)); b == a || b.Name != "b" {
		t.Fatalf("changed bytes served from the cache: %+v", b)
	}
	if o, err := Decode[otherRecord](&c, "k", []byte(`{"name":"b"}`)); err != nil || o.N != 0 {
		t.Fatalf("another type at the same key: %+v, %v", o, err)
	}
	if _, err := Decode[testRecord](&c, "bad", []byte(`{`)); err == nil {
		t.Fatal("invalid JSON decoded")
	}
	const n = MaxDecoded + MaxDecoded/2
	for round := range 2 {
		for i := range n {
			raw := fmt.Appendf(nil, `{"name":"r%d"}`, i)
			r, err := Decode[testRecord](&c, fmt.Sprintf("r/%d", i), raw)
			if err != nil || r.Name != fmt.Sprintf("r%d", i) {
				t.Fatalf("round %d, record %d: %+v, %v", round, i, r, err)
			}
			if c.Len() > MaxDecoded {
				t.Fatalf("the cache holds %d records, more than %d", c.Len(), MaxDecoded)
			}
		}
	}
}
