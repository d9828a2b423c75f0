package identity

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func request(t *testing.T, b logical.Backend, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	return b.HandleRequest(t.Context(), &logical.Request{Operation: op, Path: path, Data: data})
}

func TestBackendReads(t *testing.T) {
	s, _, _ := newTestStore(t)
	b, err := NewBackend(s)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing yet: lists are 404, as Vault answers an empty list.
	for _, p := range []string{"entity/id", "entity/name/", "entity-alias/id"} {
		if _, err := request(t, b, logical.ListOperation, p, nil); !errors.Is(err, logical.ErrNotFound) {
			t.Errorf("LIST %s on an empty store: %v, want not found", p, err)
		}
	}
	e, err := s.ForLogin(t.Context(), podLogin("ml-serving", "llm-gateway", "p1"))
	if err != nil {
		t.Fatal(err)
	}
	a := e.Aliases[0]

	for _, p := range []string{"entity/id/" + e.ID, "entity/name/" + e.Name} {
		resp, err := request(t, b, logical.ReadOperation, p, nil)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		d := resp.Data
		if d["id"] != e.ID || d["name"] != e.Name || d["namespace_id"] != "root" || d["disabled"] != false {
			t.Errorf("read %s: %v", p, d)
		}
		if ct, err := time.Parse(time.RFC3339Nano, d["creation_time"].(string)); err != nil || !ct.Equal(t0) {
			t.Errorf("creation_time %v (%v)", d["creation_time"], err)
		}
		for _, k := range []string{"policies", "group_ids", "direct_group_ids", "inherited_group_ids"} {
			if v, ok := d[k].([]string); !ok || v == nil || len(v) != 0 {
				t.Errorf("%s = %#v, want []", k, d[k])
			}
		}
		als := d["aliases"].([]map[string]any)
		if len(als) != 1 || als[0]["id"] != a.ID || als[0]["canonical_id"] != e.ID ||
			als[0]["mount_accessor"] != a.MountAccessor || als[0]["mount_path"] != "auth/kubernetes/" ||
			als[0]["mount_type"] != "kubernetes" || als[0]["metadata"].(map[string]string)["service_account_name"] != "llm-gateway" {
			t.Errorf("aliases = %v", als)
		}
	}

	resp, err := request(t, b, logical.ReadOperation, "entity-alias/id/"+a.ID, nil)
	if err != nil || resp.Data["canonical_id"] != e.ID || resp.Data["name"] != a.Name {
		t.Errorf("read alias: %v %v", resp, err)
	}

	resp, err = request(t, b, logical.ListOperation, "entity/id/", nil)
	if err != nil {
		t.Fatal(err)
	}
	info := resp.Data["key_info"].(map[string]any)[e.ID].(map[string]any)
	if !slices.Equal(resp.Data["keys"].([]string), []string{e.ID}) || info["name"] != e.Name ||
		info["aliases"].([]map[string]any)[0]["mount_accessor"] != a.MountAccessor {
		t.Errorf("LIST entity/id: %v", resp.Data)
	}
	resp, err = request(t, b, logical.ListOperation, "entity/name", nil)
	if err != nil || !slices.Equal(resp.Data["keys"].([]string), []string{e.Name}) {
		t.Errorf("LIST entity/name: %v %v", resp, err)
	}
	resp, err = request(t, b, logical.ListOperation, "entity-alias/id", nil)
	if err != nil || !slices.Equal(resp.Data["keys"].([]string), []string{a.ID}) ||
		resp.Data["key_info"].(map[string]any)[a.ID].(map[string]any)["canonical_id"] != e.ID {
		t.Errorf("LIST entity-alias/id: %v %v", resp, err)
	}

	// Unknown ids and names: 404.
	for _, p := range []string{"entity/id/nope", "entity/name/nope", "entity-alias/id/nope"} {
		if _, err := request(t, b, logical.ReadOperation, p, nil); !errors.Is(err, logical.ErrNotFound) {
			t.Errorf("read %s: %v, want not found", p, err)
		}
	}
}

func TestBackendLookup(t *testing.T) {
	s, _, _ := newTestStore(t)
	b, _ := NewBackend(s)
	e, _ := s.ForLogin(t.Context(), podLogin("ml-serving", "llm-gateway", "p1"))
	a := e.Aliases[0]
	for name, data := range map[string]map[string]any{
		"id":         {"id": e.ID},
		"name":       {"name": e.Name},
		"alias id":   {"alias_id": a.ID},
		"alias name": {"alias_name": a.Name, "alias_mount_accessor": a.MountAccessor},
	} {
		resp, err := request(t, b, logical.UpdateOperation, "lookup/entity", data)
		if err != nil || resp == nil || resp.Data["id"] != e.ID {
			t.Errorf("lookup by %s: %v %v", name, resp, err)
		}
	}
	// No match: an empty answer.
	resp, err := request(t, b, logical.UpdateOperation, "lookup/entity", map[string]any{"name": "entity_nope"})
	if err != nil || (resp != nil && (len(resp.Data) > 0 || resp.Auth != nil)) {
		t.Errorf("lookup of an unknown name: %v %v, want nothing", resp, err)
	}
	for name, data := range map[string]map[string]any{
		"nothing":          {},
		"two identifiers":  {"id": e.ID, "name": e.Name},
		"alias name alone": {"alias_name": a.Name},
		"accessor alone":   {"alias_mount_accessor": a.MountAccessor},
	} {
		_, err := request(t, b, logical.UpdateOperation, "lookup/entity", data)
		var ce *logical.CodedError
		if !errors.As(err, &ce) || ce.Status != 400 {
			t.Errorf("lookup with %s: %v, want 400", name, err)
		}
	}
}

func TestBackendDeletes(t *testing.T) {
	s, _, _ := newTestStore(t)
	b, _ := NewBackend(s)
	ctx := t.Context()
	e1, _ := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p1"))
	e2, _ := s.ForLogin(ctx, podLogin("ml-serving", "trainer", "p2"))
	e3, _ := s.ForLogin(ctx, podLogin("ml-serving", "notebook", "p3"))
	if _, err := request(t, b, logical.DeleteOperation, "entity/id/"+e1.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := request(t, b, logical.DeleteOperation, "entity/name/"+e2.Name, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := request(t, b, logical.DeleteOperation, "entity-alias/id/"+e3.Aliases[0].ID, nil); err != nil {
		t.Fatal(err)
	}
	if s.Entity(e1.ID) != nil || s.Entity(e2.ID) != nil {
		t.Error("deleted entities remain")
	}
	if left := s.Entity(e3.ID); left == nil || len(left.Aliases) != 0 {
		t.Errorf("entity after its alias was deleted: %+v", left)
	}
	// Deleting what is not there is not an error (as Vault).
	if _, err := request(t, b, logical.DeleteOperation, "entity/name/nope", nil); err != nil {
		t.Error(err)
	}
}
