package httpapi

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secrets/kv"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/snapshot"
)

// raw sends a request with a raw body and returns the status, the
// headers and the whole body.
func (e *env) raw(method, path string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if e.token != "" {
		req.Header.Set("X-Vault-Token", e.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, out
}

// errorsOf decodes an {"errors":[...]} body.
func errorsOf(t *testing.T, body []byte) []string {
	t.Helper()
	var v struct {
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Errors == nil {
		t.Fatalf("not an errors body: %q", body)
	}
	return v.Errors
}

// newSnapEnv is an unsealed server with KV at secret/ holding secret/app.
func newSnapEnv(t *testing.T, opts Options) *env {
	t.Helper()
	c, err := core.New(core.Config{Storage: inmem.New(), StorageType: "inmem", Factories: map[string]logical.Factory{"kv": kv.Factory}})
	if err != nil {
		t.Fatal(err)
	}
	opts.Core = c
	if opts.Version == "" {
		opts.Version = "test"
	}
	srv := httptest.NewServer(New(opts))
	t.Cleanup(func() {
		srv.Close()
		c.SealInternal(context.Background())
	})
	e := &env{t: t, core: c, srv: srv}
	e.initAndUnseal()
	if code, _, body := e.do("POST", "/v1/sys/mounts/secret", `{"type":"kv"}`); code != 204 {
		t.Fatalf("mount: %d %v", code, body)
	}
	e.put("v1")
	return e
}

func (e *env) put(v string) {
	e.t.Helper()
	if code, _, body := e.do("PUT", "/v1/secret/app", `{"v":"`+v+`"}`); code != 204 {
		e.t.Fatalf("write: %d %v", code, body)
	}
}

func (e *env) wantApp(v string) {
	e.t.Helper()
	code, _, body := e.do("GET", "/v1/secret/app", "")
	if code != 200 || body["data"].(map[string]any)["v"] != v {
		e.t.Fatalf("read secret/app: %d %v; want %q", code, body, v)
	}
}

func TestSnapshotSaveAndRestore(t *testing.T) {
	e := newSnapEnv(t, Options{})
	code, hdr, snap := e.raw("GET", "/v1/sys/storage/snapshot", nil)
	if code != 200 || hdr.Get("Content-Type") != "application/octet-stream" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("save: %d %v", code, hdr)
	}
	r, err := snapshot.NewReader(bytes.NewReader(snap))
	if err != nil || r.Meta().StorageType != "inmem" {
		t.Fatalf("the body is not a snapshot: %v", err)
	}
	e.put("v2")
	code, _, body := e.raw("POST", "/v1/sys/storage/snapshot", snap)
	if code != 204 || len(body) != 0 {
		t.Fatalf("restore: %d %q", code, body)
	}
	e.wantApp("v1")
	// PUT is POST, and the raft alias restores the plain form too.
	e.put("v3")
	if code, _, body := e.raw("PUT", "/v1/sys/storage/raft/snapshot", snap); code != 204 {
		t.Fatalf("restore through the raft path: %d %q", code, body)
	}
	e.wantApp("v1")
}

// The raft paths wrap the snapshot as Vault's client expects: gzip, tar,
// the snapshot in parts, SHA256SUMS.sealed last; either form restores on
// either path.
func TestSnapshotRaftArchive(t *testing.T) {
	e := newSnapEnv(t, Options{})
	// Enough data for several parts.
	big := strings.Repeat("x", 300<<10)
	for i := range 8 {
		if code, _, body := e.do("PUT", "/v1/secret/big"+string(rune('a'+i)), `{"v":"`+big+`"}`); code != 204 {
			t.Fatalf("write: %d %v", code, body)
		}
	}
	code, hdr, archive := e.raw("GET", "/v1/sys/storage/raft/snapshot", nil)
	if code != 200 || hdr.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("save: %d %v", code, hdr)
	}
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	var joined bytes.Buffer
	var sums []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == archiveChecksum {
			sums, _ = io.ReadAll(tr)
		} else {
			_, _ = io.Copy(&joined, tr)
		}
	}
	if len(names) < 4 || names[0] != "vigil.snap.000000" || names[len(names)-1] != "SHA256SUMS.sealed" {
		t.Fatalf("archive files %v", names)
	}
	sum := sha256.Sum256(joined.Bytes())
	if string(sums) != hex.EncodeToString(sum[:])+"  vigil.snap\n" {
		t.Fatalf("SHA256SUMS.sealed = %q", sums)
	}
	if _, err := snapshot.NewReader(bytes.NewReader(joined.Bytes())); err != nil {
		t.Fatalf("the parts are not a snapshot: %v", err)
	}
	for _, path := range []string{"/v1/sys/storage/snapshot", "/v1/sys/storage/raft/snapshot"} {
		e.put("changed")
		if code, _, body := e.raw("POST", path, archive); code != 204 {
			t.Fatalf("restore the archive on %s: %d %q", path, code, body)
		}
		e.wantApp("v1")
	}
	// A damaged archive is a bad snapshot.
	bad := bytes.Clone(archive)
	bad[len(bad)/2] ^= 0xff
	e.put("changed")
	code, _, body := e.raw("POST", "/v1/sys/storage/raft/snapshot", bad)
	if code != 400 || !strings.HasPrefix(errorsOf(t, body)[0], "invalid snapshot") {
		t.Fatalf("damaged archive: %d %q", code, body)
	}
	e.wantApp("changed")
}

