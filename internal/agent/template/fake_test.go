package template

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// fakeServer is a small stand-in for the server's HTTP API, with the
// response shapes Vault (and Vigil) give: KV v2 with data and metadata, KV
// v1, database credentials issued anew on every write-free read of
// database/creds, PKI-style writes, lists and a token creation.
type fakeServer struct {
	mu     sync.Mutex
	reads  map[string]*Secret
	lists  map[string][]string
	calls  []string
	issued int
	// fail, when set, is returned for every call.
	fail error
}

func num(s string) json.Number { return json.Number(s) }

func newFakeServer() *fakeServer {
	return &fakeServer{
		reads: map[string]*Secret{
			"secret/data/ml/db": {RequestID: "r1", Data: map[string]any{
				"data":     map[string]any{"host": "db.internal", "port": num("5432"), "password": "s3cr3t-Pa55"},
				"metadata": map[string]any{"version": num("3"), "created_time": "2026-01-02T03:04:05Z", "destroyed": false},
			}},
			"secret/data/ml/settings": {Data: map[string]any{
				"data": map[string]any{
					"name": "model-server", "port": num("8080"), "tags": []any{"gpu", "cpu"},
					"endpoints": []any{"https://a.internal/?x=1&y=2"},
					"raw":       `{"inner": {"value": "nested"}}`,
					"flat":      map[string]any{"a/b": "1", "a/c": "2", "d": "3"},
					"base":      map[string]any{"keep": "base", "deep": map[string]any{"x": "base"}},
					"override":  map[string]any{"keep": "over", "new": "over", "deep": map[string]any{"x": "over", "y": "over"}},
					"threshold": num("0.75"),
					"enabled":   true,
				},
				"metadata": map[string]any{"version": num("1")},
			}},
			"secret/data/ml/registry": {Data: map[string]any{"data": map[string]any{"password": "reg-pass"}}},
			"kv/app":                  {LeaseDuration: 2764800, Data: map[string]any{"api_key": "kv1-key-123"}},
			"database/static-creds/app": {Data: map[string]any{
				"username": "app", "password": "rotating-pw", "ttl": num("3600"), "rotation_period": num("86400"),
			}},
		},
		lists: map[string][]string{"secret/metadata/ml": {"settings", "db", "registry"}},
	}
}

func (f *fakeServer) record(op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+path)
	return f.fail
}

func (f *fakeServer) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeServer) Read(ctx context.Context, path string) (*Secret, error) {
	if err := f.record("read", path); err != nil {
		return nil, err
	}
	if strings.HasPrefix(path, "database/creds/") {
		f.mu.Lock()
		f.issued++
		n := f.issued
		f.mu.Unlock()
		return &Secret{
			LeaseID:       fmt.Sprintf("%s/lease-%d", path, n),
			LeaseDuration: 3600, Renewable: true,
			Data: map[string]any{"username": fmt.Sprintf("v-approle-readonly-%d", n), "password": fmt.Sprintf("A1a-generated-%d", n)},
		}, nil
	}
	s, ok := f.reads[path]
	if !ok {
		return nil, fmt.Errorf("read %s: %w", path, ErrNotFound)
	}
	return s, nil
}

func (f *fakeServer) Write(ctx context.Context, path string, data map[string]string) (*Secret, error) {
	if err := f.record("write", path); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.issued++
	n := f.issued
	f.mu.Unlock()
	switch {
	case strings.HasPrefix(path, "pki/issue/"):
		keys := slices.Sorted(maps.Keys(data))
		var args []string
		for _, k := range keys {
			args = append(args, k+"="+data[k])
		}
		return &Secret{
			LeaseID: fmt.Sprintf("%s/cert-%d", path, n), LeaseDuration: 259200,
			Data: map[string]any{
				"certificate":   "-----BEGIN CERTIFICATE-----\n" + strings.Join(args, ";") + "\n-----END CERTIFICATE-----",
				"private_key":   fmt.Sprintf("-----BEGIN EC PRIVATE KEY-----\nkey-%d\n-----END EC PRIVATE KEY-----", n),
				"serial_number": fmt.Sprintf("00:%02x", n),
			},
		}, nil
	case path == "auth/token/create":
		return &Secret{Auth: &SecretAuth{ClientToken: fmt.Sprintf("hvs.child-%d", n), Policies: []string{data["policies"]}, LeaseDuration: 3600, Renewable: true}}, nil
	}
	return nil, fmt.Errorf("write %s: %w", path, ErrNotFound)
}

func (f *fakeServer) List(ctx context.Context, path string) ([]string, error) {
	if err := f.record("list", path); err != nil {
		return nil, err
	}
	keys, ok := f.lists[path]
	if !ok {
		return nil, fmt.Errorf("list %s: %w", path, ErrNotFound)
	}
	return keys, nil
}

var _ Source = (*fakeServer)(nil)
