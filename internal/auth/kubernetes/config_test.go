package kubernetes

import (
	"slices"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

func TestConfigReadHidesReviewerJWT(t *testing.T) {
	a := newAPIServer(t)
	h := newHarness(t)
	if _, err := h.do(logical.ReadOperation, "config", nil); !isStatus(err, 404) {
		t.Fatalf("read before write: %v, want 404", err)
	}
	h.configure(a, map[string]any{"pem_keys": a.publicPEM()})
	d := h.ok(logical.ReadOperation, "config", nil).Data
	if _, ok := d["token_reviewer_jwt"]; ok {
		t.Fatal("config read returns token_reviewer_jwt")
	}
	for k, v := range d {
		if s, ok := v.(string); ok && strings.Contains(s, a.reviewer) {
			t.Fatalf("config read shows the reviewer JWT in %s", k)
		}
	}
	if d["token_reviewer_jwt_set"] != true || d["kubernetes_host"] != a.srv.URL || d["disable_iss_validation"] != true ||
		d["disable_local_ca_jwt"] != false || d["token_validation"] != "tokenreview" || len(d["pem_keys"].([]string)) != 1 {
		t.Fatalf("config read: %v", d)
	}
	// A write replaces the configuration: no reviewer JWT now.
	h.configure(a, map[string]any{"token_reviewer_jwt": nil})
	if d := h.ok(logical.ReadOperation, "config", nil).Data; d["token_reviewer_jwt_set"] != false {
		t.Fatalf("token_reviewer_jwt_set after a write without it: %v", d["token_reviewer_jwt_set"])
	}
}

func isStatus(err error, want int) bool {
	got, _ := logicaltest.Status(err)
	return got == want
}

func TestConfigValidation(t *testing.T) {
	a := newAPIServer(t)
	is := newIssuer(t)
	h := newHarness(t)
	for name, c := range map[string]struct {
		data map[string]any
		msg  string
	}{
		"no host":           {map[string]any{}, "kubernetes_host is required"},
		"bad host":          {map[string]any{"kubernetes_host": "ftp://x"}, "invalid kubernetes_host"},
		"bad CA":            {map[string]any{"kubernetes_host": a.srv.URL, "kubernetes_ca_cert": "nope"}, "kubernetes_ca_cert"},
		"bad pem key":       {map[string]any{"kubernetes_host": a.srv.URL, "pem_keys": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}, "pem_keys[0]"},
		"not PEM":           {map[string]any{"kubernetes_host": a.srv.URL, "pem_keys": "abc"}, "pem_keys[0] is not PEM"},
		"bad mode":          {map[string]any{"kubernetes_host": a.srv.URL, "token_validation": "trust-me"}, "invalid token_validation"},
		"jwks keys in tr":   {map[string]any{"kubernetes_host": a.srv.URL, "jwks_url": is.url}, `need token_validation = "jwks"`},
		"jwks no source":    {map[string]any{"token_validation": "jwks", "issuer": is.url}, "needs oidc_discovery_url or jwks_url"},
		"jwks two sources":  {map[string]any{"token_validation": "jwks", "issuer": is.url, "jwks_url": is.url, "oidc_discovery_url": is.url}, "mutually exclusive"},
		"jwks no issuer":    {map[string]any{"token_validation": "jwks", "oidc_discovery_url": is.url}, "needs issuer"},
		"jwks pem keys":     {map[string]any{"token_validation": "jwks", "oidc_discovery_url": is.url, "issuer": is.url, "pem_keys": a.publicPEM()}, "pem_keys cannot"},
		"jwks reviewer":     {map[string]any{"token_validation": "jwks", "oidc_discovery_url": is.url, "issuer": is.url, "token_reviewer_jwt": "x"}, "token_reviewer_jwt cannot"},
		"jwks untrusted":    {map[string]any{"token_validation": "jwks", "oidc_discovery_url": is.url, "issuer": is.url}, "error checking the key source"},
		"jwks wrong issuer": {map[string]any{"token_validation": "jwks", "oidc_discovery_url": is.url, "issuer": "https://x", "jwks_ca_pem": is.caPEM()}, "names issuer"},
		"annotations":       {map[string]any{"kubernetes_host": a.srv.URL, "use_annotations_as_alias_metadata": true}, "not supported"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.do(logical.UpdateOperation, "config", c.data)
			got, msg := logicaltest.Status(err)
			if got != 400 || !strings.Contains(msg, c.msg) {
				t.Fatalf("got %d %q, want 400 containing %q", got, msg, c.msg)
			}
			if strings.Contains(msg, a.reviewer) {
				t.Fatal("the error quotes the reviewer JWT")
			}
		})
	}
	// A bare host:port means https.
	h.ok(logical.UpdateOperation, "config", map[string]any{"kubernetes_host": strings.TrimPrefix(a.srv.URL, "https://")})
}

