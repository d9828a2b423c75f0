// Package source reads the secrets of the agent's templates from the
// server: a [template.Source] over an [api.Client]. It handles KV version
// 2 paths as consul-template does, so that a template may name a KV v2
// secret by its API path (secret/data/app) or as the CLI does
// (secret/app), and list one as secret/ or secret/metadata/: the mount's
// version is asked of the server (sys/internal/ui/mounts, the Vault CLI's
// preflight) and data/ or metadata/ put in when missing.
//
// It holds no secrets of its own: answers go straight to the template
// that asked, and errors are the API's, which carry none.
package source

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/template"
)

// Source reads secrets through an api.Client, with the client's token
// (the agent's auto-auth token: set it on the client when it changes). It
// is safe for concurrent use.
type Source struct {
	client *api.Client

	mu     sync.Mutex
	mounts map[string]mount
}

// mount is what the server said of the mount owning a path.
type mount struct {
	// path is the mount's path with a trailing slash, "" when the server
	// knows no mount there.
	path string
	v2   bool
}

// New returns a Source over c.
func New(c *api.Client) *Source {
	return &Source{client: c, mounts: map[string]mount{}}
}

// Read reads path, which may carry a query (secret/app?version=2). A KV
// v2 version that was deleted or destroyed is not found, as in
// consul-template.
func (s *Source) Read(ctx context.Context, path string) (*template.Secret, error) {
	p, rawQuery, _ := strings.Cut(path, "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("read %s: invalid query: %w", p, err)
	}
	m := s.mount(ctx, p)
	if m.v2 {
		p = kvPath(p, m.path, "data")
	}
	sec, err := s.client.Logical().ReadWithData(ctx, p, query)
	if err != nil {
		return nil, err
	}
	if sec == nil || (m.v2 && sec.Data["data"] == nil) {
		return nil, fmt.Errorf("read %s: %w", p, template.ErrNotFound)
	}
	return convert(sec), nil
}

// Write writes data to path and returns the server's answer.
func (s *Source) Write(ctx context.Context, path string, data map[string]string) (*template.Secret, error) {
	body := make(map[string]any, len(data))
	for k, v := range data {
		body[k] = v
	}
	sec, err := s.client.Logical().Write(ctx, path, body)
	if err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, fmt.Errorf("write %s: the server answered with nothing: %w", path, template.ErrNotFound)
	}
	return convert(sec), nil
}

// List lists the keys under path; nothing there is an empty list, as in
// consul-template.
func (s *Source) List(ctx context.Context, path string) ([]string, error) {
	p := strings.Trim(path, "/")
	if m := s.mount(ctx, p); m.v2 {
		p = kvPath(p, m.path, "metadata")
	}
	sec, err := s.client.Logical().List(ctx, p)
	if err != nil {
		return nil, err
	}
	keys := []string{}
	if sec == nil {
		return keys, nil
	}
	list, _ := sec.Data["keys"].([]any)
	for _, k := range list {
		if ks, ok := k.(string); ok {
			keys = append(keys, ks)
		}
	}
	return keys, nil
}

// mount finds the mount owning p and whether it is KV version 2,
// remembering the answer. When the server cannot say (no such endpoint,
// or the token may not ask), the path is used as written.
func (s *Source) mount(ctx context.Context, p string) mount {
	s.mu.Lock()
	m, ok := s.mounts[p]
	s.mu.Unlock()
	if ok {
		return m
	}
	resp, err := s.client.Do(ctx, http.MethodGet, "sys/internal/ui/mounts/"+p, nil, nil)
	switch {
	case api.StatusCode(err) == http.StatusNotFound:
		m = mount{}
	case err != nil:
		// Not remembered: the next render asks again.
		return mount{}
	default:
		sec, err := resp.Secret()
		if err != nil || sec == nil {
			return mount{}
		}
		mp, _ := sec.Data["path"].(string)
		typ, _ := sec.Data["type"].(string)
		opts, _ := sec.Data["options"].(map[string]any)
		if mp != "" && !strings.HasSuffix(mp, "/") {
			mp += "/"
		}
		m = mount{path: mp, v2: mp != "" && (typ == "kv" || typ == "generic") && fmt.Sprint(opts["version"]) == "2"}
	}
	s.mu.Lock()
	s.mounts[p] = m
	s.mu.Unlock()
	return m
}

// kvPath puts prefix (data or metadata) after the mount in p unless it is
// there: secret/app → secret/data/app, secret/data/app stays.
func kvPath(p, mountPath, prefix string) string {
	base := strings.TrimSuffix(mountPath, "/")
	if p == base {
		return base + "/" + prefix
	}
	rel, ok := strings.CutPrefix(p, mountPath)
	if !ok {
		return p
	}
	if rel == prefix || strings.HasPrefix(rel, prefix+"/") {
		return p
	}
	return mountPath + prefix + "/" + rel
}

// convert turns the API's secret into the template's.
func convert(s *api.Secret) *template.Secret {
	out := &template.Secret{
		RequestID:     s.RequestID,
		LeaseID:       s.LeaseID,
		LeaseDuration: s.LeaseDuration,
		Renewable:     s.Renewable,
		Data:          s.Data,
		Warnings:      s.Warnings,
	}
	if a := s.Auth; a != nil {
		out.Auth = &template.SecretAuth{
			ClientToken:   a.ClientToken,
			Accessor:      a.Accessor,
			Policies:      a.Policies,
			TokenPolicies: a.TokenPolicies,
			Metadata:      a.Metadata,
			LeaseDuration: a.LeaseDuration,
			Renewable:     a.Renewable,
			EntityID:      a.EntityID,
			Orphan:        a.Orphan,
		}
	}
	if w := s.WrapInfo; w != nil {
		out.WrapInfo = &template.SecretWrapInfo{
			Token:           w.Token,
			Accessor:        w.Accessor,
			TTL:             w.TTL,
			CreationTime:    w.CreationTime,
			CreationPath:    w.CreationPath,
			WrappedAccessor: w.WrappedAccessor,
		}
	}
	return out
}

var _ template.Source = (*Source)(nil)
