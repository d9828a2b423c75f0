// Package kvpath says where the agent reads a secret that a user named by
// path, and which change events are about it. A KV version 2 secret has
// several API paths (secret/data/app for its data, secret/metadata/app
// for its versions and keys) and users name it either way, or as the CLI
// does (secret/app); Vault Agent and the Vault CLI ask the server which
// mount owns the path (sys/internal/ui/mounts, [api.Sys.MountFor]) and put
// data/ or metadata/ after the mount when it is missing. This package is
// that rule, written once for `vigil run` (secretenv), the template source
// and the template runner:
//
//   - [Resolver] asks which mount owns a path and remembers the answer;
//   - [Data] and [Metadata] give the path to read or list;
//   - [Name] gives a secret's name on its mount, the same for every
//     spelling, so that an event's data_path ("secret/data/app") can be
//     matched with a template's "secret/app".
//
// Paths on other mounts (KV version 1, database, anything else) are used
// as written. The package holds no secret: only mount paths and options.
package kvpath

import (
	"context"
	"strings"
	"sync"

	"github.com/vigil-secrets/vigil/api"
)

// Resolver finds the mount that owns each path, asking the server the first
// time and remembering the answer. It is safe for concurrent use.
type Resolver struct {
	c *api.Client

	mu    sync.Mutex
	known map[string]*api.PathMount
}

// NewResolver returns a Resolver that asks through c (with c's token at
// the time of each question).
func NewResolver(c *api.Client) *Resolver {
	return &Resolver{c: c, known: map[string]*api.PathMount{}}
}

// Mount returns the mount owning p. A nil mount and nil error mean the
// server does not say (it has no such endpoint): p is then a plain path.
// Answers are remembered; errors (the server cannot be reached, the token
// may not ask) are returned and not remembered, so the next call asks
// again.
func (r *Resolver) Mount(ctx context.Context, p string) (*api.PathMount, error) {
	p = clean(p)
	if m, ok := r.Known(p); ok {
		return m, nil
	}
	m, err := r.c.Sys().MountFor(ctx, p)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.known[p] = m
	r.mu.Unlock()
	return m, nil
}

// Known returns the remembered mount of p without asking; ok is false when
// the server has not answered for p yet.
func (r *Resolver) Known(p string) (m *api.PathMount, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok = r.known[clean(p)]
	return m, ok
}

// Data returns where the secret p is read: on a KV version 2 mount, p with
// data/ put after the mount unless it is there (secret/app and
// secret/data/app both give secret/data/app); anywhere else, p.
func Data(m *api.PathMount, p string) string { return under(m, clean(p), "data") }

// Metadata returns where the keys under p are listed: on a KV version 2
// mount, p with metadata/ put after the mount unless it is there
// (secret/ml gives secret/metadata/ml); anywhere else, p.
func Metadata(m *api.PathMount, p string) string { return under(m, clean(p), "metadata") }

// Name returns the secret's name on its mount, the same for each of its
// spellings: on a KV version 2 mount, p without the data/ or metadata/
// after the mount (secret/app, secret/data/app and secret/metadata/app all
// give secret/app); anywhere else, p. Two paths name the same secret when
// their Names are equal, and a secret is under a listed directory when its
// Name is under the directory's Name.
func Name(m *api.PathMount, p string) string {
	p = clean(p)
	if !m.KVv2() || m.Path == "" {
		return p
	}
	rel, ok := strings.CutPrefix(p+"/", m.Path)
	if !ok {
		return p
	}
	rel = strings.TrimSuffix(rel, "/")
	for _, part := range []string{"data", "metadata"} {
		if rel == part {
			rel = ""
			break
		}
		if rest, ok := strings.CutPrefix(rel, part+"/"); ok {
			rel = rest
			break
		}
	}
	return strings.TrimSuffix(m.Path+rel, "/")
}

// under puts part (data or metadata) after a KV version 2 mount in p
// unless it is there.
func under(m *api.PathMount, p, part string) string {
	if !m.KVv2() || m.Path == "" {
		return p
	}
	base := strings.TrimSuffix(m.Path, "/")
	if p == base {
		return base + "/" + part
	}
	rel, ok := strings.CutPrefix(p, m.Path)
	if !ok || rel == part || strings.HasPrefix(rel, part+"/") {
		return p
	}
	return m.Path + part + "/" + rel
}

// clean trims spaces and slashes, as templates and the CLI do: "/secret/
// app/" and "secret/app" are one path.
func clean(p string) string { return strings.Trim(strings.TrimSpace(p), "/") }
