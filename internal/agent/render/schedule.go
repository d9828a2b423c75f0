package render

import (
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/kvpath"
	"github.com/vigil-secrets/vigil/internal/agent/template"
)

// depState is a secret (or file) on the schedule: what was last got, the
// templates that used it, and what to do next and when.
type depState struct {
	dep   template.Dependency
	users map[*unit]bool

	action template.Action
	// due is when action is due; zero while nothing is scheduled (a
	// renewal is under way, or the answer was forgotten and the next
	// render fetches it again).
	due time.Time
	// stale: the cached answer was forgotten; the next render that
	// reports the dependency got it anew, and plans it again.
	stale    bool
	renewing bool
	// failures counts consecutive renewals that could not reach the
	// server.
	failures int

	// mount owns the path (nil when unknown: the path is then compared as
	// written), and name is the secret's name on it (kvpath.Name).
	mount *api.PathMount
	name  string
}

// plan schedules the dependency's next action from now.
func (s *depState) plan(now time.Time, interval time.Duration) {
	action, after := s.dep.Plan(interval)
	s.action, s.due = action, now.Add(after)
	s.stale = false
}

// rereadable reports whether a hint may make the dependency be read
// again: never a write (it would issue something new) or a lease (it
// would issue new credentials; leases are renewed instead).
func (s *depState) rereadable() bool {
	return s.dep.Kind != template.KindWrite && s.dep.LeaseID == "" && !s.renewing
}

// matches reports whether a hinted API path (an event's data_path)
// names this dependency's secret, however the template spelled it: the
// same secret for a read, a secret under the directory for a list.
func (s *depState) matches(hint string) bool {
	if !s.rereadable() {
		return false
	}
	var h string
	switch s.dep.Kind {
	case template.KindRead, template.KindList:
		h = kvpath.Name(s.mount, hint)
	default:
		return false
	}
	if s.dep.Kind == template.KindRead {
		return h == s.name
	}
	return strings.HasPrefix(h, s.name+"/")
}

// secretPath is the path a dependency's secret is known by to the
// resolver: without a read's query.
func secretPath(d template.Dependency) string {
	p, _, _ := strings.Cut(d.Path, "?")
	return strings.Trim(p, "/")
}
