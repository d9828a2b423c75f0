package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/identity"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/policy"
)

// policyView is where ACL policies live behind the barrier, one entry per
// name.
const policyView = "sys/policy/"

// storedPolicy is a policy as persisted: the text exactly as submitted
// (the API returns it so), and when it last changed.
type storedPolicy struct {
	Name     string    `json:"name"`
	Text     string    `json:"policy"`
	Version  int       `json:"version"`
	Modified time.Time `json:"modified"`
}

// policyStore persists ACL policies and caches them twice: parsed by name,
// and compiled by policy set, since every request needs the ACL of its
// token's policies. Any change empties both caches: policies change
// rarely, and a stale grant must never outlive the change.
type policyStore struct {
	view logical.Storage
	now  func() time.Time
	// wrapping is the built-in response-wrapping policy.
	wrapping *policy.Policy

	// writeMu serializes writers (the version read, the write and the
	// cache drop); mu guards only the caches, so that no request's ACL
	// lookup waits for a policy's storage write.
	writeMu sync.Mutex

	mu     sync.RWMutex
	parsed map[string]*policy.Policy // by name; nil records a known miss
	acls   map[string]compiledSet    // by setKey, without identity
	// entityACLs are ACLs compiled for an entity (templated policies, or
	// the entity's own policies).
	entityACLs map[entityACLKey]*policy.ACL
	// gen counts changes, so that a read that raced a change does not
	// fill the cache with what the change replaced: a change is stored
	// first, then counted, so a reader that saw the old text also sees
	// the count move.
	gen uint64
}

func newPolicyStore(view logical.Storage, now func() time.Time) *policyStore {
	return &policyStore{
		view:       view,
		now:        now,
		parsed:     map[string]*policy.Policy{},
		acls:       map[string]compiledSet{},
		entityACLs: map[entityACLKey]*policy.ACL{},
		wrapping:   policy.ResponseWrapping(),
	}
}

// ensureDefault writes the built-in default policy if the store has none:
// at the first unseal after init, and after an upgrade from a build
// without policies.
func (ps *policyStore) ensureDefault(ctx context.Context) error {
	_, err := ps.view.Get(ctx, policy.DefaultName)
	if err == nil {
		return nil
	}
	if !errors.Is(err, logical.ErrNotFound) {
		return fmt.Errorf("core: read default policy: %w", err)
	}
	return ps.put(ctx, policy.DefaultName, policy.DefaultText)
}

// policyName normalizes a policy name from a request (lower case,
// trimmed), or answers 400 for a name that cannot be one.
func policyName(name string) (string, error) {
	n, err := policy.NormalizeName(name)
	if err != nil {
		return "", logical.BadRequest("%v", err)
	}
	return n, nil
}

// get returns the stored policy, or logical.ErrNotFound.
func (ps *policyStore) get(ctx context.Context, name string) (*storedPolicy, error) {
	var sp storedPolicy
	if err := readJSON(ctx, ps.view, name, &sp); err != nil {
		return nil, err
	}
	return &sp, nil
}

// readJSON decodes the JSON entry at key of view into v; a missing entry
// is an error wrapping logical.ErrNotFound.
func readJSON(ctx context.Context, view logical.Storage, key string, v any) error {
	raw, err := view.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("core: decode %q: %w", key, err)
	}
	return nil
}

// put parses text, stores it under name and drops every cached ACL.
func (ps *policyStore) put(ctx context.Context, name, text string) error {
	if err := policy.CheckWrite(name); err != nil {
		return logical.BadRequest("%v", err)
	}
	p, err := policy.Parse(name, text)
	if err != nil {
		// The error says "failed to parse policy: ..." with the line.
		return logical.BadRequest("%v", err)
	}
	ps.writeMu.Lock()
	defer ps.writeMu.Unlock()
	version := 1
	if old, err := ps.get(ctx, name); err == nil {
		version = old.Version + 1
	} else if !errors.Is(err, logical.ErrNotFound) {
		return err
	}
	raw, err := json.Marshal(storedPolicy{Name: name, Text: text, Version: version, Modified: ps.now().UTC()})
	if err != nil {
		return err
	}
	if err := ps.view.Put(ctx, name, raw); err != nil {
		return err
	}
	ps.mu.Lock()
	ps.invalidateLocked()
	ps.parsed[name] = p
	ps.mu.Unlock()
	return nil
}

// delete removes a policy. default and root cannot be deleted.
func (ps *policyStore) delete(ctx context.Context, name string) error {
	if err := policy.CheckDelete(name); err != nil {
		return logical.BadRequest("%v", err)
	}
	ps.writeMu.Lock()
	defer ps.writeMu.Unlock()
	if err := ps.view.Delete(ctx, name); err != nil {
		return err
	}
	ps.mu.Lock()
	ps.invalidateLocked()
	ps.mu.Unlock()
	return nil
}

func (ps *policyStore) invalidateLocked() {
	ps.gen++
	clear(ps.parsed)
	clear(ps.acls)
	clear(ps.entityACLs)
}

