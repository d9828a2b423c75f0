package framework

import (
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

func TestGetPutJSON(t *testing.T) {
	ctx, s := t.Context(), logicaltest.New()
	var v struct{ N int }
	if found, err := GetJSON(ctx, s, "role/x", &v); found || err != nil {
		t.Fatalf("missing entry: found %v, %v", found, err)
	}
	if err := PutJSON(ctx, s, "role/x", struct{ N int }{7}); err != nil {
		t.Fatal(err)
	}
	if found, err := GetJSON(ctx, s, "role/x", &v); !found || err != nil || v.N != 7 {
		t.Fatalf("stored entry: found %v, %v, %+v", found, err, v)
	}
	if err := s.Put(ctx, "role/bad", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := GetJSON(ctx, s, "role/bad", &v); err == nil || !strings.Contains(err.Error(), `"role/bad"`) {
		t.Fatalf("undecodable entry: %v, want an error naming the key", err)
	}
}
