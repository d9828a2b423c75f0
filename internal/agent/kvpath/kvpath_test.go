package kvpath

import (
	"context"
	"testing"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

var (
	secretV2 = &api.PathMount{Path: "secret/", Type: "kv", Options: map[string]string{"version": "2"}}
	teamV2   = &api.PathMount{Path: "team/kv/", Type: "kv", Options: map[string]string{"version": "2"}}
	kvV1     = &api.PathMount{Path: "kv/", Type: "kv", Options: map[string]string{"version": "1"}}
	database = &api.PathMount{Path: "database/", Type: "database", Options: map[string]string{}}
)

// Data and Metadata put their part in only when that part is missing, as
// the Vault CLI does; Name takes either off.
func TestPaths(t *testing.T) {
	for _, tc := range []struct {
		m                    *api.PathMount
		p                    string
		data, metadata, name string
	}{
		{secretV2, "secret/app", "secret/data/app", "secret/metadata/app", "secret/app"},
		{secretV2, "secret/data/app", "secret/data/app", "secret/metadata/data/app", "secret/app"},
		{secretV2, "secret/metadata/app", "secret/data/metadata/app", "secret/metadata/app", "secret/app"},
		{secretV2, "/secret/app/", "secret/data/app", "secret/metadata/app", "secret/app"},
		{secretV2, "secret", "secret/data", "secret/metadata", "secret"},
		{secretV2, "secret/metadata", "secret/data/metadata", "secret/metadata", "secret"},
		{secretV2, "secret/database/x", "secret/data/database/x", "secret/metadata/database/x", "secret/database/x"},
		{secretV2, "other/x", "other/x", "other/x", "other/x"},
		{teamV2, "team/kv/a/b", "team/kv/data/a/b", "team/kv/metadata/a/b", "team/kv/a/b"},
		{teamV2, "team/kv/data/a/b", "team/kv/data/a/b", "team/kv/metadata/data/a/b", "team/kv/a/b"},
		{kvV1, "kv/app", "kv/app", "kv/app", "kv/app"},
		{kvV1, "kv/data/app", "kv/data/app", "kv/data/app", "kv/data/app"},
		{database, "database/static-creds/app", "database/static-creds/app", "database/static-creds/app", "database/static-creds/app"},
		{nil, "secret/app", "secret/app", "secret/app", "secret/app"},
	} {
		if got := Data(tc.m, tc.p); got != tc.data {
			t.Errorf("Data(%v, %q) = %q, want %q", tc.m, tc.p, got, tc.data)
		}
		if got := Metadata(tc.m, tc.p); got != tc.metadata {
			t.Errorf("Metadata(%v, %q) = %q, want %q", tc.m, tc.p, got, tc.metadata)
		}
		if got := Name(tc.m, tc.p); got != tc.name {
			t.Errorf("Name(%v, %q) = %q, want %q", tc.m, tc.p, got, tc.name)
		}
	}
}

// The resolver asks a real server once per path and remembers its answer.
func TestResolver(t *testing.T) {
	srv := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	c, err := api.NewClient(api.Config{Address: srv.URL, Token: srv.RootToken})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Sys().Mount(ctx, "kv", api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	r := NewResolver(c)
	if _, ok := r.Known("secret/app"); ok {
		t.Fatal("known before asking")
	}
	m, err := r.Mount(ctx, "/secret/app")
	if err != nil || !m.KVv2() || m.Path != "secret/" {
		t.Fatalf("Mount(secret/app) = %+v, %v", m, err)
	}
	if k, ok := r.Known("secret/app"); !ok || k != m {
		t.Fatalf("Known(secret/app) = %+v, %v", k, ok)
	}
	if got := Data(m, "secret/app"); got != "secret/data/app" {
		t.Errorf("Data = %q", got)
	}
	m, err = r.Mount(ctx, "kv/app")
	if err != nil || m.KVv2() || m.Path != "kv/" {
		t.Fatalf("Mount(kv/app) = %+v, %v", m, err)
	}

	// A token that may not ask is an error, not remembered.
	none := c.WithToken("not-a-token")
	r = NewResolver(none)
	if _, err := r.Mount(ctx, "secret/app"); err == nil {
		t.Fatal("an invalid token found a mount")
	}
	if _, ok := r.Known("secret/app"); ok {
		t.Fatal("a failure was remembered")
	}
}
