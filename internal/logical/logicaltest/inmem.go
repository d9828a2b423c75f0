// Package logicaltest provides an in-memory [logical.Storage] for the unit
// tests of mounts. It is imported only from _test.go files (the dependency
// test checks this).
package logicaltest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// Storage is a map-backed logical.Storage that also supports transactions.
type Storage struct {
	mu sync.RWMutex
	m  map[string][]byte
}

var _ logical.TransactionalStorage = (*Storage)(nil)

// New returns an empty Storage.
func New() *Storage { return &Storage{m: map[string][]byte{}} }

// Get implements logical.Storage.
func (s *Storage) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[key]
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key, logical.ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

// Put implements logical.Storage.
func (s *Storage) Put(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

// Delete implements logical.Storage.
func (s *Storage) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// List implements logical.Storage.
func (s *Storage) List(_ context.Context, prefix string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	for k := range s.m {
		if !strings.HasPrefix(k, prefix) || k == prefix {
			continue
		}
		rest := k[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		seen[rest] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// Transaction implements logical.TransactionalStorage.
func (s *Storage) Transaction(_ context.Context, ops []logical.StorageOp) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		if op.Delete {
			delete(s.m, op.Key)
		} else {
			s.m[op.Key] = append([]byte(nil), op.Value...)
		}
	}
	return nil
}

// Keys returns every stored key, sorted.
func (s *Storage) Keys() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.m))
	for k := range s.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Status returns the HTTP status and client message the HTTP layer sends
// for a mount's error (nil: 200), for tests that check a mount's answers
// without the server. For an error the HTTP layer answers with a bare 500
// (and logs), the message is the error's text, so that a failing test
// says why.
func Status(err error) (int, string) {
	var ce *logical.CodedError
	switch {
	case err == nil:
		return 200, ""
	case errors.As(err, &ce):
		return ce.Status, ce.Msg
	case errors.Is(err, logical.ErrNotFound):
		return 404, ""
	case errors.Is(err, logical.ErrPermissionDenied):
		return 403, "permission denied"
	case errors.Is(err, logical.ErrUnsupportedPath):
		return 404, "unsupported path"
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return 405, "unsupported operation"
	case errors.Is(err, logical.ErrInvalidRequest):
		return 400, err.Error()
	}
	return 500, err.Error()
}
