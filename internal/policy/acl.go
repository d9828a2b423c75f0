package policy

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// ACL is the compiled, read-only union of a token's policies. It is safe
// for concurrent use; build a new one when a policy changes. A nil or zero
// ACL denies everything.
type ACL struct {
	root bool
	// exact holds the exact rules by path.
	exact map[string]*rule
	// tree holds the prefix and segment-wildcard rules (see [node]).
	tree *node
	// skipped counts templated rules that could not be resolved.
	skipped int
}

// ruleKind says how a rule's pattern matches.
type ruleKind uint8

const (
	kindExact   ruleKind = iota // matches one path
	kindPrefix                  // literal text then '*': every path starting with it
	kindSegment                 // holds "+" segments, optionally ending in '*'
)

// rule is one merged path rule, ready to evaluate.
type rule struct {
	pattern string // as written (resolved templates substituted)
	kind    ruleKind
	caps    Capability

	// Matching and priority (non-exact rules).
	stem      string   // pattern without its trailing '*'
	segs      []string // stem split on '/' (segment rules)
	prefix    bool     // the pattern ends in '*'
	firstWild int      // offset of the first "+" segment, or of the '*'
	wildSeg   int      // index in segs of the first "+" segment
	wildcards int      // number of "+" segments

	// eventTypes are the subscribe_event_types patterns.
	eventTypes []string

	// Constraints.
	minWrap, maxWrap time.Duration
	required         []string
	allowed, denied  map[string][]glob
	allowedAny       bool // allowed has "*": names not listed are allowed
	deniedAll        bool // denied has "*": any parameter denies
}

// CompileOptions tunes [CompileWith].
type CompileOptions struct {
	// Templater resolves identity templates in rule paths. Without one,
	// every templated rule is skipped as unresolvable.
	Templater Templater
}

// Compile merges policies into one ACL without identity templating. See
// [CompileWith].
func Compile(policies ...*Policy) (*ACL, error) {
	return CompileWith(CompileOptions{}, policies...)
}

// CompileWith merges policies into one ACL. Nil policies are ignored. The
// policy named "root" yields the root ACL and cannot be combined with any
// other ([ErrRootCombined]). Rules with the same path (after template
// substitution) are merged:
//   - capabilities are united, unless one of them is deny: then the rule is
//     deny alone and its other constraints are dropped;
//   - allowed_parameters and denied_parameters lists are concatenated per
//     name, and an empty list (any value) in either wins;
//   - required_parameters and subscribe_event_types are united;
//   - for min_wrapping_ttl and max_wrapping_ttl the smaller non-zero value
//     wins.
//
// Templated rules that cannot be resolved are skipped.
func CompileWith(opts CompileOptions, policies ...*Policy) (*ACL, error) {
	n, root := 0, false
	for _, p := range policies {
		if p == nil {
			continue
		}
		n++
		root = root || p.Name == RootName
	}
	if root {
		if n > 1 {
			return nil, ErrRootCombined
		}
		return Root(), nil
	}

	a := &ACL{exact: map[string]*rule{}, tree: &node{}}
	merged := map[string]*PathRule{}
	var order []string
	for _, p := range policies {
		if p == nil {
			continue
		}
		for i := range p.Rules {
			pr := &p.Rules[i]
			path := pr.Path
			if pr.Templated {
				resolved, ok := resolveTemplates(path, opts.Templater)
				if !ok {
					a.skipped++
					continue
				}
				path = resolved
			}
			if m, ok := merged[path]; ok {
				mergeRule(m, pr)
				continue
			}
			c := *pr // shallow: mergeRule never writes into shared maps or slices
			c.Path = path
			merged[path] = &c
			order = append(order, path)
		}
	}
	for _, path := range order {
		a.add(newRule(merged[path]))
	}
	return a, nil
}

// Root returns the ACL of a root token: everything is allowed, sudo
// included.
func Root() *ACL { return &ACL{root: true} }

// IsRoot reports whether a is the root ACL.
func (a *ACL) IsRoot() bool { return a != nil && a.root }

// Skipped returns how many templated rules were left out because their
// templates could not be resolved.
func (a *ACL) Skipped() int {
	if a == nil {
		return 0
	}
	return a.skipped
}

func (a *ACL) add(r *rule) {
	switch r.kind {
	case kindExact:
		a.exact[r.pattern] = r
	case kindPrefix:
		a.tree.at(r.stem).prefix = r
	case kindSegment:
		n := a.tree.at(r.stem[:r.firstWild])
		n.wild = append(n.wild, r)
	}
}

