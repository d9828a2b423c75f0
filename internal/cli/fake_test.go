package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rootToken is the only token the fake server accepts.
const rootToken = "root-token"

// fakeServer implements the handful of Vault endpoints the CLI tests need.
// It is a fake of the server for unit tests; the real server is exercised
// by the acceptance suite.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []seenRequest
	mounts   map[string]map[string]any // "secret/" -> mount object
	kv1      map[string]map[string]any // full path -> data
	kv2      map[string]*kv2Key        // "secret/app" -> key
	sealed   bool
	inited   bool
	progress int
	polls    int
	// noPatch makes PATCH answer 405, to test the rw fallback.
	noPatch bool
	// noLookup makes lookup-self answer 404.
	noLookup bool
}

type seenRequest struct {
	Method, Path, Query, Token, ContentType string
	Body                                    map[string]any
}

type kv2Version struct {
	data    map[string]any
	created string
	deleted string
	destroy bool
}

type kv2Key struct {
	versions    []*kv2Version // index = version-1
	maxVersions int
	casRequired bool
	deleteAfter string
	custom      map[string]any
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{
		t: t,
		mounts: map[string]map[string]any{
			"secret/":    {"type": "kv", "accessor": "kv_2a", "description": "key/value secret storage", "options": map[string]any{"version": "2"}, "config": map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0}},
			"kv1/":       {"type": "kv", "accessor": "kv_1a", "description": "", "options": map[string]any{"version": "1"}, "config": map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0}},
			"sys/":       {"type": "system", "accessor": "system_1", "description": "system endpoints", "options": nil, "config": map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0}},
			"cubbyhole/": {"type": "cubbyhole", "accessor": "cubbyhole_1", "description": "per-token private secret storage", "options": nil, "config": map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0}},
		},
		kv1:    map[string]map[string]any{},
		kv2:    map[string]*kv2Key{},
		inited: true,
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// set changes the fake's state under its lock.
func (f *fakeServer) set(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
}

func (f *fakeServer) seen() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.requests...)
}

// last returns the last request to a path (ignoring preflights), or fails.
func (f *fakeServer) last(t *testing.T, path string) seenRequest {
	t.Helper()
	reqs := f.seen()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Path == path {
			return reqs[i]
		}
	}
	t.Fatalf("no request to %s; saw %v", path, reqs)
	return seenRequest{}
}

func write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if v == nil {
		w.WriteHeader(code)
		return
	}
	b, _ := json.Marshal(v)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func errs(w http.ResponseWriter, code int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	write(w, code, map[string]any{"errors": msgs})
}

