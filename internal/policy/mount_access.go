package policy

import "strings"

// CanReachMount reports whether the ACL grants anything at or beneath a
// mount: the question of the KV CLI's preflight (sys/internal/ui/mounts),
// which must answer for a token whose policy names only paths deep inside
// the mount ("secret/data/app/*" for the mount "secret/"). mountPath is
// the mount's path with its trailing '/'.
//
// It is true when the rule governing the mount path itself grants a
// capability, or when any rule whose pattern could match a path under the
// mount grants one. Deny rules grant nothing.
func (a *ACL) CanReachMount(mountPath string) bool {
	if a == nil {
		return false
	}
	if a.root {
		return true
	}
	mountPath = trimSlashes(mountPath)
	if r := a.lookup(mountPath, true); grants(r) {
		return true
	}
	for p, r := range a.exact {
		if grants(r) && strings.HasPrefix(p, mountPath) {
			return true
		}
	}
	return a.tree != nil && a.tree.reachesUnder(mountPath)
}

// grants reports whether r grants a capability: it exists and is not deny.
func grants(r *rule) bool {
	return r != nil && r.caps&Granting != 0 && !r.caps.Has(Deny)
}

// reachesUnder reports whether a granting non-exact rule in the subtree
// could match a path beginning with mountPath.
func (n *node) reachesUnder(mountPath string) bool {
	var walk func(n *node, key string) bool
	walk = func(n *node, key string) bool {
		key += n.label
		// The rules here have key as their literal head: a prefix rule
		// reaches the mount when its stem runs inside the mount or the
		// mount inside it; a segment rule when its segments agree with
		// the mount's.
		if r := n.prefix; grants(r) && (strings.HasPrefix(r.stem, mountPath) || strings.HasPrefix(mountPath, r.stem)) {
			return true
		}
		for _, r := range n.wild {
			if grants(r) && r.couldMatchUnder(mountPath) {
				return true
			}
		}
		for _, c := range n.kids {
			// Below a key that has left the mount's path, nothing can
			// come back to it.
			k := key + c.label
			if strings.HasPrefix(k, mountPath) || strings.HasPrefix(mountPath, k) || n.hasWildBelow(c) {
				if walk(c, key) {
					return true
				}
			}
		}
		return false
	}
	return walk(n, "")
}

// hasWildBelow is true when c's subtree may hold segment rules, whose
// "+" can stand for any part of the mount path even where c's literal key
// differs from it: such subtrees are always searched. Literal keys of
// segment rules end in '/', before the "+".
func (n *node) hasWildBelow(c *node) bool {
	if len(c.wild) > 0 {
		return true
	}
	for _, k := range c.kids {
		if n.hasWildBelow(k) {
			return true
		}
	}
	return false
}

// couldMatchUnder reports whether segment rule r matches some path that
// begins with mountPath ("secret/"): segment by segment over the mount's
// segments, "+" matches anything and other segments must be equal (the
// last only a prefix when the rule ends in '*').
func (r *rule) couldMatchUnder(mountPath string) bool {
	ms := strings.Split(strings.TrimSuffix(mountPath, "/"), "/")
	for i, m := range ms {
		if i >= len(r.segs) {
			return false
		}
		seg := r.segs[i]
		last := i == len(r.segs)-1
		switch {
		case seg == "+":
		case last && r.prefix:
			return strings.HasPrefix(m, seg)
		case seg != m:
			return false
		}
		if last && !r.prefix && i < len(ms)-1 {
			return false // the rule ends before the mount path does
		}
	}
	return true
}
