//go:build !e2e

package acceptance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestOneTemplatedPolicyForPodsAndJobs is issue 5's "done when", with the
// official client: pods (Kubernetes service-account login) and CI jobs
// (JWT login) of several workloads share one role per method and one
// templated policy, and each reads only its own secrets; forged and
// foreign tokens are refused; the audit log names the workload and its
// entity.
func TestOneTemplatedPolicyForPodsAndJobs(t *testing.T) {
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	reviewer := "reviewer-" + rand.Text()
	api, _ := fakeKubeAPI(t, saKey, reviewer)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw}))
	podToken := func(ns, sa string) string {
		return saToken(t, saKey, "https://kubernetes.default.svc.cluster.local", "vigil", ns, sa, sa+"-6c9f7-x2x9q", 10*time.Minute)
	}
	ci := newOIDCIssuer(t)
	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	logPath := filepath.Join(t.TempDir(), "audit.log")
	must(root.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}))

	must(root.Sys().EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}))
	must(root.Sys().EnableAuthWithOptions("jwt", &vault.EnableAuthOptions{Type: "jwt"}))
	_, err = root.Logical().Write("auth/kubernetes/config", map[string]any{
		"kubernetes_host": api.URL, "kubernetes_ca_cert": caPEM, "token_reviewer_jwt": reviewer,
	})
	must(err)
	_, err = root.Logical().Write("auth/jwt/config", map[string]any{"oidc_discovery_url": ci.URL, "bound_issuer": ci.URL})
	must(err)
	// The policy as the README writes it, with the CLI: one policy for
	// every workload, a pod reading under its namespace and service
	// account, a CI job under its repository.
	admin := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}, nil)
	admin.mustRun(block(t, readmeSection(t, "### 9. One policy for every workload"), "sh", 0, "the workload policy"))
	k8s, jwt := admin.env["K8S"], admin.env["JWT"]
	if !strings.HasPrefix(k8s, "auth_kubernetes_") || !strings.HasPrefix(jwt, "auth_jwt_") {
		t.Fatalf("accessors %q %q", k8s, jwt)
	}
	pol, err := root.Sys().GetPolicy("workload")
	if err != nil || !strings.Contains(pol, "{{identity.entity.aliases."+k8s+".metadata.service_account_namespace}}") {
		t.Fatalf("the workload policy as written: %v\n%s", err, pol)
	}
	_, err = root.Logical().Write("auth/kubernetes/role/pods", map[string]any{
		"bound_service_account_names":      []string{"llm-gateway", "trainer"},
		"bound_service_account_namespaces": []string{"ml-serving", "research"},
		"audience":                         "vigil", "token_policies": "workload", "token_ttl": "15m",
	})
	must(err)
	_, err = root.Logical().Write("auth/jwt/role/ci", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"vigil"},
		"bound_claims":   map[string]any{"repository": []string{"acme/train", "acme/eval"}, "ref": "refs/heads/main"},
		"claim_mappings": map[string]any{"repository": "repository", "ref": "ref", "run_id": "run_id", "actor": "actor"},
		"token_policies": []string{"workload"}, "token_ttl": "10m",
	})
	must(err)

	secrets := map[string]string{
		"k8s/ml-serving/llm-gateway/openai": "sk-gateway",
		"k8s/research/trainer/hf":           "hf-trainer",
		"ci/acme/train/openai":              "sk-train",
		"ci/acme/eval/openai":               "sk-eval",
	}
	for path, v := range secrets {
		_, err := root.KVv2("secret").Put(ctx, path, map[string]any{"api_key": v})
		must(err)
	}

	anon, _ := root.Clone()
	anon.ClearToken()
	login := func(path string, data map[string]any) *vault.Client {
		t.Helper()
		resp, err := anon.Logical().Write(path, data)
		if err != nil {
			t.Fatalf("login at %s: %v", path, err)
		}
		c, _ := root.Clone()
		c.SetToken(resp.Auth.ClientToken)
		return c
	}
	jobToken := func(repo, ref string) string {
		return ci.sign(map[string]any{
			"aud": "vigil", "sub": "repo:" + repo + ":ref:" + ref, "repository": repo, "ref": ref,
			"run_id": "4242", "actor": "octocat",
		})
	}
	workloads := map[string]struct {
		c    *vault.Client
		owns string
	}{
		"pod ml-serving/llm-gateway": {login("auth/kubernetes/login", map[string]any{"role": "pods", "jwt": podToken("ml-serving", "llm-gateway")}), "k8s/ml-serving/llm-gateway/openai"},
		"pod research/trainer":       {login("auth/kubernetes/login", map[string]any{"role": "pods", "jwt": podToken("research", "trainer")}), "k8s/research/trainer/hf"},
		"job acme/train":             {login("auth/jwt/login", map[string]any{"role": "ci", "jwt": jobToken("acme/train", "refs/heads/main")}), "ci/acme/train/openai"},
		"job acme/eval":              {login("auth/jwt/login", map[string]any{"role": "ci", "jwt": jobToken("acme/eval", "refs/heads/main")}), "ci/acme/eval/openai"},
	}
	entities := map[string]string{}
	for name, w := range workloads {
		for path, v := range secrets {
			sec, err := w.c.KVv2("secret").Get(ctx, path)
			var re *vault.ResponseError
			switch {
			case path == w.owns && (err != nil || sec.Data["api_key"] != v):
				t.Errorf("%s reading its own %s: %v", name, path, err)
			case path != w.owns && (!errors.As(err, &re) || re.StatusCode != 403):
				t.Errorf("%s reading %s: %v, want 403", name, path, err)
			}
		}
		self, err := w.c.Auth().Token().LookupSelf()
		must(err)
		id, _ := self.Data["entity_id"].(string)
		if id == "" {
			t.Fatalf("%s: token has no entity", name)
		}
		entities[name] = id
		// Its own entity is readable with the default policy.
		ent, err := w.c.Logical().Read("identity/entity/id/" + id)
		if err != nil || ent == nil || ent.Data["id"] != id {
			t.Errorf("%s reading its entity: %v %v", name, ent, err)
		}
	}
	if len(map[string]bool{entities["pod ml-serving/llm-gateway"]: true, entities["pod research/trainer"]: true,
		entities["job acme/train"]: true, entities["job acme/eval"]: true}) != 4 {
		t.Errorf("workloads share entities: %v", entities)
	}

	// The same pod's next login is the same entity; its alias records the
	// account, not the pod.
	again := login("auth/kubernetes/login", map[string]any{"role": "pods", "jwt": podToken("ml-serving", "llm-gateway")})
	self, err := again.Auth().Token().LookupSelf()
	must(err)
	if self.Data["entity_id"] != entities["pod ml-serving/llm-gateway"] {
		t.Errorf("second login of the pod: entity %v, want %s", self.Data["entity_id"], entities["pod ml-serving/llm-gateway"])
	}
	ent, err := root.Logical().Read("identity/entity/id/" + entities["pod ml-serving/llm-gateway"])
	must(err)
	aliases, _ := ent.Data["aliases"].([]any)
	if len(aliases) != 1 {
		t.Fatalf("pod entity aliases: %v", ent.Data["aliases"])
	}
	al := aliases[0].(map[string]any)
	meta, _ := al["metadata"].(map[string]any)
	if al["mount_accessor"] != k8s || al["mount_type"] != "kubernetes" || al["mount_path"] != "auth/kubernetes/" ||
		al["name"] != "uid-ml-serving-llm-gateway" || meta["service_account_namespace"] != "ml-serving" || meta["pod_name"] != nil {
		t.Errorf("pod alias: %v", al)
	}
	lookup, err := root.Logical().Write("identity/lookup/entity", map[string]any{"alias_name": "repo:acme/train:ref:refs/heads/main", "alias_mount_accessor": jwt})
	if err != nil || lookup == nil || lookup.Data["id"] != entities["job acme/train"] {
		t.Errorf("lookup of the train job's entity: %v %v", lookup, err)
	}

	// Another workload's entity is not readable; foreign and forged
	// identities get no token.
	var re *vault.ResponseError
	if _, err := workloads["job acme/eval"].c.Logical().Read("identity/entity/id/" + entities["job acme/train"]); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Errorf("reading another workload's entity: %v, want 403", err)
	}
	for name, c := range map[string]struct {
		path   string
		data   map[string]any
		status int
	}{
		"pod of another namespace": {"auth/kubernetes/login", map[string]any{"role": "pods", "jwt": podToken("default", "llm-gateway")}, 403},
		"job on another branch":    {"auth/jwt/login", map[string]any{"role": "ci", "jwt": jobToken("acme/train", "refs/heads/dev")}, 400},
		"job of another repo":      {"auth/jwt/login", map[string]any{"role": "ci", "jwt": jobToken("evil/train", "refs/heads/main")}, 400},
		"pod token as a CI job":    {"auth/jwt/login", map[string]any{"role": "ci", "jwt": podToken("ml-serving", "llm-gateway")}, 400},
	} {
		if _, err := anon.Logical().Write(c.path, c.data); !errors.As(err, &re) || re.StatusCode != c.status {
			t.Errorf("%s: %v, want %d", name, err, c.status)
		}
	}

	// The audit entries of each read name the workload and its entity.
	raw, err := os.ReadFile(logPath)
	must(err)
	named := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e struct {
			Type string
			Auth struct {
				EntityID string `json:"entity_id"`
				Metadata map[string]string
			}
			Request struct{ Path string }
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Type != "response" {
			continue
		}
		m := e.Auth.Metadata
		switch {
		case e.Request.Path == "secret/data/k8s/ml-serving/llm-gateway/openai" && e.Auth.EntityID == entities["pod ml-serving/llm-gateway"] &&
			m["service_account_namespace"] == "ml-serving" && m["service_account_name"] == "llm-gateway" && m["pod_name"] == "llm-gateway-6c9f7-x2x9q":
			named["pod"] = true
		case e.Request.Path == "secret/data/ci/acme/train/openai" && e.Auth.EntityID == entities["job acme/train"] &&
			m["repository"] == "acme/train" && m["ref"] == "refs/heads/main" && m["run_id"] == "4242" && m["actor"] == "octocat":
			named["job"] = true
		}
	}
	if !named["pod"] || !named["job"] {
		t.Errorf("audit entries naming the workload: %v, want pod and job", named)
	}
}