// list returns the stored policy names, sorted, then "root", which always
// exists and is never stored.
func (ps *policyStore) list(ctx context.Context) ([]string, error) {
	keys, err := ps.view.List(ctx, "")
	if err != nil {
		return nil, err
	}
	names := keys[:0]
	for _, k := range keys {
		if !strings.HasSuffix(k, "/") {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return append(names, policy.RootName), nil
}

// parsedPolicy returns the named policy parsed, or nil if it does not
// exist (a token may name a policy that was deleted or never written:
// Vault ignores such names).
func (ps *policyStore) parsedPolicy(ctx context.Context, name string) (*policy.Policy, error) {
	if name == policy.ResponseWrappingName {
		// Built in, never stored: only wrapping tokens carry it.
		return ps.wrapping, nil
	}
	ps.mu.RLock()
	p, ok := ps.parsed[name]
	gen := ps.gen
	ps.mu.RUnlock()
	if ok {
		return p, nil
	}
	sp, err := ps.get(ctx, name)
	switch {
	case errors.Is(err, logical.ErrNotFound):
		p = nil
	case err != nil:
		return nil, err
	default:
		if p, err = policy.Parse(name, sp.Text); err != nil {
			// Stored policies were parsed when written; one that no
			// longer parses is a bug or a tampered store, and grants
			// nothing.
			return nil, fmt.Errorf("core: stored policy %q does not parse: %w", name, err)
		}
	}
	ps.mu.Lock()
	if ps.gen == gen {
		ps.parsed[name] = p
	}
	ps.mu.Unlock()
	return p, nil
}

// acl returns the compiled ACL of a policy set without identity: its
// templated rules are skipped.
func (ps *policyStore) acl(ctx context.Context, names []string) (*policy.ACL, error) {
	return ps.aclFor(ctx, names, nil)
}

// maxEntityACLs bounds the cache of ACLs compiled for one entity; past it
// the cache starts over (a new entity costs one compilation).
const maxEntityACLs = 4096

// aclFor returns the compiled ACL of a token's policy names and, when the
// token has an entity, the entity's policies, with identity templates
// resolved for the entity. An ACL is cached by policy set and, when the
// set holds templates or the entity grants policies, by entity revision:
// an entity's change (a login recording new alias metadata) makes a new
// revision and so a new ACL.
func (ps *policyStore) aclFor(ctx context.Context, names []string, ent *identity.Entity) (*policy.ACL, error) {
	key := setKey(names)
	ps.mu.RLock()
	cs, ok := ps.acls[key]
	gen := ps.gen
	ps.mu.RUnlock()
	if !ok {
		var err error
		if cs, err = ps.compile(ctx, names, nil); err != nil {
			return nil, err
		}
		ps.mu.Lock()
		if ps.gen == gen {
			ps.acls[key] = cs
		}
		ps.mu.Unlock()
	}
	if ent == nil || (!cs.templated && len(ent.Policies) == 0) {
		return cs.acl, nil
	}
	all, allKey := names, key
	if len(ent.Policies) > 0 {
		all = append(slices.Clone(names), ent.Policies...)
		allKey = setKey(all)
	}
	ekey := entityACLKey{set: allKey, entity: ent.ID, rev: ent.Revision()}
	ps.mu.RLock()
	a, ok := ps.entityACLs[ekey]
	gen = ps.gen
	ps.mu.RUnlock()
	if ok {
		return a, nil
	}
	ecs, err := ps.compile(ctx, all, ent.Template)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	if ps.gen == gen {
		if len(ps.entityACLs) >= maxEntityACLs {
			clear(ps.entityACLs)
		}
		ps.entityACLs[ekey] = ecs.acl
	}
	ps.mu.Unlock()
	return ecs.acl, nil
}

// entityACLKey names an ACL compiled for one revision of an entity.
type entityACLKey struct {
	set    string
	entity string
	rev    uint64
}

// compiledSet is a policy set's ACL and whether any of its policies is
// templated (so that its ACL depends on the token's entity).
type compiledSet struct {
	acl       *policy.ACL
	templated bool
}

// compile parses and merges the named policies, resolving templates with
// t (nil: templated rules are skipped).
func (ps *policyStore) compile(ctx context.Context, names []string, t policy.Templater) (compiledSet, error) {
	if slices.Contains(names, policy.RootName) {
		return compiledSet{acl: policy.Root()}, nil
	}
	var cs compiledSet
	var pols []*policy.Policy
	for _, name := range names {
		p, err := ps.parsedPolicy(ctx, name)
		if err != nil {
			return cs, err
		}
		if p != nil {
			pols = append(pols, p)
			cs.templated = cs.templated || p.Templated
		}
	}
	a, err := policy.CompileWith(policy.CompileOptions{Templater: t}, pols...)
	if err != nil {
		return cs, fmt.Errorf("core: compile policies: %w", err)
	}
	cs.acl = a
	return cs, nil
}

// setKey names a policy set independently of order and duplicates.
func setKey(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	s := slices.Clone(names)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), "\x00")
}
