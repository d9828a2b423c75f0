package policy

// Deny by default: a request is allowed only when a rule matches its path,
// that rule grants the operation's capability (and sudo when the caller
// says the path needs it), is not a deny rule, and every constraint of the
// rule holds. Any other outcome, including an operation this package does
// not know, is a denial.

import (
	"strings"
	"time"
)

// Operation is what a request does, for the ACL. Its values are the names
// of package logical's operations, so the pipeline converts with
// policy.Operation(req.Operation). Operations served through update in
// Vault (lease renew and revoke, rollback) are checked as [UpdateOperation]
// by the caller.
type Operation string

// The operations an ACL checks.
const (
	ReadOperation   Operation = "read"
	ListOperation   Operation = "list"
	CreateOperation Operation = "create"
	UpdateOperation Operation = "update"
	DeleteOperation Operation = "delete"
	PatchOperation  Operation = "patch"
	ScanOperation   Operation = "scan"
)

// Capability returns the capability op needs, or 0 for an unknown
// operation.
func (op Operation) Capability() Capability {
	switch op {
	case ReadOperation:
		return Read
	case ListOperation:
		return List
	case CreateOperation:
		return Create
	case UpdateOperation:
		return Update
	case DeleteOperation:
		return Delete
	case PatchOperation:
		return Patch
	case ScanOperation:
		return Scan
	}
	return 0
}

// checksParameters reports whether op is subject to parameter
// constraints: only operations that carry request data are.
func (op Operation) checksParameters() bool {
	switch op {
	case ReadOperation, CreateOperation, UpdateOperation, PatchOperation:
		return true
	}
	return false
}

// Request is what an ACL decides on.
type Request struct {
	// Operation is the operation asked for.
	Operation Operation
	// Path is the full request path without "/v1/" ("secret/data/app").
	// A list or scan path ends in '/'. Leading slashes are ignored.
	Path string
	// Data holds the request parameters by name. Parameter constraints
	// look at names and values; values never appear in a [Result].
	Data map[string]any
	// Sudo is set by the caller when the path is root-protected: the
	// matched rule must then also grant [Sudo].
	Sudo bool
	// WrapTTL is the response-wrapping TTL the request asks for, 0 when
	// it asks for none.
	WrapTTL time.Duration
}

// Result is an ACL's decision.
type Result struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Root reports that the ACL is root's (everything is allowed).
	Root bool
	// Capabilities is the set of the rule that decided, 0 when no rule
	// matched; [Granting] for root.
	Capabilities Capability
	// Rule is the pattern of the rule that decided, "" when none matched.
	Rule string
	// Reason says why the request was denied, for logs. It names
	// capabilities and parameter names, never parameter values.
	Reason string
}

// Denial reasons that need no formatting.
const (
	reasonNoACL       = "no ACL"
	reasonNoRule      = "no policy rule matches the path"
	reasonUnsupported = "operation is not subject to ACL checks"
	reasonDenyRule    = "the matching rule denies access"
	reasonSudo        = "the path requires sudo, which the matching rule does not grant"
	reasonWrapMissing = "the matching rule requires response wrapping"
	reasonWrapHigh    = "the requested wrapping TTL exceeds the rule's max_wrapping_ttl"
	reasonWrapLow     = "the requested wrapping TTL is below the rule's min_wrapping_ttl"
	reasonWrapBounds  = "the merged min_wrapping_ttl exceeds max_wrapping_ttl"
	reasonAllDenied   = "the matching rule denies all parameters"
)

func reasonMissingCap(c Capability) string {
	switch c {
	case Read:
		return "the matching rule does not grant read"
	case List:
		return "the matching rule does not grant list"
	case Create:
		return "the matching rule does not grant create"
	case Update:
		return "the matching rule does not grant update"
	case Delete:
		return "the matching rule does not grant delete"
	case Patch:
		return "the matching rule does not grant patch"
	case Scan:
		return "the matching rule does not grant scan"
	}
	return "the matching rule does not grant " + c.String()
}

