package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestKVPutGetV2(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	r := mustRun(t, f, 0, "kv", "put", "secret/app", "user=admin", "password=s3cret")
	if !strings.Contains(r.stdout, "== Secret Path ==\nsecret/data/app\n") || !strings.Contains(r.stdout, "version") {
		t.Errorf("put output:\n%s", r.stdout)
	}
	put := f.last(t, "secret/data/app")
	if put.Method != http.MethodPut {
		t.Errorf("put sent as %s", put.Method)
	}
	data := put.Body["data"].(map[string]any)
	if data["user"] != "admin" || data["password"] != "s3cret" {
		t.Errorf("put body = %v", put.Body)
	}
	if pre := f.seen()[0]; pre.Path != "sys/internal/ui/mounts/secret/app" || pre.Method != http.MethodGet {
		t.Errorf("first request = %+v, want the preflight", pre)
	}

	r = mustRun(t, f, 0, "kv", "get", "secret/app")
	for _, want := range []string{
		"== Secret Path ==\nsecret/data/app\n",
		"======= Metadata =======\nKey                Value\n---                -----\n",
		"custom_metadata    <nil>\n",
		"deletion_time      n/a\n",
		"====== Data ======\nKey         Value\n---         -----\npassword    s3cret\nuser        admin\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "s3cret") {
		t.Errorf("secret value on stderr: %s", r.stderr)
	}

	r = mustRun(t, f, 0, "kv", "get", "-field=password", "secret/app")
	if r.stdout != "s3cret" {
		t.Errorf("-field output = %q, want the raw value without newline", r.stdout)
	}
	r = mustRun(t, f, 0, "kv", "get", "-mount=secret", "-field=user", "app")
	if r.stdout != "admin" {
		t.Errorf("-mount -field output = %q", r.stdout)
	}
	if r := mustRun(t, f, 1, "kv", "get", "-field=nope", "secret/app"); !strings.Contains(r.stderr, `Field "nope" not present`) {
		t.Errorf("missing field stderr = %q", r.stderr)
	}

	r = mustRun(t, f, 0, "kv", "get", "-format=json", "secret/app")
	var env struct {
		RequestID string `json:"request_id"`
		Data      struct {
			Data     map[string]string `json:"data"`
			Metadata map[string]any    `json:"metadata"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil {
		t.Fatalf("json output: %v\n%s", err, r.stdout)
	}
	if env.RequestID != "req-1" || env.Data.Data["user"] != "admin" || env.Data.Metadata["version"] != float64(1) {
		t.Errorf("json output = %+v", env)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(r.stdout), &raw)
	for _, k := range []string{"request_id", "lease_id", "lease_duration", "renewable", "data", "warnings"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("json output lacks %s", k)
		}
	}

	r = run(t, f, runOpts{env: map[string]string{"VIGIL_FORMAT": "yaml"}}, "kv", "get", "secret/app")
	var y map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &y); err != nil || r.code != 0 {
		t.Fatalf("yaml output (%d): %v\n%s", r.code, err, r.stdout)
	}
	meta := y["data"].(map[string]any)["metadata"].(map[string]any)
	if meta["version"] != 1 {
		t.Errorf("yaml version = %#v, want the number 1", meta["version"])
	}
}

func TestKVGetMissingAndVersions(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	r := mustRun(t, f, 2, "kv", "get", "secret/none")
	if strings.TrimSpace(r.stderr) != "No value found at secret/data/none" || r.stdout != "" {
		t.Errorf("missing key: stdout %q stderr %q", r.stdout, r.stderr)
	}
	mustRun(t, f, 0, "kv", "put", "secret/app", "a=1")
	mustRun(t, f, 0, "kv", "put", "-cas=1", "secret/app", "a=2")
	if b := f.last(t, "secret/data/app").Body; b["options"].(map[string]any)["cas"] != json.Number("1") {
		t.Errorf("cas body = %v", b)
	}
	r = mustRun(t, f, 1, "kv", "put", "-cas=0", "secret/app", "a=3")
	if !strings.Contains(r.stderr, "check-and-set parameter did not match") || !strings.Contains(r.stderr, "Code: 400") {
		t.Errorf("cas mismatch stderr:\n%s", r.stderr)
	}
	if r := mustRun(t, f, 0, "kv", "get", "-version=1", "-field=a", "secret/app"); r.stdout != "1" {
		t.Errorf("version 1 = %q", r.stdout)
	}
	if q := f.last(t, "secret/data/app").Query; q != "version=1" {
		t.Errorf("query = %q", q)
	}

	mustRun(t, f, 0, "kv", "delete", "secret/app")
	if d := f.last(t, "secret/data/app"); d.Method != http.MethodDelete {
		t.Errorf("delete sent as %s", d.Method)
	}
	r = mustRun(t, f, 2, "kv", "get", "secret/app")
	if !strings.Contains(r.stdout, "deletion_time      2024-05-02T10:00:00Z") || !strings.Contains(r.stderr, "deleted or destroyed") {
		t.Errorf("deleted version: stdout\n%s\nstderr\n%s", r.stdout, r.stderr)
	}
	mustRun(t, f, 0, "kv", "undelete", "-versions=2", "secret/app")
	if b := f.last(t, "secret/undelete/app").Body; len(b["versions"].([]any)) != 1 {
		t.Errorf("undelete body = %v", b)
	}
	if r := mustRun(t, f, 0, "kv", "get", "-field=a", "secret/app"); r.stdout != "2" {
		t.Errorf("after undelete = %q", r.stdout)
	}
	mustRun(t, f, 0, "kv", "delete", "-versions=1, 2", "secret/app")
	if b := f.last(t, "secret/delete/app").Body; len(b["versions"].([]any)) != 2 {
		t.Errorf("delete -versions body = %v", b)
	}
	mustRun(t, f, 0, "kv", "destroy", "-versions=1", "secret/app")
	if r := mustRun(t, f, 2, "kv", "undelete", "secret/app"); !strings.Contains(r.stderr, "-versions") {
		t.Errorf("undelete without versions: %q", r.stderr)
	}
	if r := mustRun(t, f, 2, "kv", "delete", "-versions=x", "secret/app"); !strings.Contains(r.stderr, "invalid version") {
		t.Errorf("bad versions: %q", r.stderr)
	}
}

func TestKVV1PathRewriting(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	r := mustRun(t, f, 0, "kv", "put", "kv1/app/db", "pw=x")
	if strings.TrimSpace(r.stdout) != "Success! Data written to: kv1/app/db" {
		t.Errorf("v1 put output %q", r.stdout)
	}
	put := f.last(t, "kv1/app/db")
	if put.Method != http.MethodPut || put.Body["pw"] != "x" || put.Body["data"] != nil {
		t.Errorf("v1 put = %+v", put)
	}
	r = mustRun(t, f, 0, "kv", "get", "kv1/app/db")
	if !strings.Contains(r.stdout, "refresh_interval    768h\npw                  x\n") {
		t.Errorf("v1 get output:\n%s", r.stdout)
	}
	if r := mustRun(t, f, 0, "kv", "get", "-mount=kv1", "-field=pw", "app/db"); r.stdout != "x" {
		t.Errorf("v1 -mount get = %q", r.stdout)
	}
	r = mustRun(t, f, 0, "kv", "list", "kv1/app")
	if r.stdout != "Keys\n----\ndb\n" {
		t.Errorf("v1 list output %q", r.stdout)
	}
	if l := f.last(t, "kv1/app/"); l.Query != "list=true" || l.Method != http.MethodGet {
		t.Errorf("v1 list request %+v", l)
	}
	mustRun(t, f, 2, "kv", "patch", "kv1/app/db", "pw=y")
	mustRun(t, f, 2, "kv", "metadata", "get", "kv1/app/db")
	mustRun(t, f, 0, "kv", "delete", "kv1/app/db")
	if d := f.last(t, "kv1/app/db"); d.Method != http.MethodDelete {
		t.Errorf("v1 delete = %+v", d)
	}
	mustRun(t, f, 2, "kv", "get", "kv1/app/db")
}

func TestKVV2PathRewriting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		path string
	}{
		{"get", []string{"kv", "get", "secret/a/b"}, "secret/data/a/b"},
		{"get mount", []string{"kv", "get", "-mount=secret", "a/b"}, "secret/data/a/b"},
		{"list", []string{"kv", "list", "secret/a"}, "secret/metadata/a/"},
		{"list root", []string{"kv", "list", "secret"}, "secret/metadata/"},
		{"list mount", []string{"kv", "list", "-mount=secret", "a"}, "secret/metadata/a/"},
		{"metadata get", []string{"kv", "metadata", "get", "secret/a/b"}, "secret/metadata/a/b"},
		{"metadata delete", []string{"kv", "metadata", "delete", "secret/a/b"}, "secret/metadata/a/b"},
		{"destroy", []string{"kv", "destroy", "-versions=1", "secret/a/b"}, "secret/destroy/a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t)
			run(t, f, runOpts{}, tt.args...)
			reqs := f.seen()
			if got := reqs[len(reqs)-1].Path; got != tt.path {
				t.Errorf("path = %q, want %q", got, tt.path)
			}
		})
	}
}

func TestKVListV2(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	mustRun(t, f, 0, "kv", "put", "secret/app/db", "a=1")
	mustRun(t, f, 0, "kv", "put", "secret/app/api/key", "a=1")
	r := mustRun(t, f, 0, "kv", "list", "secret/app")
	if r.stdout != "Keys\n----\napi/\ndb\n" {
		t.Errorf("list = %q", r.stdout)
	}
	r = mustRun(t, f, 0, "kv", "list", "-format=json", "secret/app")
	var keys []string
	if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil || len(keys) != 2 {
		t.Errorf("json list = %q (%v)", r.stdout, err)
	}
	r = mustRun(t, f, 2, "kv", "list", "secret/none")
	if !strings.Contains(r.stderr, "No value found at secret/metadata/none/") {
		t.Errorf("empty list stderr %q", r.stderr)
	}
}

func TestKVPatch(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	mustRun(t, f, 0, "kv", "put", "secret/app", "a=1", "b=2")
	mustRun(t, f, 0, "kv", "patch", "secret/app", "b=3")
	p := f.last(t, "secret/data/app")
	if p.Method != http.MethodPatch || p.ContentType != "application/merge-patch+json" {
		t.Errorf("patch sent as %s %s", p.Method, p.ContentType)
	}
	if r := mustRun(t, f, 0, "kv", "get", "-format=json", "secret/app"); !strings.Contains(r.stdout, `"a": "1"`) || !strings.Contains(r.stdout, `"b": "3"`) {
		t.Errorf("after patch:\n%s", r.stdout)
	}

	mustRun(t, f, 0, "kv", "patch", "-method=rw", "secret/app", "c=4")
	w := f.last(t, "secret/data/app")
	if w.Method != http.MethodPut {
		t.Fatalf("rw sent as %s", w.Method)
	}
	if cas := w.Body["options"].(map[string]any)["cas"]; cas != json.Number("2") {
		t.Errorf("rw cas = %v, want the version read (2)", cas)
	}
	if d := w.Body["data"].(map[string]any); d["a"] != "1" || d["b"] != "3" || d["c"] != "4" {
		t.Errorf("rw data = %v", d)
	}

	f.set(func() { f.noPatch = true })
	mustRun(t, f, 0, "kv", "patch", "secret/app", "d=5")
	if w := f.last(t, "secret/data/app"); w.Method != http.MethodPut {
		t.Errorf("no fallback to rw after 405: %s", w.Method)
	}
	mustRun(t, f, 1, "kv", "patch", "-method=patch", "secret/app", "d=6")
	mustRun(t, f, 2, "kv", "patch", "secret/none", "d=6")
	mustRun(t, f, 2, "kv", "patch", "-method=bogus", "secret/app", "d=6")
	mustRun(t, f, 2, "kv", "patch", "secret/app")
}

func TestKVRollback(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	mustRun(t, f, 0, "kv", "put", "secret/app", "a=old")
	mustRun(t, f, 0, "kv", "put", "secret/app", "a=new")
	mustRun(t, f, 0, "kv", "rollback", "-version=1", "secret/app")
	w := f.last(t, "secret/data/app")
	if w.Method != http.MethodPut || w.Body["options"].(map[string]any)["cas"] != json.Number("2") || w.Body["data"].(map[string]any)["a"] != "old" {
		t.Errorf("rollback write = %+v", w)
	}
	if r := mustRun(t, f, 0, "kv", "get", "-field=a", "secret/app"); r.stdout != "old" {
		t.Errorf("after rollback = %q", r.stdout)
	}
	mustRun(t, f, 2, "kv", "rollback", "secret/app")
	mustRun(t, f, 2, "kv", "rollback", "-version=9", "secret/app")
}

func TestKVMetadata(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	mustRun(t, f, 0, "kv", "metadata", "put", "-max-versions=5", "-cas-required=true", "-delete-version-after=90m",
		"-custom-metadata=owner=ops", "-custom-metadata=team=core", "secret/app")
	b := f.last(t, "secret/metadata/app").Body
	if b["max_versions"] != json.Number("5") || b["cas_required"] != true || b["delete_version_after"] != "1h30m0s" {
		t.Errorf("metadata put body = %v", b)
	}
	if cm := b["custom_metadata"].(map[string]any); cm["owner"] != "ops" || cm["team"] != "core" {
		t.Errorf("custom metadata = %v", cm)
	}

	mustRun(t, f, 0, "kv", "metadata", "put", "-max-versions=3", "secret/app")
	if b := f.last(t, "secret/metadata/app").Body; len(b) != 1 {
		t.Errorf("unset flags were sent: %v", b)
	}

	mustRun(t, f, 0, "kv", "metadata", "patch", "-remove-custom-metadata=team", "-custom-metadata=env=prod", "secret/app")
	p := f.last(t, "secret/metadata/app")
	if p.Method != http.MethodPatch || p.ContentType != "application/merge-patch+json" {
		t.Errorf("metadata patch sent as %s %s", p.Method, p.ContentType)
	}
	if cm := p.Body["custom_metadata"].(map[string]any); cm["team"] != nil || cm["env"] != "prod" {
		t.Errorf("metadata patch body = %v", p.Body)
	}

	mustRun(t, f, 0, "kv", "put", "-cas=0", "secret/app", "a=1")
	r := mustRun(t, f, 0, "kv", "metadata", "get", "secret/app")
	for _, want := range []string{"=== Metadata Path ===\nsecret/metadata/app\n", "max_versions            3\n", "====== Version 1 ======\n", "cas_required            true\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("metadata get lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := mustRun(t, f, 0, "kv", "metadata", "get", "-field=current_version", "secret/app"); r.stdout != "1" {
		t.Errorf("metadata -field = %q", r.stdout)
	}
	mustRun(t, f, 0, "kv", "metadata", "delete", "secret/app")
	mustRun(t, f, 2, "kv", "metadata", "get", "secret/app")
	mustRun(t, f, 2, "kv", "metadata", "put", "-delete-version-after=soon", "secret/app")
}

func TestKVPutDataSources(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(pemFile, []byte("-----BEGIN X-----\nabc\n-----END X-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, f, runOpts{stdin: "from-stdin\n"}, "kv", "put", "secret/files", "cert=@"+pemFile, "note=-", `at=\@literal`, "tag=a", "tag=b")
	if r.code != 0 {
		t.Fatalf("put: %d %s", r.code, r.stderr)
	}
	d := f.last(t, "secret/data/files").Body["data"].(map[string]any)
	if d["cert"] != "-----BEGIN X-----\nabc\n-----END X-----\n" || d["note"] != "from-stdin\n" || d["at"] != "@literal" {
		t.Errorf("data = %#v", d)
	}
	if tags, ok := d["tag"].([]any); !ok || len(tags) != 2 {
		t.Errorf("repeated key = %#v", d["tag"])
	}

	r = run(t, f, runOpts{stdin: `{"user":"u","n":5,"nested":{"x":true}}`}, "kv", "put", "secret/json", "-")
	if r.code != 0 {
		t.Fatalf("put -: %d %s", r.code, r.stderr)
	}
	d = f.last(t, "secret/data/json").Body["data"].(map[string]any)
	if d["user"] != "u" || d["n"] != json.Number("5") || d["nested"].(map[string]any)["x"] != true {
		t.Errorf("stdin JSON data = %#v", d)
	}

	r = run(t, f, runOpts{stdin: `[1,2]`}, "kv", "put", "secret/json", "-")
	if r.code != 2 || !strings.Contains(r.stderr, "JSON object") {
		t.Errorf("non-object stdin: %d %q", r.code, r.stderr)
	}
	r = run(t, f, runOpts{}, "kv", "put", "secret/bad", "novalue")
	if r.code != 2 || !strings.Contains(r.stderr, `"novalue"`) {
		t.Errorf("bad pair: %d %q", r.code, r.stderr)
	}
	r = run(t, f, runOpts{}, "kv", "put", "secret/bad", "k=@"+filepath.Join(dir, "missing"))
	if r.code != 1 || !strings.Contains(r.stderr, "missing") {
		t.Errorf("missing file: %d %q", r.code, r.stderr)
	}
	if r := run(t, f, runOpts{}, "kv", "put", "secret/bad"); r.code != 2 || !strings.Contains(r.stderr, "Must supply data") {
		t.Errorf("no data: %d %q", r.code, r.stderr)
	}
	if r := run(t, f, runOpts{stdin: "x"}, "kv", "put", "secret/bad", "a=-", "b=-"); r.code != 2 {
		t.Errorf("stdin twice: %d %q", r.code, r.stderr)
	}
}

func TestKVPreflightForbidden(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	r := mustRun(t, f, 1, "kv", "get", "nomount/x")
	if !strings.Contains(r.stderr, "preflight capability check returned 403") || !strings.Contains(r.stderr, "vigil login") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	r = run(t, f, runOpts{env: map[string]string{"VIGIL_TOKEN": "wrong"}}, "kv", "get", "secret/x")
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied") || !strings.Contains(r.stderr, "Check your token") {
		t.Errorf("bad token: %d\n%s", r.code, r.stderr)
	}
}
