package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// snapServer serves the snapshot paths: GET answers snap, POST records
// the body and answers with status and body.
func snapServer(t *testing.T, snap []byte, status int, answer string) (*httptest.Server, *[]request, *[][]byte) {
	t.Helper()
	var seen []request
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, request{Method: r.Method, Path: r.URL.Path, Token: r.Header.Get("X-Vault-Token"),
			Marker: r.Header.Get("X-Vault-Request"), ContentType: r.Header.Get("Content-Type")})
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, b)
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(snap)
			return
		}
		if status != http.StatusNoContent {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen, &bodies
}

// Snapshots stream past the client's timeout (a nanosecond here, which
// every other call fails) and past the size limit of ordinary answers.
func TestSnapshotSaveStreams(t *testing.T) {
	t.Parallel()
	snap := bytes.Repeat([]byte("0123456789abcdef"), (maxResponseBytes+1<<20)/16)
	srv, seen, _ := snapServer(t, snap, 204, "")
	c, err := NewClient(Config{Address: srv.URL, Token: "tok", Timeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sys().SealStatus(t.Context()); err == nil {
		t.Fatal("an ordinary call outlived a 1ns timeout")
	}
	var out bytes.Buffer
	n, err := c.Sys().SnapshotSave(t.Context(), &out)
	if err != nil || n != int64(len(snap)) || !bytes.Equal(out.Bytes(), snap) {
		t.Fatalf("SnapshotSave = %d, %v (%d bytes)", n, err, out.Len())
	}
	if r := (*seen)[len(*seen)-1]; r.Method != "GET" || r.Path != "/v1/sys/storage/snapshot" || r.Token != "tok" || r.Marker != "true" {
		t.Fatalf("request %+v", r)
	}
}

func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	snap := []byte("VGLSNAP\n\x00\x01 opaque bytes")
	srv, seen, bodies := snapServer(t, nil, 204, "")
	c, err := NewClient(Config{Address: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		res, err := c.Sys().SnapshotRestore(t.Context(), bytes.NewReader(snap), force)
		if err != nil || res.Sealed || len(res.Warnings) != 0 {
			t.Fatalf("SnapshotRestore = %+v, %v", res, err)
		}
	}
	want := []string{"/v1/sys/storage/snapshot", "/v1/sys/storage/snapshot-force"}
	for i, r := range *seen {
		if r.Method != "POST" || r.Path != want[i] || r.ContentType != "application/octet-stream" || !bytes.Equal((*bodies)[i], snap) {
			t.Fatalf("request %d: %+v %q", i, r, (*bodies)[i])
		}
	}

	sealed, _, _ := snapServer(t, nil, 200, `{"request_id":"x","data":{"sealed":true,"entries":3},"warnings":["the server is sealed: unseal it"]}`)
	c, _ = NewClient(Config{Address: sealed.URL})
	res, err := c.Sys().SnapshotRestore(t.Context(), bytes.NewReader(snap), true)
	if err != nil || !res.Sealed || len(res.Warnings) != 1 {
		t.Fatalf("sealed restore = %+v, %v", res, err)
	}

	bad, _, _ := snapServer(t, nil, 400, `{"errors":["invalid snapshot: truncated"]}`)
	c, _ = NewClient(Config{Address: bad.URL})
	_, err = c.Sys().SnapshotRestore(t.Context(), strings.NewReader("x"), false)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !re.HasMessage("truncated") || re.Path != "sys/storage/snapshot" {
		t.Fatalf("bad restore: %v", err)
	}
}
