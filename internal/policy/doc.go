// Package policy parses ACL policies written in Vault's policy language,
// merges a token's policies into one compiled [ACL], and decides requests
// against it. It is pure: it neither stores policies (a store above it
// does) nor knows tokens, identities or mounts, and it imports nothing of
// Vigil's.
//
//	path "secret/data/app/*"   { capabilities = ["read", "list"] }
//	path "secret/data/app/key" { capabilities = ["deny"] }
//	path "transit/encrypt/+"   { capabilities = ["update"] }
//
// # Rules
//
// A policy is a list of path rules, each a pattern and what it grants: a
// set of capabilities ([Capability]) and optional constraints on request
// parameters and on response wrapping. A pattern is one of three kinds:
//
//   - exact: "secret/foo" matches that path only;
//   - prefix: a trailing '*' matches any continuation, so "secret/foo*"
//     matches "secret/foo", "secret/food" and "secret/foo/bar"; a '*'
//     anywhere else is an ordinary character;
//   - segment wildcard: a segment that is exactly "+" matches any one
//     segment, so "secret/+/config" matches "secret/a/config" but not
//     "secret/a/b/config"; such a pattern may also end in '*' (but "+*" is
//     refused).
//
// Paths may hold identity templates ("{{identity.entity.id}}"), resolved
// per token by a [Templater] when the ACL is compiled; a rule whose
// templates cannot be resolved is left out, as if it were not written.
//
// # Merging
//
// [Compile] takes all of a token's policies. Rules with the same pattern
// are merged into one: capabilities are united, except that a deny on any
// of them makes the merged rule deny alone; parameter value lists are
// concatenated, an empty list ("any value") winning; required parameters
// are united; of two wrapping TTL bounds the smaller non-zero one wins.
// Rules with different patterns are never merged: at evaluation one rule
// decides alone.
//
// # Precedence
//
// For a request path, an exact rule wins outright. Otherwise the
// candidates are the longest matching prefix rule (shorter prefixes are
// not consulted, even if they grant more) and every matching segment
// rule, and the one with the highest priority decides. Between two
// candidates, in order:
//
//  1. the one whose first wildcard ("+" or the trailing '*') comes later
//     wins;
//  2. one not ending in '*' beats one that does;
//  3. fewer "+" segments win;
//  4. the longer pattern wins;
//  5. the lexicographically greater pattern wins (a tie-break only).
//
// List and scan requests (whose paths end in '/') also consider the path
// without its trailing '/': an exact rule for it, then the non-exact
// candidates for it, before those for the path itself. No matching rule
// means denied: access is denied by default.
//
// Deny is exact to its pattern: a deny on "secret/admins" does not cover
// "secret/admins/x", which "secret/*" may still allow.
//
// # Checks on the chosen rule
//
// The rule must grant the operation's capability; a deny rule grants
// nothing. When the caller marks the path root-protected, it must also
// grant sudo. Wrapping TTL bounds require the request to be wrapped within
// them. For read, create, update and patch, the parameters must satisfy
// required_parameters, denied_parameters and allowed_parameters (see
// [ACL.Allowed]); a request without parameters passes all but
// required_parameters. The root ACL ([Root]) allows everything.
//
// # Events
//
// A rule may list subscribe_event_types, Vault 1.16's key: patterns ('*'
// globs) of the change event types that a token may receive about the
// paths the rule matches, given the subscribe capability there. The
// package only reports a path's capabilities and patterns
// ([ACL.EventAccess]); which events a subscriber sees is the core's
// decision.
package policy
