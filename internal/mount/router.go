package mount

import (
	"strings"
	"sync/atomic"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// Route is a mounted backend ready to serve.
type Route struct {
	Entry   *Entry
	Backend logical.Backend
	Storage logical.Storage
	// System is what the backend was given as its SystemView.
	System logical.SystemView
}

// Router finds the mount owning a path by longest prefix. Reads take no
// lock: the route set is an immutable map swapped atomically on change.
type Router struct {
	routes atomic.Pointer[map[string]*Route]
}

// NewRouter returns an empty router.
func NewRouter() *Router {
	r := &Router{}
	m := map[string]*Route{}
	r.routes.Store(&m)
	return r
}

// Replace installs a new route set (keyed by mount path with trailing '/').
func (r *Router) Replace(routes map[string]*Route) {
	r.routes.Store(&routes)
}

// Routes returns the current route set; callers must not modify it.
func (r *Router) Routes() map[string]*Route { return *r.routes.Load() }

// Match returns the route owning path and the path relative to the mount.
// "secret" and "secret/" both match the mount "secret/" with rest "".
func (r *Router) Match(path string) (route *Route, rest string, ok bool) {
	m := *r.routes.Load()
	// Try the path itself as a mount ("secret" → "secret/"), then every
	// '/'-terminated prefix from the longest.
	if !strings.HasSuffix(path, "/") {
		if rt, found := m[path+"/"]; found {
			return rt, "", true
		}
	}
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] != '/' {
			continue
		}
		if rt, found := m[path[:i+1]]; found {
			return rt, path[i+1:], true
		}
	}
	return nil, "", false
}
