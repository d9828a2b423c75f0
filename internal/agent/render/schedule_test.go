package render

import (
	"testing"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/kvpath"
	"github.com/vigil-secrets/vigil/internal/agent/template"
)

// A hinted data path matches the secrets it names however templates
// spell them; never a lease or a write, which a reread would issue anew.
func TestMatches(t *testing.T) {
	v2 := &api.PathMount{Path: "secret/", Type: "kv", Options: map[string]string{"version": "2"}}
	v1 := &api.PathMount{Path: "kv/", Type: "kv", Options: map[string]string{"version": "1"}}
	db := &api.PathMount{Path: "database/", Type: "database"}
	dep := func(m *api.PathMount, kind template.Kind, path, lease string) *depState {
		d := template.Dependency{Kind: kind, Path: path, LeaseID: lease}
		return &depState{dep: d, mount: m, name: kvpath.Name(m, secretPath(d))}
	}
	for _, tc := range []struct {
		st   *depState
		hint string
		want bool
	}{
		{dep(v2, template.KindRead, "secret/app", ""), "secret/data/app", true},
		{dep(v2, template.KindRead, "secret/data/app", ""), "secret/data/app", true},
		{dep(v2, template.KindRead, "secret/app?version=2", ""), "secret/data/app", true},
		{dep(v2, template.KindRead, "secret/app", ""), "secret/metadata/app", true},
		{dep(v2, template.KindRead, "secret/app", ""), "secret/data/app2", false},
		{dep(v2, template.KindRead, "secret/app", ""), "secret/data/app/x", false},
		{dep(v2, template.KindList, "secret/ml", ""), "secret/data/ml/db", true},
		{dep(v2, template.KindList, "secret/metadata/ml", ""), "secret/data/ml/db", true},
		{dep(v2, template.KindList, "secret/ml", ""), "secret/data/mlx/db", false},
		{dep(v2, template.KindList, "secret", ""), "secret/data/x", true},
		{dep(v1, template.KindRead, "kv/app", ""), "kv/app", true},
		{dep(v1, template.KindRead, "kv/app", ""), "kv/data/app", false},
		{dep(nil, template.KindRead, "other/app", ""), "other/app", true},
		{dep(db, template.KindRead, "database/static-creds/svc", ""), "database/static-creds/svc", true},
		{dep(db, template.KindRead, "database/creds/reader", "database/creds/reader/abc"), "database/creds/reader", false},
		{dep(v2, template.KindWrite, "secret/app", ""), "secret/data/app", false},
		{dep(nil, template.KindFile, "/etc/x", ""), "/etc/x", false},
	} {
		if got := tc.st.matches(tc.hint); got != tc.want {
			t.Errorf("%s %q (mount %v) matches %q: %v, want %v", tc.st.dep.Kind, tc.st.dep.Path, tc.st.mount, tc.hint, got, tc.want)
		}
	}
}
