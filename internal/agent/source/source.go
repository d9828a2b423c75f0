// Package source reads the secrets of the agent's templates from the
// server: a [template.Source] over an [api.Client]. It handles KV version
// 2 paths as consul-template does, so that a template may name a KV v2
// secret by its API path (secret/data/app) or as the CLI does
// (secret/app), and list one as secret/ or secret/metadata/: the mount is
// asked of the server and data/ or metadata/ put in when missing, by the
// rules of [kvpath], which the source's [Source.Mounts] remembers (the
// runner reads them to match change events with templates).
//
// It holds no secrets of its own: answers go straight to the template
// that asked, and errors are the API's, which carry none.
package source

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/kvpath"
	"github.com/vigil-secrets/vigil/internal/agent/template"
)

// Source reads secrets through an api.Client, with the client's token
// (the agent's auto-auth token: set it on the client when it changes). It
// is safe for concurrent use.
type Source struct {
	client *api.Client
	mounts *kvpath.Resolver
}

// New returns a Source over c.
func New(c *api.Client) *Source {
	return &Source{client: c, mounts: kvpath.NewResolver(c)}
}

// Mounts returns the resolver that remembers the mounts of the paths the
// source has read: after a render, Mounts().Known(path) says where each of
// its secrets lives.
func (s *Source) Mounts() *kvpath.Resolver { return s.mounts }

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
	p = kvpath.Data(m, p)
	sec, err := s.client.Logical().ReadWithData(ctx, p, query)
	if err != nil {
		return nil, err
	}
	if sec == nil || (m.KVv2() && m.Path != "" && sec.Data["data"] == nil) {
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
	p = kvpath.Metadata(s.mount(ctx, p), p)
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

// mount finds the mount owning p. When the server cannot say (it cannot
// be reached, or the token may not ask), the path is used as written, as
// consul-template does; the next render asks again.
func (s *Source) mount(ctx context.Context, p string) *api.PathMount {
	m, err := s.mounts.Mount(ctx, p)
	if err != nil {
		return nil
	}
	return m
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