// mergeRule merges src into dst (same path). It builds new maps and slices
// rather than writing into dst's, which may belong to a parsed policy.
func mergeRule(dst, src *PathRule) {
	dst.Templated = dst.Templated || src.Templated
	if dst.Comment == "" {
		dst.Comment = src.Comment
	}
	if len(src.MFAMethods) > 0 {
		m := slices.Clone(dst.MFAMethods)
		for _, x := range src.MFAMethods {
			m = appendUnique(m, x)
		}
		dst.MFAMethods = m
	}
	switch {
	case dst.Capabilities&Deny != 0:
		return
	case src.Capabilities&Deny != 0:
		dst.Capabilities = Deny
		dst.dropConstraints()
		return
	}
	dst.Capabilities |= src.Capabilities
	dst.MinWrappingTTL = minNonZero(dst.MinWrappingTTL, src.MinWrappingTTL)
	dst.MaxWrappingTTL = minNonZero(dst.MaxWrappingTTL, src.MaxWrappingTTL)
	dst.AllowedParameters = mergeParams(dst.AllowedParameters, src.AllowedParameters)
	dst.DeniedParameters = mergeParams(dst.DeniedParameters, src.DeniedParameters)
	if len(src.RequiredParameters) > 0 {
		req := slices.Clone(dst.RequiredParameters)
		for _, x := range src.RequiredParameters {
			req = appendUnique(req, x)
		}
		dst.RequiredParameters = req
	}
	if len(src.SubscribeEventTypes) > 0 {
		types := slices.Clone(dst.SubscribeEventTypes)
		for _, x := range src.SubscribeEventTypes {
			types = appendUnique(types, x)
		}
		dst.SubscribeEventTypes = types
	}
}

func minNonZero(a, b time.Duration) time.Duration {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// mergeParams merges parameter constraints. A rule without constraints
// (nil or empty map) adds none; otherwise the value lists are merged per
// name by [mergeValues].
func mergeParams(a, b map[string][]string) map[string][]string {
	if len(b) == 0 {
		return a
	}
	out := make(map[string][]string, len(a)+len(b))
	maps.Copy(out, a)
	for name, vals := range b {
		old, had := out[name]
		out[name] = mergeValues(old, had, vals)
	}
	return out
}

// newRule compiles a merged path rule.
func newRule(pr *PathRule) *rule {
	r := &rule{pattern: pr.Path, caps: pr.Capabilities.Normalize()}
	r.stem, r.prefix = strings.CutSuffix(pr.Path, "*")
	r.segs = strings.Split(r.stem, "/")
	r.firstWild = -1
	off := 0
	for i, s := range r.segs {
		if s == "+" {
			if r.wildcards == 0 {
				r.firstWild, r.wildSeg = off, i
			}
			r.wildcards++
		}
		off += len(s) + 1
	}
	switch {
	case r.wildcards > 0:
		r.kind = kindSegment
	case r.prefix:
		r.kind = kindPrefix
		r.firstWild = len(r.stem)
		r.segs = nil
	default:
		r.kind = kindExact
		r.stem, r.segs = "", nil
	}
	if r.caps == Deny {
		return r
	}
	r.eventTypes = pr.SubscribeEventTypes
	r.minWrap, r.maxWrap = pr.MinWrappingTTL, pr.MaxWrappingTTL
	r.required = pr.RequiredParameters
	r.allowed = compileParams(pr.AllowedParameters)
	r.denied = compileParams(pr.DeniedParameters)
	_, r.allowedAny = r.allowed["*"]
	_, r.deniedAll = r.denied["*"]
	return r
}

func compileParams(m map[string][]string) map[string][]glob {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string][]glob, len(m))
	for name, vals := range m {
		gs := make([]glob, len(vals))
		for i, v := range vals {
			gs[i] = newGlob(v)
		}
		out[name] = gs
	}
	return out
}

// outranks reports whether non-exact rule r has a higher priority than o
// when both match a path. The tie-breakers, in order:
//  1. the later first wildcard ("+" or the trailing '*') wins;
//  2. a rule not ending in '*' beats one that does;
//  3. fewer "+" segments win;
//  4. the longer pattern wins;
//  5. the lexicographically greater pattern wins.
func (r *rule) outranks(o *rule) bool {
	switch {
	case r.firstWild != o.firstWild:
		return r.firstWild > o.firstWild
	case r.prefix != o.prefix:
		return !r.prefix
	case r.wildcards != o.wildcards:
		return r.wildcards < o.wildcards
	case len(r.stem) != len(o.stem):
		return len(r.stem) > len(o.stem)
	}
	return r.stem > o.stem
}

// matchTail reports whether segment rule r matches a path whose first
// r.firstWild bytes (the rule's literal head, up to its first "+" segment)
// are already known to match; tail is the rest of the path. Each "+"
// matches exactly one segment (which may be empty), other segments must be
// equal, and with a trailing '*' the last segment need only be a prefix of
// the path's segment, whatever follows.
func (r *rule) matchTail(tail string) bool {
	segs := r.segs[r.wildSeg:]
	for i, seg := range segs {
		part, more := tail, false
		if j := strings.IndexByte(tail, '/'); j >= 0 {
			part, tail, more = tail[:j], tail[j+1:], true
		}
		last := i == len(segs)-1
		switch {
		case seg == "+":
		case last && r.prefix:
			if !strings.HasPrefix(part, seg) {
				return false
			}
		case part != seg:
			return false
		}
		if last {
			return r.prefix || !more
		}
		if !more {
			return false
		}
	}
	return false
}
