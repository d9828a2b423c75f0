package cli

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// snapStub serves the snapshot endpoints for the CLI tests: GET sends
// snap (and, with broken, breaks the transfer after half of it); POST
// records the body and answers with status and answer. The real server
// is exercised by the acceptance suite (tests/acceptance/snapshot_test.go).
type snapStub struct {
	srv    *httptest.Server
	snap   []byte
	broken bool
	status int
	answer string

	mu       sync.Mutex
	paths    []string
	restored [][]byte
}

func newSnapStub(t *testing.T, snap []byte) *snapStub {
	t.Helper()
	s := &snapStub{snap: snap, status: http.StatusNoContent}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != rootToken {
			errs(w, 403, "permission denied")
			return
		}
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.paths = append(s.paths, r.Method+" "+r.URL.Path)
		if r.Method == http.MethodPost {
			s.restored = append(s.restored, body)
		}
		broken, status, answer := s.broken, s.status, s.answer
		s.mu.Unlock()
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/octet-stream")
			if broken {
				_, _ = w.Write(s.snap[:len(s.snap)/2])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			_, _ = w.Write(s.snap)
			return
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// answer sets what POST answers.
func (s *snapStub) answerWith(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.answer = status, body
}

// requests returns the requests seen and the bodies restored.
func (s *snapStub) requests() ([]string, [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...), append([][]byte(nil), s.restored...)
}

func (s *snapStub) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return run(t, nil, runOpts{stdin: stdin, env: map[string]string{"VIGIL_ADDR": s.srv.URL}}, args...)
}

// dirNames lists a directory.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestOperatorSnapshotSave(t *testing.T) {
	t.Parallel()
	snap := bytes.Repeat([]byte("snapshot bytes\x00\xff"), 100000)
	s := newSnapStub(t, snap)
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.snap")
	if err := os.WriteFile(path, []byte("an older snapshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.run(t, "", "operator", "snapshot", "save", path)
	if r.code != 0 || !strings.Contains(r.stdout, "Success! Saved a snapshot of 1600000 bytes to "+path) {
		t.Fatalf("save: %+v", r)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, snap) {
		t.Fatalf("file holds %d bytes, want %d: %v", len(got), len(snap), err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v", names)
	}
	if paths, _ := s.requests(); paths[0] != "GET /v1/sys/storage/snapshot" {
		t.Errorf("request %v", paths)
	}

	// To stdout.
	r = s.run(t, "", "operator", "snapshot", "save", "-")
	if r.code != 0 || r.stdout != string(snap) {
		t.Fatalf("save to stdout: exit %d, %d bytes", r.code, len(r.stdout))
	}
}

// A transfer the server breaks off, or refuses, leaves no file: not the
// temporary one, and an existing FILE as it was.
func TestOperatorSnapshotSaveFailureLeavesNoFile(t *testing.T) {
	t.Parallel()
	s := newSnapStub(t, bytes.Repeat([]byte("x"), 1<<20))
	s.broken = true // before the first request
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.snap")
	r := s.run(t, "", "operator", "snapshot", "save", path)
	if r.code != 1 || !strings.Contains(r.stderr, "Error saving the snapshot") {
		t.Fatalf("broken transfer: %+v", r)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("a broken transfer left %v", names)
	}
	if err := os.WriteFile(path, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, runOpts{env: map[string]string{"VIGIL_ADDR": s.srv.URL, "VIGIL_TOKEN": "wrong"}}, "operator", "snapshot", "save", path)
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied") || !strings.Contains(r.stderr, "Check your token") {
		t.Fatalf("denied: %+v", r)
	}
	if got, _ := os.ReadFile(path); string(got) != "kept" || len(dirNames(t, dir)) != 1 {
		t.Fatalf("a refused save touched the directory: %q %v", got, dirNames(t, dir))
	}
	// A directory that does not exist.
	r = s.run(t, "", "operator", "snapshot", "save", filepath.Join(dir, "no", "such", "dir.snap"))
	if r.code != 1 {
		t.Fatalf("missing directory: %+v", r)
	}
}

func TestOperatorSnapshotRestore(t *testing.T) {
	t.Parallel()
	snap := []byte("VGLSNAP\n\x00\x01 the snapshot")
	path := filepath.Join(t.TempDir(), "vigil.snap")
	if err := os.WriteFile(path, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSnapStub(t, nil)
	r := s.run(t, "", "operator", "snapshot", "restore", path)
	if r.code != 0 || r.stdout != "Success! Restored the snapshot.\n" {
		t.Fatalf("restore: %+v", r)
	}
	r = s.run(t, string(snap), "operator", "snapshot", "restore", "-force", "-")
	if r.code != 0 {
		t.Fatalf("restore -force from stdin: %+v", r)
	}
	paths, restored := s.requests()
	if strings.Join(paths, ",") != "POST /v1/sys/storage/snapshot,POST /v1/sys/storage/snapshot-force" ||
		!bytes.Equal(restored[0], snap) || !bytes.Equal(restored[1], snap) {
		t.Fatalf("requests %v", paths)
	}

	// A restore that left the server sealed says so.
	s.answerWith(200, `{"request_id":"r","data":{"sealed":true,"entries":9},"warnings":["the snapshot was restored and the server is sealed: unseal it"]}`)
	r = s.run(t, "", "operator", "snapshot", "restore", "-force", path)
	if r.code != 0 || !strings.Contains(r.stderr, "WARNING! the snapshot was restored and the server is sealed") || !strings.Contains(r.stdout, "vigil operator unseal") {
		t.Fatalf("sealed: %+v", r)
	}
	// Another cluster's snapshot without -force.
	s.answerWith(400, `{"errors":["the snapshot is of cluster \"a\", not of this cluster (\"b\"): restore it with snapshot-force (vigil operator snapshot restore -force) to replace this cluster's data with it"]}`)
	r = s.run(t, "", "operator", "snapshot", "restore", path)
	if r.code != 1 || !strings.Contains(r.stderr, "Restore it with -force") {
		t.Fatalf("other cluster: %+v", r)
	}
	// A bad snapshot.
	s.answerWith(400, `{"errors":["invalid snapshot: truncated"]}`)
	r = s.run(t, "", "operator", "snapshot", "restore", path)
	if r.code != 1 || !strings.Contains(r.stderr, "invalid snapshot: truncated") {
		t.Fatalf("bad snapshot: %+v", r)
	}
	// A file that is not there is the caller's mistake.
	r = s.run(t, "", "operator", "snapshot", "restore", path+".missing")
	if r.code != 2 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("missing file: %+v", r)
	}
}

func TestOperatorSnapshotHelp(t *testing.T) {
	t.Parallel()
	r := mustRun(t, nil, 0, "operator", "-h")
	for _, want := range []string{"snapshot", "migrate", "Copy all data offline"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("operator -h lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, nil, 0, "operator", "snapshot", "-h")
	if !strings.Contains(r.stdout, "save") || !strings.Contains(r.stdout, "restore") {
		t.Errorf("operator snapshot -h:\n%s", r.stdout)
	}
	r = mustRun(t, nil, 0, "operator", "snapshot", "restore", "-h")
	if !strings.Contains(r.stdout, "Usage: vigil operator snapshot restore [flags] FILE") || !strings.Contains(r.stdout, "-force") {
		t.Errorf("restore -h:\n%s", r.stdout)
	}
	mustRun(t, nil, 2, "operator", "snapshot", "save")
	mustRun(t, nil, 2, "operator", "snapshot", "restore", "a", "b")
	// Outside the vigil binary, migrate only says where it runs.
	r = mustRun(t, nil, 1, "operator", "migrate", "-config", "x.hcl")
	if !strings.Contains(r.stderr, "runs in the vigil binary") {
		t.Errorf("migrate through the CLI: %s", r.stderr)
	}
}