func TestRoles(t *testing.T) {
	h := newHarness(t)
	if _, err := h.do(logical.ListOperation, "role/", nil); !isStatus(err, 404) {
		t.Fatalf("list without roles: %v, want 404", err)
	}
	h.role("LLM", map[string]any{
		"bound_service_account_names":      "llm-gateway,llm-*",
		"bound_service_account_namespaces": []any{"ml-serving"},
		"audience":                         "vigil",
		"policies":                         "llm",
		"token_ttl":                        600,
	})
	d := h.ok(logical.ReadOperation, "role/llm", nil).Data
	if !slices.Equal(d["bound_service_account_names"].([]string), []string{"llm-gateway", "llm-*"}) ||
		!slices.Equal(d["bound_service_account_namespaces"].([]string), []string{"ml-serving"}) ||
		d["audience"] != "vigil" || d["alias_name_source"] != "serviceaccount_uid" || d["token_ttl"] != int64(600) ||
		!slices.Equal(d["token_policies"].([]string), []string{"llm"}) || !slices.Equal(d["policies"].([]string), []string{"llm"}) {
		t.Fatalf("role read: %v", d)
	}
	// An update changes only what it names.
	h.role("llm", map[string]any{"alias_name_source": "serviceaccount_name"})
	d = h.ok(logical.ReadOperation, "role/llm", nil).Data
	if d["alias_name_source"] != "serviceaccount_name" || d["audience"] != "vigil" {
		t.Fatalf("role read after update: %v", d)
	}
	if keys := h.ok(logical.ListOperation, "role/", nil).Data["keys"].([]string); !slices.Equal(keys, []string{"llm"}) {
		t.Fatalf("list: %v", keys)
	}
	for name, c := range map[string]struct {
		data map[string]any
		msg  string
	}{
		"no names":       {map[string]any{"bound_service_account_namespaces": "a"}, `"bound_service_account_names" can not be empty`},
		"no namespaces":  {map[string]any{"bound_service_account_names": "a"}, `"bound_service_account_namespaces" can not be empty`},
		"both star":      {map[string]any{"bound_service_account_names": "*", "bound_service_account_namespaces": "*"}, `can not both be "*"`},
		"star mixed":     {map[string]any{"bound_service_account_names": "*,a", "bound_service_account_namespaces": "b"}, `can not mix "*"`},
		"alias source":   {map[string]any{"bound_service_account_names": "a", "bound_service_account_namespaces": "b", "alias_name_source": "pod"}, "invalid alias_name_source"},
		"root policy":    {map[string]any{"bound_service_account_names": "a", "bound_service_account_namespaces": "b", "token_policies": "root"}, "root"},
		"selector":       {map[string]any{"bound_service_account_names": "a", "bound_service_account_namespaces": "b", "bound_service_account_namespace_selector": `{"matchLabels":{"a":"b"}}`}, "not supported"},
		"bad token type": {map[string]any{"bound_service_account_names": "a", "bound_service_account_namespaces": "b", "token_type": "x"}, "token_type"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.do(logical.UpdateOperation, "role/new", c.data)
			got, msg := logicaltest.Status(err)
			if got != 400 || !strings.Contains(msg, c.msg) {
				t.Fatalf("got %d %q, want 400 containing %q", got, msg, c.msg)
			}
		})
	}
	if _, err := h.do(logical.ReadOperation, "role/new", nil); !isStatus(err, 404) {
		t.Fatalf("a refused role was stored: %v", err)
	}
	h.ok(logical.DeleteOperation, "role/llm", nil)
	if _, err := h.do(logical.ReadOperation, "role/llm", nil); !isStatus(err, 404) {
		t.Fatalf("read after delete: %v, want 404", err)
	}
}