func envelope(data any) map[string]any {
	return map[string]any{"request_id": "req-1", "lease_id": "", "lease_duration": 0, "renewable": false, "data": data, "warnings": nil, "auth": nil}
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	sr := seenRequest{Method: r.Method, Path: path, Query: r.URL.RawQuery, Token: r.Header.Get("X-Vault-Token"), ContentType: r.Header.Get("Content-Type")}
	b, _ := io.ReadAll(r.Body)
	if len(b) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&sr.Body); err != nil {
			f.t.Errorf("%s %s: body is not a JSON object: %s", r.Method, path, b)
		}
	}
	f.requests = append(f.requests, sr)
	if r.Header.Get("X-Vault-Request") != "true" {
		f.t.Errorf("%s %s without X-Vault-Request", r.Method, path)
	}
	op := r.Method
	if r.URL.Query().Get("list") == "true" {
		op = "LIST"
	}

	switch path {
	case "sys/seal-status":
		write(w, 200, f.sealStatus())
		return
	case "sys/leader":
		write(w, 200, map[string]any{"ha_enabled": false})
		return
	case "sys/init":
		if op == http.MethodGet {
			write(w, 200, map[string]any{"initialized": f.inited})
			return
		}
		if f.inited {
			errs(w, 400, "Vault is already initialized")
			return
		}
		n, _ := sr.Body["secret_shares"].(json.Number).Int64()
		keys, b64 := []string{}, []string{}
		for i := range n {
			keys = append(keys, fmt.Sprintf("%02x%02x", i, i))
			b64 = append(b64, fmt.Sprintf("a2V5%d=", i))
		}
		f.inited, f.sealed = true, true
		write(w, 200, map[string]any{"keys": keys, "keys_base64": b64, "root_token": rootToken})
		return
	case "sys/unseal":
		if sr.Body["reset"] == true {
			f.progress = 0
		} else if sr.Body["key"] == "bad" {
			errs(w, 400, "'key' must be a valid hex or base64 string")
			return
		} else {
			f.progress++
			if f.progress >= 2 {
				f.sealed, f.progress = false, 0
			}
		}
		write(w, 200, f.sealStatus())
		return
	}
	if f.sealed {
		errs(w, 503, "Vault is sealed")
		return
	}
	if sr.Token != rootToken {
		errs(w, 403, "permission denied")
		return
	}
	switch {
	case path == "auth/token/lookup-self":
		if f.noLookup {
			errs(w, 404)
			return
		}
		write(w, 200, envelope(map[string]any{"id": rootToken, "accessor": "acc-1", "policies": []string{"root"}, "ttl": 0, "renewable": false}))
	case path == "sys/seal":
		f.sealed = true
		write(w, 204, nil)
	case path == "sys/rotate":
		write(w, 204, nil)
	case path == "sys/key-status":
		write(w, 200, envelope(map[string]any{"term": 2, "install_time": "2024-05-01T10:00:00Z", "encryptions": 12}))
	case path == "sys/mounts" && op == http.MethodGet:
		write(w, 200, envelope(f.mounts))
	case strings.HasPrefix(path, "sys/mounts/"):
		f.serveMount(w, op, strings.TrimPrefix(path, "sys/mounts/"), sr.Body)
	case path == "sys/remount":
		from, to := fmt.Sprint(sr.Body["from"]), fmt.Sprint(sr.Body["to"])
		m, ok := f.mounts[from+"/"]
		if !ok {
			errs(w, 400, "no matching mount at \""+from+"/\"")
			return
		}
		delete(f.mounts, from+"/")
		f.mounts[to+"/"] = m
		write(w, 200, envelope(map[string]any{"migration_id": "mig-1"}))
	case strings.HasPrefix(path, "sys/remount/status/"):
		f.polls++
		status := "in-progress"
		if f.polls >= 3 {
			status = "success"
		}
		write(w, 200, envelope(map[string]any{"migration_id": strings.TrimPrefix(path, "sys/remount/status/"), "migration_info": map[string]any{"status": status}}))
	case strings.HasPrefix(path, "sys/internal/ui/mounts/"):
		mp, m := f.findMount(strings.TrimPrefix(path, "sys/internal/ui/mounts/"))
		if m == nil {
			errs(w, 403, "preflight capability check returned 403, please ensure client's policies grant access to path \""+path+"/\"")
			return
		}
		out := map[string]any{"path": mp}
		for k, v := range m {
			out[k] = v
		}
		write(w, 200, envelope(out))
	default:
		mp, m := f.findMount(path)
		if m == nil {
			errs(w, 404, "no handler for route \""+path+"\". route entry not found.")
			return
		}
		opts, _ := m["options"].(map[string]any)
		if opts["version"] == "2" {
			f.serveKV2(w, r, op, mp, strings.TrimPrefix(path, mp), sr)
			return
		}
		f.serveKV1(w, op, path, sr.Body)
	}
}

func (f *fakeServer) sealStatus() map[string]any {
	n, t := 3, 2
	if !f.inited {
		n, t = 0, 0
	}
	return map[string]any{"type": "shamir", "initialized": f.inited, "sealed": f.sealed, "t": t, "n": n,
		"progress": f.progress, "nonce": "", "version": "0.1.0-test", "build_date": "", "migration": false,
		"recovery_seal": false, "storage_type": "inmem"}
}

func (f *fakeServer) findMount(path string) (string, map[string]any) {
	best := ""
	for mp := range f.mounts {
		if (strings.HasPrefix(path, mp) || path+"/" == mp) && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		return "", nil
	}
	return best, f.mounts[best]
}

func (f *fakeServer) serveMount(w http.ResponseWriter, op, rest string, body map[string]any) {
	if name, ok := strings.CutSuffix(rest, "/tune"); ok {
		m := f.mounts[name+"/"]
		if m == nil {
			errs(w, 400, "no mount")
			return
		}
		if d, ok := body["description"]; ok {
			m["description"] = d
		}
		if o, ok := body["options"].(map[string]any); ok {
			m["options"] = o
		}
		write(w, 204, nil)
		return
	}
	switch op {
	case http.MethodPost, http.MethodPut:
		if _, ok := f.mounts[rest+"/"]; ok {
			errs(w, 400, "path is already in use at "+rest+"/")
			return
		}
		typ := fmt.Sprint(body["type"])
		opts, _ := body["options"].(map[string]any)
		if typ == "kv-v2" {
			typ, opts = "kv", map[string]any{"version": "2"}
		}
		f.mounts[rest+"/"] = map[string]any{"type": typ, "accessor": typ + "_new", "description": body["description"], "options": opts, "config": map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0}}
		write(w, 204, nil)
	case http.MethodDelete:
		delete(f.mounts, rest+"/")
		write(w, 204, nil)
	default:
		errs(w, 405)
	}
}