func TestSnapshotErrors(t *testing.T) {
	e := newSnapEnv(t, Options{})
	_, _, snap := e.raw("GET", "/v1/sys/storage/snapshot", nil)
	root := e.token

	e.token = ""
	if code, _, body := e.raw("GET", "/v1/sys/storage/snapshot", nil); code != 403 || errorsOf(t, body)[0] != "permission denied" {
		t.Fatalf("no token: %d %q", code, body)
	}
	if code, _, body := e.raw("POST", "/v1/sys/storage/snapshot", snap); code != 403 || errorsOf(t, body)[0] != "permission denied" {
		t.Fatalf("restore without a token: %d %q", code, body)
	}
	e.token = root

	for _, tc := range []struct {
		method, path string
		body         []byte
		code         int
		msg          string
	}{
		{"GET", "/v1/sys/storage/snapshot-force", nil, 405, ""},
		{"DELETE", "/v1/sys/storage/snapshot", nil, 405, ""},
		{"POST", "/v1/sys/storage/snapshot", []byte("not a snapshot"), 400, "invalid snapshot: not a Vigil storage snapshot"},
		{"POST", "/v1/sys/storage/snapshot", snap[:len(snap)-1], 400, "invalid snapshot: truncated"},
		{"POST", "/v1/sys/storage/snapshot", nil, 400, "invalid snapshot"},
	} {
		e.put("current")
		code, _, body := e.raw(tc.method, tc.path, tc.body)
		if code != tc.code || (tc.msg != "" && !strings.HasPrefix(errorsOf(t, body)[0], tc.msg)) {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, code, body)
		}
		e.wantApp("current")
	}
	// In a namespace: a root-only path.
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/sys/storage/snapshot", nil)
	req.Header.Set("X-Vault-Token", root)
	req.Header.Set("X-Vault-Namespace", "team")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Fatalf("namespace: %v %v", resp, err)
	}
	// Sealed.
	if code, _, _ := e.raw("PUT", "/v1/sys/seal", nil); code != 204 {
		t.Fatal("seal")
	}
	if code, _, body := e.raw("GET", "/v1/sys/storage/snapshot", nil); code != 503 || errorsOf(t, body)[0] != "Vault is sealed" {
		t.Fatalf("sealed: %d %q", code, body)
	}
}

