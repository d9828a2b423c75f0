package template

import (
	"context"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var fixedNow = func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }

func testEnv(name string) (string, bool) {
	v, ok := map[string]string{"VIGIL_TEST_CLUSTER": "ml-prod", "VIGIL_TEST_ZONE": ""}[name]
	return v, ok
}

func parseFile(t *testing.T, name string, opts Options) *Template {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Name == "" {
		opts.Name = name
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = testEnv
	}
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	tmpl, err := Parse(string(src), opts)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// TestGolden renders Vault Agent template snippets against the fake
// server and compares them with testdata/*.golden (go test -update
// rewrites those).
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		opts Options
		deps []string
	}{
		{"kv2-env.ctmpl", Options{ErrorOnMissingKey: true}, []string{"read secret/data/ml/db"}},
		{"database-creds.ctmpl", Options{ErrorOnMissingKey: true}, []string{"read database/creds/readonly"}},
		{"settings-json.ctmpl", Options{}, []string{"read secret/data/ml/settings"}},
		{"env-file.ctmpl", Options{}, []string{"file testdata/ca.pem"}},
		{"custom-delims.ctmpl", Options{LeftDelim: "[[", RightDelim: "]]"}, []string{"read secret/data/ml/registry"}},
		{"pki-write.ctmpl", Options{ErrorOnMissingKey: true}, []string{"write pki/issue/model-server"}},
		{"kv1-list.ctmpl", Options{}, []string{"read kv/app", "list secret/metadata/ml", "write auth/token/create"}},
		{"helpers.ctmpl", Options{}, []string{"read secret/data/ml/settings"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			src := newFakeServer()
			res, err := parseFile(t, tc.file, tc.opts).Render(t.Context(), src)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(tc.file, ".ctmpl")+".golden")
			if *update {
				if err := os.WriteFile(golden, res.Output, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Output) != string(want) {
				t.Errorf("rendered:\n%s\nwant:\n%s", res.Output, want)
			}
			var deps []string
			for _, d := range res.Dependencies {
				deps = append(deps, d.String())
			}
			if !slices.Equal(deps, tc.deps) {
				t.Errorf("dependencies %q, want %q", deps, tc.deps)
			}
			// A secret named twice is asked for once.
			if n := src.callCount(); n != len(tc.deps)-countKind(res.Dependencies, KindFile) {
				t.Errorf("%d calls to the server for %d dependencies: %v", n, len(tc.deps), src.calls)
			}
		})
	}
}

func countKind(deps []Dependency, k Kind) int {
	n := 0
	for _, d := range deps {
		if d.Kind == k {
			n++
		}
	}
	return n
}

