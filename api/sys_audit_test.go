package api

import (
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSysListAudit(t *testing.T) {
	t.Parallel()
	// As Vigil's server answers: the map in data and injected at the top.
	dev := `{"type":"file","description":"main log","options":{"file_path":"/var/log/vigil/audit.log"},"local":true,"path":"file/"}`
	c, seen := fake(t, func(request) (int, string) {
		return 200, `{"request_id":"r","data":{"file/":` + dev + `},"file/":` + dev + `}`
	})
	got, err := c.Sys().ListAudit(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r := (*seen)[0]; r.Method != http.MethodGet || r.Path != "/v1/sys/audit" || r.Body != nil || r.Token != "tok" {
		t.Errorf("request = %+v", r)
	}
	want := map[string]*Audit{"file/": {
		Type: "file", Description: "main log", Local: true, Path: "file/",
		Options: map[string]string{"file_path": "/var/log/vigil/audit.log"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("devices = %+v\nwant %+v", got, want)
	}

	c, _ = fake(t, func(request) (int, string) { return 200, `{"request_id":"r","data":{}}` })
	got, err = c.Sys().ListAudit(t.Context())
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("none enabled: %v, %v", got, err)
	}
}

func TestSysEnableDisableAudit(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) { return 204, "" })
	ctx := t.Context()
	if err := c.Sys().EnableAudit(ctx, "file", EnableAuditInput{Type: "file"}); err != nil {
		t.Fatal(err)
	}
	in := EnableAuditInput{Type: "file", Description: "d", Local: true, Options: map[string]string{"file_path": "stdout"}}
	if err := c.Sys().EnableAudit(ctx, "/team/file/", in); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().DisableAudit(ctx, "team/file/"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		body         map[string]any
	}{
		{http.MethodPut, "/v1/sys/audit/file", map[string]any{"type": "file", "description": "", "options": map[string]any{}, "local": false}},
		{http.MethodPut, "/v1/sys/audit/team/file", map[string]any{"type": "file", "description": "d", "options": map[string]any{"file_path": "stdout"}, "local": true}},
		{http.MethodDelete, "/v1/sys/audit/team/file", nil},
	}
	for i, tt := range tests {
		r := (*seen)[i]
		if r.Method != tt.method || r.Path != tt.path || !reflect.DeepEqual(r.Body, tt.body) {
			t.Errorf("request %d = %s %s %v\nwant %s %s %v", i, r.Method, r.Path, r.Body, tt.method, tt.path, tt.body)
		}
	}
}

func TestSysAuditHash(t *testing.T) {
	t.Parallel()
	const h = "hmac-sha256:0a1b2c"
	c, seen := fake(t, func(request) (int, string) {
		return 200, `{"request_id":"r","data":{"hash":"` + h + `"},"hash":"` + h + `"}`
	})
	got, err := c.Sys().AuditHash(t.Context(), "file/", "s3cr3t")
	if err != nil || got != h {
		t.Fatalf("hash = %q, %v", got, err)
	}
	r := (*seen)[0]
	if r.Method != http.MethodPost || r.Path != "/v1/sys/audit-hash/file" || !reflect.DeepEqual(r.Body, map[string]any{"input": "s3cr3t"}) {
		t.Errorf("request = %+v", r)
	}

	c, _ = fake(t, func(request) (int, string) { return 200, `{"request_id":"r","data":{}}` })
	if _, err := c.Sys().AuditHash(t.Context(), "file", "s3cr3t"); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("no hash: err = %v", err)
	}
}

func TestSysAuditChain(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{0xab}, 32)
	c, seen := fake(t, func(request) (int, string) {
		return 200, `{"request_id":"r","data":{"path":"file/","key":"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=",
			"seq":42,"chain":"00ff","checkpoint_time":"2026-01-02T03:04:05.5Z"}}`
	})
	got, err := c.Sys().AuditChain(t.Context(), "file")
	if err != nil {
		t.Fatal(err)
	}
	want := &AuditChain{Path: "file/", Key: key, Seq: 42, Chain: "00ff",
		CheckpointTime: time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("chain = %+v\nwant %+v", got, want)
	}
	if r := (*seen)[0]; r.Method != http.MethodGet || r.Path != "/v1/sys/audit-chain/file" || r.Body != nil {
		t.Errorf("request = %+v", r)
	}

	c, _ = fake(t, func(request) (int, string) {
		return 200, `{"request_id":"r","data":{"path":"file/","key":"not base64!","seq":1,"chain":"00"}}`
	})
	if _, err := c.Sys().AuditChain(t.Context(), "file"); err == nil || strings.Contains(err.Error(), "not base64!") {
		t.Errorf("bad key: err = %v", err)
	}
}

func TestSysAuditErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, seen := fake(t, func(request) (int, string) { return 204, "" })
	for name, call := range map[string]func(string) error{
		"EnableAudit":  func(p string) error { return c.Sys().EnableAudit(ctx, p, EnableAuditInput{Type: "file"}) },
		"DisableAudit": func(p string) error { return c.Sys().DisableAudit(ctx, p) },
		"AuditHash":    func(p string) error { _, err := c.Sys().AuditHash(ctx, p, "x"); return err },
		"AuditChain":   func(p string) error { _, err := c.Sys().AuditChain(ctx, p); return err },
	} {
		for _, p := range []string{"", "/", "//"} {
			if err := call(p); !errors.Is(err, errEmptyAuditPath) {
				t.Errorf("%s(%q) = %v, want %v", name, p, err, errEmptyAuditPath)
			}
		}
	}
	if len(*seen) != 0 {
		t.Errorf("requests sent for empty paths: %+v", *seen)
	}

	c, _ = fake(t, func(request) (int, string) { return 403, `{"errors":["permission denied"]}` })
	_, errList := c.Sys().ListAudit(ctx)
	_, errChain := c.Sys().AuditChain(ctx, "file")
	_, errHash := c.Sys().AuditHash(ctx, "file", "x")
	for i, err := range []error{errList, errChain, errHash} {
		if StatusCode(err) != 403 {
			t.Errorf("call %d: err = %v, want status 403", i, err)
		}
	}
}
