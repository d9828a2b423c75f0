package policy

import (
	"errors"
	"reflect"
	"testing"
)

func TestSubscribeEventTypes(t *testing.T) {
	t.Parallel()
	a := compileTexts(t, `
path "secret/data/app/*" {
  capabilities          = ["subscribe"]
  subscribe_event_types = ["kv-v2/data-*", "kv-v2/data-*"]
}
path "secret/data/ops/*" {
  capabilities = ["read"]
}
path "secret/data/ops/locked" {
  capabilities          = ["deny"]
}
path "sys/events/subscribe/*" {
  capabilities = ["read"]
}`, `
path "secret/data/app/*" {
  capabilities          = ["list"]
  subscribe_event_types = ["kv-v2/delete"]
}`)
	for _, tc := range []struct {
		path  string
		caps  Capability
		types []string
	}{
		{"secret/data/app/db", Subscribe | List, []string{"kv-v2/data-*", "kv-v2/delete"}},
		{"secret/data/ops/db", Read, nil},
		{"secret/data/ops/locked", Deny, nil},
		{"secret/data/other", 0, nil},
		{"/secret/data/app/x", Subscribe | List, []string{"kv-v2/data-*", "kv-v2/delete"}},
	} {
		caps, types := a.EventAccess(tc.path)
		if caps != tc.caps || !reflect.DeepEqual(types, tc.types) {
			t.Errorf("EventAccess(%q) = %v %v, want %v %v", tc.path, caps, types, tc.caps, tc.types)
		}
	}
	if caps, types := Root().EventAccess("anything"); caps != Granting || !reflect.DeepEqual(types, []string{"*"}) {
		t.Errorf("root: %v %v", caps, types)
	}
	var nilACL *ACL
	if caps, types := nilACL.EventAccess("x"); caps != 0 || types != nil {
		t.Errorf("nil ACL: %v %v", caps, types)
	}
}

func TestSubscribeEventTypesParse(t *testing.T) {
	t.Parallel()
	p, err := Parse("p", `path "secret/*" { capabilities = ["subscribe"] subscribe_event_types = ["kv-v2/data-write", "kv-v1/*"] }`)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Rules[0].SubscribeEventTypes; !reflect.DeepEqual(got, []string{"kv-v2/data-write", "kv-v1/*"}) {
		t.Fatalf("parsed %v", got)
	}
	j, err := Parse("p", `{"path":{"secret/*":{"capabilities":["subscribe"],"subscribe_event_types":["kv-v2/data-write","kv-v1/*"]}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j.Rules[0].SubscribeEventTypes, p.Rules[0].SubscribeEventTypes) {
		t.Fatalf("JSON parsed %v", j.Rules[0].SubscribeEventTypes)
	}
	d, err := Parse("p", `path "secret/*" { capabilities = ["deny"] subscribe_event_types = ["*"] }`)
	if err != nil {
		t.Fatal(err)
	}
	if d.Rules[0].SubscribeEventTypes != nil {
		t.Fatalf("a deny rule kept its event types: %v", d.Rules[0].SubscribeEventTypes)
	}
	for _, bad := range []string{
		`path "a" { subscribe_event_types = "kv-v2/data-write" }`,
		`path "a" { subscribe_event_types = [""] }`,
		`path "a" { subscribe_event_types = [1] }`,
	} {
		if _, err := Parse("p", bad); !errors.Is(err, ErrParse) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}