func TestDependencyLeases(t *testing.T) {
	tmpl, err := Parse(`{{ with secret "database/creds/readonly" }}{{ .Data.username }}{{ end }}
{{ with secret "kv/app" }}{{ .Data.api_key }}{{ end }}
{{ with secret "secret/data/ml/db" }}{{ .Data.data.host }}{{ end }}
{{ with secret "database/static-creds/app" }}{{ .Data.password }}{{ end }}
{{ with secret "pki/issue/x" "common_name=a" }}{{ .Data.serial_number }}{{ end }}`, Options{Name: "leases"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tmpl.Render(t.Context(), newFakeServer())
	if err != nil {
		t.Fatal(err)
	}
	static := 5 * time.Minute
	type plan struct {
		a Action
		d time.Duration
	}
	want := []struct {
		dep  Dependency
		plan plan
	}{
		{Dependency{Kind: KindRead, Path: "database/creds/readonly", LeaseID: "database/creds/readonly/lease-1", LeaseDuration: time.Hour, Renewable: true}, plan{Renew, 40 * time.Minute}},
		{Dependency{Kind: KindRead, Path: "kv/app", LeaseDuration: 768 * time.Hour}, plan{Reread, static}},
		{Dependency{Kind: KindRead, Path: "secret/data/ml/db"}, plan{Reread, static}},
		{Dependency{Kind: KindRead, Path: "database/static-creds/app", TTL: time.Hour}, plan{Reread, time.Hour + time.Second}},
		{Dependency{Kind: KindWrite, Path: "pki/issue/x", LeaseID: "pki/issue/x/cert-2", LeaseDuration: 72 * time.Hour}, plan{Reread, 72 * time.Hour * 85 / 100}},
	}
	if len(res.Dependencies) != len(want) {
		t.Fatalf("dependencies %v", res.Dependencies)
	}
	for i, w := range want {
		got := res.Dependencies[i]
		w.dep.key = got.key
		if got != w.dep {
			t.Errorf("dependency %d = %+v, want %+v", i, got, w.dep)
		}
		if a, d := got.Plan(static); a != w.plan.a || d != w.plan.d {
			t.Errorf("%s: plan %s after %s, want %s after %s", got, a, d, w.plan.a, w.plan.d)
		}
	}
	if a, d := (Dependency{Kind: KindFile, Path: "/x"}).Plan(static); a != Reread || d != static {
		t.Errorf("file plan %s %s", a, d)
	}
	// The key of a write carries its arguments, hashed.
	if k := res.Dependencies[4].Key(); !strings.HasPrefix(k, "write pki/issue/x #") || strings.Contains(k, "common_name") {
		t.Errorf("write key %q", k)
	}
}

// A Cache makes templates agree: two env templates for one credential
// get the same lease; forgetting it issues a new one to both.
func TestCacheSharesAnswers(t *testing.T) {
	user, err := Parse(`{{ with secret "database/creds/readonly" }}{{ .Data.username }}{{ end }}`, Options{Name: "DB_USER"})
	if err != nil {
		t.Fatal(err)
	}
	pass, err := Parse(`{{ with secret "database/creds/readonly" }}{{ .Data.password }}{{ end }}`, Options{Name: "DB_PASSWORD"})
	if err != nil {
		t.Fatal(err)
	}
	srv := newFakeServer()
	cache := NewCache(srv)
	render := func(tmpl *Template) (string, Dependency) {
		t.Helper()
		res, err := tmpl.Render(t.Context(), cache)
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Output), res.Dependencies[0]
	}
	u1, dep := render(user)
	p1, _ := render(pass)
	if u1 != "v-approle-readonly-1" || p1 != "A1a-generated-1" || srv.callCount() != 1 {
		t.Fatalf("first renders %q %q after %d calls", u1, p1, srv.callCount())
	}
	cache.Forget(dep)
	u2, _ := render(user)
	p2, _ := render(pass)
	if u2 != "v-approle-readonly-2" || p2 != "A1a-generated-2" || srv.callCount() != 2 {
		t.Fatalf("after Forget %q %q after %d calls", u2, p2, srv.callCount())
	}
	cache.ForgetAll()
	if u3, _ := render(user); u3 != "v-approle-readonly-3" {
		t.Fatalf("after ForgetAll %q", u3)
	}

	// Identical writes share one answer; different arguments do not.
	w1, _ := Parse(`{{ with secret "pki/issue/web" "common_name=a" "ttl=1h" }}{{ .Data.serial_number }}{{ end }}`, Options{Name: "a"})
	w2, _ := Parse(`{{ with secret "pki/issue/web" "ttl=1h" "common_name=a" }}{{ .Data.serial_number }}{{ end }}`, Options{Name: "b"})
	w3, _ := Parse(`{{ with secret "pki/issue/web" "common_name=b" }}{{ .Data.serial_number }}{{ end }}`, Options{Name: "c"})
	s1, _ := render(w1)
	s2, _ := render(w2)
	s3, _ := render(w3)
	if s1 != s2 || s1 == s3 {
		t.Fatalf("serials %q %q %q", s1, s2, s3)
	}

	// Failures are not kept.
	srv.fail = errors.New("connection refused")
	cache.ForgetAll()
	if _, err := user.Render(t.Context(), cache); err == nil {
		t.Fatal("render succeeded against a failing server")
	}
	srv.fail = nil
	if u, _ := render(user); u == "" {
		t.Fatal("empty render after recovery")
	}
}

func TestCacheConcurrentRequestsAreMadeOnce(t *testing.T) {
	srv := newFakeServer()
	cache := NewCache(srv)
	tmpl, err := Parse(`{{ with secret "database/creds/readonly" }}{{ .Data.username }}{{ end }}`, Options{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	outs := make(chan string, 16)
	for range cap(outs) {
		go func() {
			res, err := tmpl.Render(context.Background(), cache)
			if err != nil {
				outs <- "error: " + err.Error()
				return
			}
			outs <- string(res.Output)
		}()
	}
	first := <-outs
	for range cap(outs) - 1 {
		if o := <-outs; o != first {
			t.Fatalf("renders disagree: %q and %q", first, o)
		}
	}
	if srv.callCount() != 1 {
		t.Fatalf("%d calls", srv.callCount())
	}
}

func TestMissingKey(t *testing.T) {
	src := `{{ with secret "secret/data/ml/db" }}user={{ .Data.data.user }}{{ end }}`
	lenient, err := Parse(src, Options{Name: "lenient"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := lenient.Render(t.Context(), newFakeServer())
	if err != nil {
		t.Fatal(err)
	}
	// consul-template's behaviour (missingkey=zero on map[string]any).
	if string(res.Output) != "user=<no value>" {
		t.Fatalf("%q", res.Output)
	}
	// A field of a missing key is an error even so, as in consul-template
	// (text/template evaluates a field of nil).
	v1, err := Parse(`{{ with secret "secret/data/ml/db" }}{{ .Data.data.nope.deeper }}{{ end }}`, Options{Name: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = v1.Render(t.Context(), newFakeServer()); err == nil || !strings.Contains(err.Error(), "nil pointer evaluating interface {}.deeper") {
		t.Fatalf("%v", err)
	}

	strict, err := Parse(src, Options{Name: "/run/app/db.env", ErrorOnMissingKey: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = strict.Render(t.Context(), newFakeServer())
	var re *RenderError
	if !errors.As(err, &re) || re.Name != "/run/app/db.env" {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(err.Error(), `"user"`) || !strings.Contains(err.Error(), ".Data.data.user") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %q should name the key and the expression, never a value", err)
	}
}

func TestMissingSecret(t *testing.T) {
	tmpl, err := Parse("a\n{{ with secret \"secret/data/nope\" }}{{ .Data.data.x }}{{ end }}", Options{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmpl.Render(t.Context(), newFakeServer())
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `secret "secret/data/nope"`) || !strings.Contains(err.Error(), "t:2:") {
		t.Fatalf("error %v", err)
	}
	// A Source error is the render's cause.
	srv := newFakeServer()
	cause := errors.New("permission denied")
	srv.fail = cause
	if _, err = tmpl.Render(t.Context(), srv); !errors.Is(err, cause) {
		t.Fatalf("error %v does not wrap the source's", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		opts      Options
		fn        string
		line      int
		text      string
	}{
		{"unknown", "ok\n{{ frobnicate \"x\" }}", Options{}, "frobnicate", 2, `unknown function "frobnicate"`},
		{"unknown in a pipeline", "{{ secret \"a\" | toUpperCase }}", Options{}, "toUpperCase", 1, "unknown function"},
		{"unknown in a define", "{{ define \"x\" }}\n\n{{ nope }}{{ end }}", Options{}, "nope", 3, `unknown function "nope"`},
		{"unknown in an else", "{{ if true }}{{ else }}{{ nope2 }}{{ end }}", Options{}, "nope2", 1, "unknown function"},
		{"consul", `{{ key "service/redis/maxconns" }}`, Options{}, "key", 1, "it reads Consul"},
		{"consul keyOrDefault", `{{ keyOrDefault "a" "b" }}`, Options{}, "keyOrDefault", 1, "it reads Consul"},
		{"pkiCert", `{{ with pkiCert "pki/issue/x" "common_name=a" }}{{ .Cert }}{{ end }}`, Options{}, "pkiCert", 1, "no PKI secrets engine"},
		{"writeToFile", `{{ "x" | writeToFile "/tmp/x" "" "" "0644" }}`, Options{}, "writeToFile", 1, "its own destination"},
		{"plugin", `{{ plugin "x" }}`, Options{}, "plugin", 1, "run no programs"},
		{"sprig", `{{ "x" | sprig_upper }}`, Options{}, "sprig_upper", 1, "Sprig"},
		{"denied", `{{ env "HOME" }}`, Options{FunctionDenylist: []string{"env", "file"}}, "env", 1, "function_denylist"},
		{"syntax", "{{ with secret \"x\" }}", Options{}, "", 0, "unexpected EOF"},
		{"custom delimiters", "<< nope >>", Options{LeftDelim: "<<", RightDelim: ">>"}, "nope", 1, "unknown function"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Name = "/etc/app/out"
			_, err := Parse(tc.src, tc.opts)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
			if pe.Func != tc.fn || (tc.line != 0 && pe.Line != tc.line) || !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), "/etc/app/out") {
				t.Fatalf("error %q (func %q, line %d)", err, pe.Func, pe.Line)
			}
		})
	}
	// Functions that are not called parse: names only matter as calls.
	if _, err := Parse(`{{ "key" }} {{ .Data.key }} {{ $key := 1 }}{{ $key }}`, Options{}); err != nil {
		t.Fatal(err)
	}
}

// No error shows a secret's value, even those text/template writes.
func TestErrorsHoldNoSecrets(t *testing.T) {
	for _, src := range []string{
		`{{ with secret "secret/data/ml/db" }}{{ range .Data.data.password }}{{ end }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ .Data.data.password | parseInt }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ .Data.data.password | parseFloat }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ .Data.data.password | parseBool }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ .Data.data.password | parseJSON }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ .Data.data.password | base64Decode }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ loop .Data.data.password }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ add .Data.data.password 1 }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ secret "kv/app" (printf "x%s" .Data.data.password) }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ .Data.data.password.deeper }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ index .Data.data.password 99 }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ executeTemplate .Data.data.password }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ scratch.Set "x" .Data.data.password }}{{ scratch.MapSet "x" "k" "v" }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ regexMatch (printf "(%s" .Data.data.password) "x" }}{{ end }}`,
		`{{ with secret "secret/data/ml/db" }}{{ range $i, $e := 5 }}{{ end }}{{ .Data.data.password | toUpper | parseInt }}{{ end }}`,
	} {
		tmpl, err := Parse(src, Options{Name: "t"})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		_, err = tmpl.Render(t.Context(), newFakeServer())
		if err == nil {
			t.Errorf("%s: rendered", src)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "s3cr3t") || strings.Contains(msg, "Pa55") || strings.Contains(msg, "S3CR3T") {
			t.Errorf("%s: error shows the secret: %s", src, msg)
		}
	}
}

func TestSecretDoesNotPrintItsData(t *testing.T) {
	s := &Secret{LeaseID: "l", Data: map[string]any{"password": "hunter22"}}
	for _, out := range []string{s.String(), s.GoString(), s.LogValue().String()} {
		if strings.Contains(out, "hunter22") || !strings.Contains(out, "redacted") {
			t.Errorf("%q", out)
		}
	}
}

func TestSecretArguments(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		// Arguments split at the first "=", trimmed; empty ones skipped.
		{`{{ with secret "pki/issue/w" " common_name = a=b " "" }}{{ .Data.certificate }}{{ end }}`, "common_name=a=b"},
		{`{{ with secret "" }}x{{ else }}empty{{ end }}`, "empty"},
	} {
		tmpl, err := Parse(tc.src, Options{Name: "t"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := tmpl.Render(t.Context(), newFakeServer())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(res.Output), tc.want) {
			t.Errorf("%s: %q", tc.src, res.Output)
		}
	}
	tmpl, _ := Parse(`{{ secret "pki/issue/w" "noequals" }}`, Options{Name: "t"})
	if _, err := tmpl.Render(t.Context(), newFakeServer()); err == nil || !strings.Contains(err.Error(), "argument 2 is not key=value") {
		t.Fatalf("%v", err)
	}
}

func TestFileSandbox(t *testing.T) {
	dir := t.TempDir()
	inside := filepath.Join(dir, "box", "in.txt")
	outside := filepath.Join(dir, "out.txt")
	os.MkdirAll(filepath.Dir(inside), 0o755)
	os.WriteFile(inside, []byte("in"), 0o600)
	os.WriteFile(outside, []byte("out"), 0o600)
	os.Symlink(outside, filepath.Join(dir, "box", "link"))
	opts := Options{Name: "t", SandboxPath: filepath.Join(dir, "box")}
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{inside, true},
		{outside, false},
		{filepath.Join(dir, "box", "..", "out.txt"), false},
		{filepath.Join(dir, "box", "link"), false},
	} {
		tmpl, err := Parse(`{{ file "`+tc.path+`" }}`, opts)
		if err != nil {
			t.Fatal(err)
		}
		res, err := tmpl.Render(t.Context(), newFakeServer())
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v", tc.path, err)
		}
		if err == nil && string(res.Output) != "in" {
			t.Errorf("%s: %q", tc.path, res.Output)
		}
		if err != nil && !strings.Contains(err.Error(), "outside the sandbox") {
			t.Errorf("%s: %v", tc.path, err)
		}
	}
}

func TestRenderStops(t *testing.T) {
	tmpl, err := Parse(`{{ range loop 1000 }}xxxxxxxxxx{{ end }}`, Options{Name: "big", MaxOutput: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Render(t.Context(), newFakeServer()); err == nil || !strings.Contains(err.Error(), "size limit") {
		t.Fatalf("%v", err)
	}
	if _, err := Parse(`{{ range loop 100000000 }}{{ end }}`, Options{}); err != nil {
		t.Fatal(err)
	}
	huge, _ := Parse(`{{ range loop 100000000 }}{{ end }}`, Options{Name: "huge"})
	if _, err := huge.Render(t.Context(), newFakeServer()); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("%v", err)
	}
	rec, _ := Parse(`{{ define "a" }}{{ executeTemplate "a" }}{{ end }}{{ executeTemplate "a" }}`, Options{Name: "rec"})
	if _, err := rec.Render(t.Context(), newFakeServer()); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	sec, _ := Parse(`{{ with secret "kv/app" }}{{ .Data.api_key }}{{ end }}`, Options{Name: "c"})
	if _, err := sec.Render(ctx, newFakeServer()); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

// The supported table is the function map, and no refused name is in it.
func TestFunctionTables(t *testing.T) {
	names := slices.Sorted(maps.Keys(placeholderFuncs()))
	want := slices.Sorted(maps.Keys(supported))
	if !slices.Equal(names, want) {
		t.Fatalf("funcs %v\nsupported %v", names, want)
	}
	for name := range refused {
		if supported[name] || builtin[name] {
			t.Errorf("%s is both refused and provided", name)
		}
	}
}

func TestToYAML(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{map[string]any{}, "{}"},
		{[]any{}, "[]"},
		{"plain", "plain"},
		{map[string]any{"b": "x", "a": num("1")}, "a: 1\nb: x"},
		{map[string]any{"port": "1234", "on": "yes", "s": "has space", "c": "a: b", "e": "", "n": nil, "t": true}, "c: \"a: b\"\ne: \"\"\n\"n\": null\n\"on\": \"yes\"\nport: \"1234\"\ns: \"has space\"\nt: true"},
		{map[string]any{"admin": map[string]any{"port": "1234"}, "list": []any{"a", num("2")}, "empty": map[string]any{}}, "admin:\n  port: \"1234\"\nempty: {}\nlist:\n- a\n- 2"},
		{[]any{map[string]any{"a": "1", "b": "2"}, "c"}, "- a: \"1\"\n  b: \"2\"\n- c"},
		{map[string]any{"pem": "-----BEGIN-----\nabc\n-----END-----"}, "pem: \"-----BEGIN-----\\nabc\\n-----END-----\""},
		{&Secret{LeaseID: "l"}, "Auth: null\nData: null\nLeaseDuration: 0\nLeaseID: l\nRenewable: false\nRequestID: \"\"\nWarnings: null\nWrapInfo: null"},
	} {
		got, err := toYAML(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("toYAML(%v) =\n%s\nwant\n%s", tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"kv2-env.ctmpl", "database-creds.ctmpl", "settings-json.ctmpl", "custom-delims.ctmpl", "helpers.ctmpl"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`{{ define "a" }}{{ nope }}{{ end }}{{ template "a" }}`)
	f.Add(`{{ with secret "x" "a=b" }}{{ .Data.x | toJSON }}{{ else }}{{ break }}{{ end }}`)
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Parse(src, Options{Name: "fuzz"})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
		}
	})
}
