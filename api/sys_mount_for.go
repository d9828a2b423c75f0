package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// PathMount is the mount that owns a path, as sys/internal/ui/mounts/<path>
// reports it.
type PathMount struct {
	// Path is the mount path with a trailing slash ("secret/",
	// "auth/approle/"); empty when the server did not say.
	Path string
	// Type is the engine type ("kv", "database").
	Type string
	// Options are the mount's options; KV mounts have "version".
	Options map[string]string
}

// KVv2 reports whether the mount is a KV version 2 engine. Vault's
// clients also check the version alone (the type of a KV mount may be
// "kv" or "generic"), so a mount whose type is not known counts too.
func (m *PathMount) KVv2() bool {
	if m == nil {
		return false
	}
	return m.Options["version"] == "2" && (m.Type == "" || m.Type == "kv" || m.Type == "generic")
}

// Relative returns full (a path under the mount, "secret/app/db") with the
// mount path taken off ("app/db"); the mount itself gives "". A path not
// under the mount is returned as is.
func (m *PathMount) Relative(full string) string {
	if m == nil || m.Path == "" {
		return full
	}
	switch {
	case full+"/" == m.Path || full == m.Path:
		return ""
	case strings.HasPrefix(full, m.Path):
		return strings.TrimPrefix(full, m.Path)
	}
	return full
}

// MountFor asks which mount owns path (GET sys/internal/ui/mounts/<path>),
// the preflight the Vault CLI's kv commands and Vault Agent's templates
// make to tell KV v2 from v1. A server without the endpoint (404) gives
// (nil, nil): callers then treat the path as a plain (KV v1) path. The
// server answers 403 for a path the token may not use at all.
func (s *Sys) MountFor(ctx context.Context, path string) (*PathMount, error) {
	path = strings.TrimLeft(path, "/")
	resp, err := s.c.Do(ctx, http.MethodGet, "sys/internal/ui/mounts/"+path, nil, nil)
	if StatusCode(err) == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sec, err := resp.Secret()
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	m := &PathMount{Options: map[string]string{}}
	m.Path, _ = sec.Data["path"].(string)
	if m.Path != "" && !strings.HasSuffix(m.Path, "/") {
		m.Path += "/"
	}
	m.Type, _ = sec.Data["type"].(string)
	if opts, ok := sec.Data["options"].(map[string]any); ok {
		for k, v := range opts {
			if v != nil {
				m.Options[k] = fmt.Sprint(v)
			}
		}
	}
	return m, nil
}