func (f *fakeServer) serveKV1(w http.ResponseWriter, op, path string, body map[string]any) {
	switch op {
	case http.MethodGet:
		d, ok := f.kv1[path]
		if !ok {
			errs(w, 404)
			return
		}
		e := envelope(d)
		e["lease_duration"] = 2764800
		write(w, 200, e)
	case http.MethodPut, http.MethodPost:
		f.kv1[path] = body
		write(w, 204, nil)
	case http.MethodDelete:
		delete(f.kv1, path)
		write(w, 204, nil)
	case "LIST":
		prefix := strings.TrimSuffix(path, "/") + "/"
		write(w, 200, envelope(map[string]any{"keys": children(prefix, keysOf(f.kv1))}))
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// children lists the direct children under prefix, folders with "/".
func children(prefix string, keys []string) []string {
	set := map[string]bool{}
	for k := range keys {
		rest, ok := strings.CutPrefix(keys[k], prefix)
		if !ok || rest == "" {
			continue
		}
		if i := strings.Index(rest, "/"); i >= 0 {
			rest = rest[:i+1]
		}
		set[rest] = true
	}
	out := keysOf(set)
	sort.Strings(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

func (k *kv2Key) meta(v int) map[string]any {
	ver := k.versions[v-1]
	return map[string]any{"created_time": ver.created, "custom_metadata": k.custom, "deletion_time": ver.deleted, "destroyed": ver.destroy, "version": v}
}

func (f *fakeServer) serveKV2(w http.ResponseWriter, r *http.Request, op, mount, rest string, sr seenRequest) {
	kind, key, _ := strings.Cut(rest, "/")
	full := mount + key
	k := f.kv2[full]
	switch kind + " " + op {
	case "data GET":
		if k == nil || len(k.versions) == 0 {
			errs(w, 404)
			return
		}
		v := len(k.versions)
		if q := r.URL.Query().Get("version"); q != "" {
			v, _ = strconv.Atoi(q)
			if v < 1 || v > len(k.versions) {
				errs(w, 404)
				return
			}
		}
		ver := k.versions[v-1]
		if ver.deleted != "" || ver.destroy {
			write(w, 404, envelope(map[string]any{"data": nil, "metadata": k.meta(v)}))
			return
		}
		write(w, 200, envelope(map[string]any{"data": ver.data, "metadata": k.meta(v)}))
	case "data PUT", "data POST", "data PATCH":
		if op == http.MethodPatch {
			if f.noPatch {
				errs(w, 405, "unsupported operation")
				return
			}
			if sr.ContentType != "application/merge-patch+json" {
				errs(w, 415, "PATCH requires Content-Type of application/merge-patch+json")
				return
			}
			if k == nil || len(k.versions) == 0 {
				errs(w, 404)
				return
			}
		}
		data, ok := sr.Body["data"].(map[string]any)
		if !ok {
			errs(w, 400, "no data provided")
			return
		}
		if k == nil {
			k = &kv2Key{}
			f.kv2[full] = k
		}
		opts, _ := sr.Body["options"].(map[string]any)
		if cas, ok := opts["cas"].(json.Number); ok {
			if n, _ := cas.Int64(); int(n) != len(k.versions) {
				errs(w, 400, "check-and-set parameter did not match the current version")
				return
			}
		} else if k.casRequired {
			errs(w, 400, "check-and-set parameter required for this call")
			return
		}
		if op == http.MethodPatch {
			merged := map[string]any{}
			for kk, vv := range k.versions[len(k.versions)-1].data {
				merged[kk] = vv
			}
			for kk, vv := range data {
				if vv == nil {
					delete(merged, kk)
				} else {
					merged[kk] = vv
				}
			}
			data = merged
		}
		k.versions = append(k.versions, &kv2Version{data: data, created: "2024-05-01T10:00:00.123456789Z"})
		write(w, 200, envelope(k.meta(len(k.versions))))
	case "data DELETE":
		if k != nil && len(k.versions) > 0 {
			k.versions[len(k.versions)-1].deleted = "2024-05-02T10:00:00Z"
		}
		write(w, 204, nil)
	case "delete PUT", "undelete PUT", "destroy PUT":
		vs, _ := sr.Body["versions"].([]any)
		if len(vs) == 0 {
			errs(w, 400, "No version number provided")
			return
		}
		for _, x := range vs {
			s, ok := x.(string)
			if !ok {
				f.t.Errorf("versions sent as %T, want strings", x)
			}
			n, _ := strconv.Atoi(s)
			if k == nil || n < 1 || n > len(k.versions) {
				continue
			}
			switch kind {
			case "delete":
				k.versions[n-1].deleted = "2024-05-02T10:00:00Z"
			case "undelete":
				k.versions[n-1].deleted = ""
			case "destroy":
				k.versions[n-1].destroy, k.versions[n-1].data = true, nil
			}
		}
		write(w, 204, nil)
	case "metadata LIST":
		var keys []string
		for full := range f.kv2 {
			keys = append(keys, full)
		}
		c := children(mount+strings.TrimSuffix(key, "/")+"/", keys)
		if key == "" {
			c = children(mount, keys)
		}
		if c == nil {
			errs(w, 404)
			return
		}
		write(w, 200, envelope(map[string]any{"keys": c}))
	case "metadata GET":
		if k == nil {
			errs(w, 404)
			return
		}
		versions := map[string]any{}
		for i, v := range k.versions {
			versions[strconv.Itoa(i+1)] = map[string]any{"created_time": v.created, "deletion_time": v.deleted, "destroyed": v.destroy}
		}
		da := k.deleteAfter
		if da == "" {
			da = "0s"
		}
		write(w, 200, envelope(map[string]any{"cas_required": k.casRequired, "current_version": len(k.versions),
			"custom_metadata": k.custom, "delete_version_after": da, "max_versions": k.maxVersions,
			"oldest_version": 1, "created_time": "2024-05-01T10:00:00Z", "updated_time": "2024-05-01T10:00:00Z", "versions": versions}))
	case "metadata PUT", "metadata POST", "metadata PATCH":
		if k == nil {
			k = &kv2Key{}
			f.kv2[full] = k
		}
		if v, ok := sr.Body["max_versions"].(json.Number); ok {
			n, _ := v.Int64()
			k.maxVersions = int(n)
		}
		if v, ok := sr.Body["cas_required"].(bool); ok {
			k.casRequired = v
		}
		if v, ok := sr.Body["delete_version_after"].(string); ok {
			k.deleteAfter = v
		}
		if v, ok := sr.Body["custom_metadata"].(map[string]any); ok {
			if op != http.MethodPatch || k.custom == nil {
				k.custom = map[string]any{}
			}
			for kk, vv := range v {
				if vv == nil {
					delete(k.custom, kk)
				} else {
					k.custom[kk] = vv
				}
			}
		}
		write(w, 204, nil)
	case "metadata DELETE":
		delete(f.kv2, full)
		write(w, 204, nil)
	default:
		write(w, 404, map[string]any{"errors": []string{}, "warnings": []string{"Invalid path for a versioned K/V secrets engine."}})
	}
}

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// runOpts configures a CLI run.
type runOpts struct {
	env   map[string]string
	stdin string
	home  string
}

// run runs the CLI against f (when not nil) with the root token unless the
// env overrides it.
func run(t *testing.T, f *fakeServer, o runOpts, args ...string) result {
	t.Helper()
	vars := map[string]string{"VIGIL_TOKEN": rootToken}
	if f != nil {
		vars["VIGIL_ADDR"] = f.srv.URL
	}
	if o.home == "" {
		o.home = t.TempDir()
	}
	vars["HOME"] = o.home
	for k, v := range o.env {
		vars[k] = v
	}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	e := &env{
		stdin: strings.NewReader(o.stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return vars[k] }, home: o.home,
		pollInterval: time.Millisecond,
	}
	code := e.run(ctx, args)
	return result{code, out.String(), errOut.String()}
}

// mustRun runs the CLI and fails unless it exits with want.
func mustRun(t *testing.T, f *fakeServer, want int, args ...string) result {
	t.Helper()
	r := run(t, f, runOpts{}, args...)
	if r.code != want {
		t.Fatalf("vigil %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}