// Allowed decides req. The rule for the path is chosen as follows:
//
//  1. An exact rule for the path wins; for list and scan, so does an exact
//     rule for the path without its trailing '/'.
//  2. Otherwise the candidates are the longest matching prefix rule (only
//     that one) and every matching segment-wildcard rule, and the highest
//     priority candidate wins (see the package documentation). For list
//     and scan of a path ending in '/', the path without the '/' is tried
//     first, as Vault does, then the path itself.
//  3. No rule means denied.
//
// The chosen rule must then grant the operation's capability (and sudo
// when req.Sudo) and not be a deny rule. If it bounds the wrapping TTL,
// the request must be wrapped with a TTL within the bounds.
//
// For read, create, update and patch it must also accept the parameters,
// whose names are compared case-insensitively:
//   - every required parameter must be present; after that, a request
//     without parameters passes;
//   - a denied "*" denies any parameter; a denied name with no values
//     denies any value, otherwise a value matching a listed one denies (for
//     a list value, or a string read as a comma-separated list, any element
//     matching denies);
//   - when allowed parameters are set, every parameter must be listed by
//     name or covered by "*", and a name with listed values must have a
//     value matching one of them (for a list value, or a comma-separated
//     string, every element must match).
//
// Listed values may begin and/or end with '*' to match any text there, and
// "*" alone matches any value. Scalars compare in text form, numbers in
// shortest decimal form, so 5, 5.0 and "5" are one value.
func (a *ACL) Allowed(req Request) Result {
	if a == nil {
		return Result{Reason: reasonNoACL}
	}
	if a.root {
		return Result{Allowed: true, Root: true, Capabilities: Granting}
	}
	need := req.Operation.Capability()
	if need == 0 {
		return Result{Reason: reasonUnsupported}
	}
	r := a.lookup(trimSlashes(req.Path), req.Operation == ListOperation || req.Operation == ScanOperation)
	if r == nil {
		return Result{Reason: reasonNoRule}
	}
	res := Result{Capabilities: r.caps, Rule: r.pattern}
	switch {
	case r.caps&Deny != 0:
		res.Reason = reasonDenyRule
	case r.caps&need == 0:
		res.Reason = reasonMissingCap(need)
	case req.Sudo && r.caps&Sudo == 0:
		res.Reason = reasonSudo
	default:
		res.Reason = r.checkWrapping(req.WrapTTL)
		if res.Reason == "" && req.Operation.checksParameters() {
			res.Reason = r.checkParams(req.Data)
		}
		res.Allowed = res.Reason == ""
	}
	return res
}

// Capabilities returns the sorted capability names the chosen rule grants
// on path, for sys/capabilities: ["deny"] when no rule matches or the rule
// denies, ["root"] for root. The rule is chosen as for a list request, so a
// rule on "secret/foo" also answers for "secret/foo/".
func (a *ACL) Capabilities(path string) []string {
	if a == nil {
		return []string{"deny"}
	}
	if a.root {
		return []string{RootCapability}
	}
	r := a.lookup(trimSlashes(path), true)
	if r == nil {
		return []string{"deny"}
	}
	return r.caps.Strings()
}

// EventAccess returns what the rule that governs path grants for change
// events about it: the rule's capabilities and its subscribe_event_types
// patterns ('*' globs, as written). The rule is chosen as for
// [ACL.Capabilities]. No rule, or a deny rule, grants nothing (0 or
// [Deny], and no patterns); root holds [Granting] and the pattern "*".
//
// The caller decides what the capabilities mean for an event: Vault
// delivers an event when the rule for its data path grants [Subscribe]
// and one of the patterns matches its type.
func (a *ACL) EventAccess(path string) (Capability, []string) {
	if a == nil {
		return 0, nil
	}
	if a.root {
		return Granting, []string{"*"}
	}
	r := a.lookup(trimSlashes(path), true)
	if r == nil {
		return 0, nil
	}
	if r.caps&Deny != 0 {
		return Deny, nil
	}
	return r.caps, r.eventTypes
}

func trimSlashes(p string) string {
	for p != "" && p[0] == '/' {
		p = p[1:]
	}
	return p
}

// lookup returns the rule that governs path, or nil.
func (a *ACL) lookup(path string, list bool) *rule {
	if r := a.exact[path]; r != nil {
		return r
	}
	if list {
		if t, ok := strings.CutSuffix(path, "/"); ok {
			if r := a.exact[t]; r != nil {
				return r
			}
			if r := a.nonExact(t); r != nil {
				return r
			}
		}
	}
	return a.nonExact(path)
}

// nonExact returns the highest priority rule among the longest prefix
// rule matching path and the segment rules matching it, or nil. One walk
// of the tree visits every node whose key is a prefix of path.
func (a *ACL) nonExact(path string) *rule {
	if a.tree == nil {
		return nil
	}
	var best, pfx *rule
	n, rest := a.tree, path
	for {
		if n.prefix != nil {
			pfx = n.prefix // deeper is longer
		}
		for _, w := range n.wild {
			// The node's key, w's head, is a prefix of path.
			if (best == nil || w.outranks(best)) && w.matchTail(rest) {
				best = w
			}
		}
		if rest == "" {
			break
		}
		c := n.child(rest[0])
		if c == nil || !strings.HasPrefix(rest, c.label) {
			break
		}
		n, rest = c, rest[len(c.label):]
	}
	if pfx != nil && (best == nil || pfx.outranks(best)) {
		best = pfx
	}
	return best
}

// checkWrapping checks the response-wrapping TTL against the rule's
// bounds: with either bound set, the request must be wrapped, within it.
func (r *rule) checkWrapping(ttl time.Duration) string {
	if r.minWrap == 0 && r.maxWrap == 0 {
		return ""
	}
	switch {
	case r.minWrap > 0 && r.maxWrap > 0 && r.maxWrap < r.minWrap:
		return reasonWrapBounds
	case ttl <= 0:
		return reasonWrapMissing
	case r.maxWrap > 0 && ttl > r.maxWrap:
		return reasonWrapHigh
	case r.minWrap > 0 && ttl < r.minWrap:
		return reasonWrapLow
	}
	return ""
}