// A restore body over the snapshot limit is a 413 and changes nothing,
// whether its length is announced or found on the way (the server
// restarts on its data); other requests keep the ordinary limit.
func TestSnapshotBodyLimit(t *testing.T) {
	e := newSnapEnv(t, Options{MaxRequestSize: 1024, MaxSnapshotSize: 2048})
	_, _, snap := e.raw("GET", "/v1/sys/storage/snapshot", nil)
	if len(snap) <= 2048 {
		t.Fatalf("the snapshot is only %d bytes", len(snap))
	}
	e.put("current")
	if code, _, body := e.raw("POST", "/v1/sys/storage/snapshot", snap); code != 413 {
		t.Fatalf("announced: %d %q", code, body)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/sys/storage/snapshot", io.MultiReader(bytes.NewReader(snap)))
	req.ContentLength = -1 // chunked: the limit is found while reading
	req.Header.Set("X-Vault-Token", e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked: %d", resp.StatusCode)
	}
	e.wantApp("current")

	small := newSnapEnv(t, Options{MaxRequestSize: 1024, MaxSnapshotSize: 1 << 20})
	_, _, snap = small.raw("GET", "/v1/sys/storage/snapshot", nil)
	small.put("current")
	if code, _, body := small.raw("POST", "/v1/sys/storage/snapshot", snap); code != 204 {
		t.Fatalf("a snapshot over max_request_size but under the snapshot limit: %d %q", code, body)
	}
	small.wantApp("v1")
}

// failingCore fails a save once it has sent part of the snapshot.
type failingCore struct {
	*core.Core
}

func (f failingCore) SnapshotSave(ctx context.Context, req core.SnapshotRequest, w io.Writer) (core.SnapshotInfo, error) {
	if _, err := w.Write(make([]byte, 256<<10)); err != nil {
		return core.SnapshotInfo{}, err
	}
	return core.SnapshotInfo{}, errors.New("storage failed mid-snapshot")
}

// A save that fails once the snapshot is under way breaks the connection:
// the client sees a failed transfer, not a short file with a 200.
func TestSnapshotSaveFailureBreaksTheTransfer(t *testing.T) {
	c, err := core.New(core.Config{Storage: inmem.New()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{Core: failingCore{c}, Logger: nil}))
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(srv.URL + "/v1/sys/storage/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("status %d, read error %v; want a broken transfer", resp.StatusCode, err)
	}
}

// A standby forwards the snapshot endpoints to the active server: a save
// streams back through it, and a restore streams through it to the
// active.
func TestSnapshotThroughAStandby(t *testing.T) {
	phys := inmem.New()
	a, b := newHAEnv(t, phys, "a"), newHAEnv(t, phys, "b")
	a.initAndUnseal()
	waitUntil(t, "a is active", func() bool { return !a.core.Standby() })
	b.keys = a.keys
	for _, k := range b.keys[:2] {
		if code, _, body := b.do("PUT", "/v1/sys/unseal", `{"key":"`+k+`"}`); code != 200 {
			t.Fatalf("unseal b: %d %v", code, body)
		}
	}
	if !b.core.Standby() {
		t.Fatal("b is not a standby")
	}
	b.token = a.token
	if code, _, body := a.do("POST", "/v1/sys/mounts/secret", `{"type":"kv"}`); code != 204 {
		t.Fatalf("mount: %d %v", code, body)
	}
	a.put("v1")
	code, hdr, snap := b.raw("GET", "/v1/sys/storage/snapshot", nil)
	if code != 200 || hdr.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("save through the standby: %d %v", code, hdr)
	}
	if _, err := snapshot.NewReader(bytes.NewReader(snap)); err != nil {
		t.Fatalf("not a snapshot: %v", err)
	}
	a.put("v2")
	if code, _, body := b.raw("POST", "/v1/sys/storage/snapshot", snap); code != 204 {
		t.Fatalf("restore through the standby: %d %q", code, body)
	}
	a.wantApp("v1")
	if a.core.Standby() || !b.core.Standby() {
		t.Fatal("the restore moved the leader lock")
	}
}
