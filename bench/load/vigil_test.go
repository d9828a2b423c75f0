package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const unsealKey = "c0ffee00UNSEAL-KEY-do-not-print"

// fakeVigil answers the calls the benchmark makes the way Vigil does.
type fakeVigil struct {
	mu          sync.Mutex
	initialized bool
	sealed      bool
	mounted     bool
	configPolls int
	kv          map[string][]byte
	writeFails  bool
}

func newFakeVigil() *fakeVigil { return &fakeVigil{sealed: true, kv: map[string][]byte{}} }

func (f *fakeVigil) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	errs := func(status int, msg string) { reply(status, map[string][]string{"errors": {msg}}) }
	p := r.URL.Path
	switch {
	case p == "/v1/sys/health":
		if f.sealed {
			reply(http.StatusServiceUnavailable, map[string]bool{"sealed": true})
			return
		}
		reply(http.StatusOK, map[string]bool{"sealed": false})
		return
	case p == "/v1/sys/init" && r.Method == http.MethodPut:
		f.initialized = true
		reply(http.StatusOK, map[string]any{"keys": []string{unsealKey}, "keys_base64": []string{"x"}, "root_token": secretToken})
		return
	case p == "/v1/sys/unseal" && r.Method == http.MethodPut:
		var in struct{ Key string }
		json.Unmarshal(body, &in)
		if !f.initialized || in.Key != unsealKey {
			errs(http.StatusBadRequest, "bad key")
			return
		}
		f.sealed = false
		reply(http.StatusOK, map[string]any{"sealed": false})
		return
	}
	if f.sealed {
		errs(http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	if r.Header.Get("X-Vault-Token") != secretToken {
		errs(http.StatusForbidden, "permission denied")
		return
	}
	switch {
	case p == "/v1/sys/mounts/kvbench" && r.Method == http.MethodPost:
		if !bytes.Contains(body, []byte(`"version":"2"`)) {
			errs(http.StatusBadRequest, "want version 2")
			return
		}
		f.mounted = true
		w.WriteHeader(http.StatusNoContent)
	case p == "/v1/kvbench/config" && f.mounted:
		f.configPolls++
		if f.configPolls < 3 { // the mount takes an instant to set up
			errs(http.StatusBadRequest, "upgrading")
			return
		}
		reply(http.StatusOK, map[string]any{"data": map[string]any{"max_versions": 0}})
	case strings.HasPrefix(p, "/v1/kvbench/data/") && f.mounted:
		key := strings.TrimPrefix(p, "/v1/kvbench/data/")
		switch r.Method {
		case http.MethodPost:
			if f.writeFails {
				errs(http.StatusInternalServerError, "disk full")
				return
			}
			var in struct{ Data map[string]string }
			if json.Unmarshal(body, &in) != nil || in.Data["value"] == "" {
				errs(http.StatusBadRequest, "no data")
				return
			}
			f.kv[key] = body
			reply(http.StatusOK, map[string]any{"data": map[string]any{"version": 1}})
		case http.MethodGet:
			if f.kv[key] == nil {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(KVReadBody(16))
		}
	default:
		errs(http.StatusNotFound, "no handler for route")
	}
}

func TestVigilSetup(t *testing.T) {
	fake := newFakeVigil()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	v := &Vigil{Base: srv.URL, Client: NewClient(8)}
	ctx := t.Context()
	if err := v.WaitHealthy(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := v.InitUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.MountKV2(ctx, "kvbench", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := v.Preload(ctx, "kvbench", 50, 32, 8); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	n, ok := len(fake.kv), fake.kv["k0"] != nil && fake.kv["k49"] != nil
	fake.mu.Unlock()
	if n != 50 || !ok {
		t.Fatalf("preload wrote %d keys", n)
	}
	if _, err := v.Read(ctx, "/v1/kvbench/data/k7"); err != nil {
		t.Fatal(err)
	}
	if h := v.Header(); h.Get("X-Vault-Token") != secretToken || h.Get("Content-Type") != "application/json" {
		t.Errorf("Header() = %v", h)
	}
	if s := v.String(); strings.Contains(s, secretToken) {
		t.Errorf("String() shows the token: %q", s)
	}

	// Errors name the call and the server's answer, never the token.
	fake.mu.Lock()
	fake.writeFails = true
	fake.mu.Unlock()
	err := v.Preload(ctx, "kvbench", 10, 4, 2)
	if err == nil || !strings.Contains(err.Error(), "POST /v1/kvbench/data/k") || !strings.Contains(err.Error(), "status 500") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("failed write: err = %v", err)
	}
	if strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), unsealKey) {
		t.Errorf("error leaks a secret: %v", err)
	}
}

func TestVigilErrorsKeepSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"keys":["` + unsealKey + `"],"root_token":"` + secretToken + `"`)) // truncated JSON
	}))
	defer srv.Close()
	v := &Vigil{Base: srv.URL}
	err := v.InitUnseal(t.Context())
	if err == nil {
		t.Fatal("no error for a truncated init response")
	}
	if strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), unsealKey) {
		t.Errorf("error leaks a secret: %v", err)
	}

	srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := v.WaitHealthy(ctx, time.Minute); err == nil {
		t.Error("WaitHealthy succeeded with nothing listening")
	}
}

func TestForEach(t *testing.T) {
	var calls atomic.Int64
	seen := make([]atomic.Bool, 100)
	if err := ForEach(t.Context(), 100, 7, func(_ context.Context, i int) error {
		calls.Add(1)
		seen[i].Store(true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 100 {
		t.Errorf("%d calls, want 100", calls.Load())
	}
	for i := range seen {
		if !seen[i].Load() {
			t.Errorf("%d not called", i)
		}
	}

	boom := errors.New("boom")
	calls.Store(0)
	err := ForEach(t.Context(), 1_000_000, 4, func(_ context.Context, i int) error {
		calls.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if calls.Load() == 1_000_000 {
		t.Error("ForEach went on after the error")
	}
}
