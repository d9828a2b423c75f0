package secretenv

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/kvpath"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// DataError is a secret that cannot give the variables asked of it: not
// found, deleted, without the key. It names paths and keys only. Asking
// again will not help until someone writes the secret, so it matches
// [lifetime.ErrPermanent] (a first load fails at once).
type DataError struct {
	Path string
	Msg  string
}

func (e *DataError) Error() string { return e.Path + ": " + e.Msg }

// Is makes a DataError match lifetime.ErrPermanent.
func (e *DataError) Is(target error) bool { return target == lifetime.ErrPermanent }

// Lease is the lease of a dynamic secret.
type Lease struct {
	// Path is the secret's path as the user wrote it.
	Path string
	// ID is the lease id (not a secret: it names the lease, as in
	// `vigil lease revoke`).
	ID        string
	TTL       time.Duration
	Renewable bool
}

// Options configures a [Set].
type Options struct {
	// Client reads the secrets. Its token is kept current by the caller
	// (the auth manager's OnToken).
	Client *api.Client
	// Logger receives messages (never a value); nil discards them.
	Logger *slog.Logger
}

type kind int

const (
	kindPlain  kind = iota // KV v1, or any other path read as it is
	kindKV2                // KV v2: the data and a version
	kindStatic             // static credentials: rotated in place
	kindLeased             // dynamic credentials under a lease
)

// staticVolatile are the keys of static credentials that change at every
// read (the time to the next rotation): not part of the fingerprint.
var staticVolatile = map[string]bool{"ttl": true}

// source is one secret and the specs that use it.
type source struct {
	path     string
	specs    []Spec
	resolved bool
	readPath string
	kv2      bool

	// What was last read, and what the child has been given.
	cur reading
}

// reading is one read of a source: its variables and what is known of
// its version or lease.
type reading struct {
	kind    kind
	version string                   // KV v2
	vars    map[string]secret.String // variable → value
	origin  map[string]string        // variable → the spec that sets it
	sum     [sha256.Size]byte        // fingerprint of the variables
	lease   Lease
}

// Set is the secrets behind an environment. Load reads them; Vars gives
// the variables; Check and Reissue read them again. Its methods are safe
// for concurrent use.
type Set struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	sources []*source
	retired []Lease
}

// New groups specs by secret (each secret is read once, so two -env of
// the same dynamic secret get one user) and checks that no variable is
// named twice by -env.
func New(specs []Spec, o Options) (*Set, error) {
	if len(specs) == 0 {
		return nil, errors.New("secretenv: no secret asked for (-env, -path or -env-file)")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{o: o, log: log}
	byPath := map[string]*source{}
	named := map[string]Spec{}
	for _, sp := range specs {
		if sp.Name != "" {
			if prev, ok := named[sp.Name]; ok {
				return nil, fmt.Errorf("secretenv: variable %s is set twice: by %s and by %s", sp.Name, prev, sp)
			}
			named[sp.Name] = sp
		}
		src := byPath[sp.Path]
		if src == nil {
			src = &source{path: sp.Path}
			byPath[sp.Path] = src
			s.sources = append(s.sources, src)
		}
		src.specs = append(src.specs, sp)
	}
	return s, nil
}

// Paths returns the secrets' paths as given, in order.
func (s *Set) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.sources))
	for i, src := range s.sources {
		out[i] = src.path
	}
	return out
}

// ReadPaths returns the paths the secrets are read at (KV v2 with
// "data/"), known after Load: what a change-event subscription watches.
func (s *Set) ReadPaths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sources))
	for _, src := range s.sources {
		if src.readPath != "" {
			out = append(out, src.readPath)
		}
	}
	return out
}

// Load reads every secret. A failure to reach the server is retried as
// ro says; anything else (a secret or key that does not exist, a refusal)
// is returned at once.
func (s *Set) Load(ctx context.Context, ro lifetime.RetryOptions) error {
	s.mu.Lock()
	sources := append([]*source(nil), s.sources...)
	s.mu.Unlock()
	readings := make([]reading, len(sources))
	for i, src := range sources {
		err := lifetime.Retry(ctx, ro, func(ctx context.Context) error {
			var err error
			readings[i], err = s.read(ctx, src)
			return err
		})
		if err != nil {
			// A first load leaves nothing behind.
			for _, r := range readings[:i] {
				if r.lease.ID != "" {
					_ = s.revoke(ctx, r.lease)
				}
			}
			return err
		}
	}
	next := map[*source]reading{}
	for i, src := range sources {
		next[src] = readings[i]
	}
	s.mu.Lock()
	err := s.checkNames(next)
	if err == nil {
		for src, r := range next {
			src.cur = r
		}
	}
	s.mu.Unlock()
	if err != nil {
		for _, r := range readings {
			if r.lease.ID != "" {
				s.revoke(ctx, r.lease)
			}
		}
	}
	return err
}

// checkNames fails when two specs set the same variable, with the
// readings in next replacing the current ones. Called with s.mu held.
func (s *Set) checkNames(next map[*source]reading) error {
	seen := map[string]string{}
	for _, src := range s.sources {
		r, ok := next[src]
		if !ok {
			r = src.cur
		}
		names := make([]string, 0, len(r.origin))
		for n := range r.origin {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if prev, ok := seen[n]; ok {
				return &DataError{Path: src.path, Msg: fmt.Sprintf("variable %s is set twice: by %s and by %s", n, prev, r.origin[n])}
			}
			seen[n] = r.origin[n]
		}
	}
	return nil
}

// resolve finds where src is read (the KV v2 data path, or the path as
// given) and whether it is on a KV v2 mount.
func (s *Set) resolve(ctx context.Context, src *source) (string, bool, error) {
	s.mu.Lock()
	done, rp, kv2 := src.resolved, src.readPath, src.kv2
	s.mu.Unlock()
	if done {
		return rp, kv2, nil
	}
	m, err := s.o.Client.Sys().MountFor(ctx, src.path)
	if err != nil {
		return "", false, fmt.Errorf("finding the mount of %s: %w", src.path, err)
	}
	rp, kv2 = src.path, m.KVv2() && m.Path != ""
	if kv2 {
		switch rel := m.Relative(src.path); {
		case rel == "" || rel == "data" || rel == "data/":
			return "", false, &DataError{Path: src.path, Msg: "is a KV mount, not a secret in it"}
		case rel == "metadata" || strings.HasPrefix(rel, "metadata/"):
			return "", false, &DataError{Path: src.path, Msg: "is KV v2 metadata, not a secret (drop metadata/)"}
		}
		// secret/app is read at secret/data/app; secret/data/app as is.
		rp = kvpath.Data(m, src.path)
	}
	s.mu.Lock()
	src.resolved, src.readPath, src.kv2 = true, rp, kv2
	s.mu.Unlock()
	return rp, kv2, nil
}

// read reads src once; it changes nothing but the source's read path.
func (s *Set) read(ctx context.Context, src *source) (reading, error) {
	rp, kv2, err := s.resolve(ctx, src)
	if err != nil {
		return reading{}, err
	}
	sec, err := s.o.Client.Logical().Read(ctx, rp)
	if err != nil {
		return reading{}, fmt.Errorf("reading %s: %w", rp, err)
	}
	if sec == nil {
		return reading{}, &DataError{Path: rp, Msg: "no secret there"}
	}
	r := reading{kind: kindPlain}
	data := sec.Data
	if kv2 {
		r.kind = kindKV2
		meta, _ := sec.Data["metadata"].(map[string]any)
		if v, ok := meta["version"].(json.Number); ok {
			r.version = v.String()
		}
		d, ok := sec.Data["data"].(map[string]any)
		if !ok || d == nil {
			return reading{}, &DataError{Path: rp, Msg: fmt.Sprintf("version %s is deleted or destroyed", orUnknown(r.version))}
		}
		data = d
	}
	switch {
	case sec.LeaseID != "":
		r.kind = kindLeased
		r.lease = Lease{Path: src.path, ID: sec.LeaseID, TTL: time.Duration(sec.LeaseDuration) * time.Second, Renewable: sec.Renewable}
	case r.kind == kindPlain && (data["last_vault_rotation"] != nil || data["rotation_period"] != nil):
		r.kind = kindStatic
	}
	if err := r.fill(src, rp, data); err != nil {
		if r.lease.ID != "" {
			s.revoke(ctx, r.lease)
		}
		return reading{}, err
	}
	return r, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// fill sets r's variables from data, as src's specs ask.
func (r *reading) fill(src *source, rp string, data map[string]any) error {
	r.vars = map[string]secret.String{}
	r.origin = map[string]string{}
	volatile := map[string]bool{}
	set := func(name, key, origin string, v any) error {
		if prev, ok := r.origin[name]; ok {
			return &DataError{Path: src.path, Msg: fmt.Sprintf("variable %s is set twice: by %s and by %s", name, prev, origin)}
		}
		val, err := stringify(v)
		if err != nil {
			return &DataError{Path: rp, Msg: fmt.Sprintf("key %q: %v", key, err)}
		}
		r.vars[name] = val
		r.origin[name] = origin
		if r.kind == kindStatic && staticVolatile[key] {
			volatile[name] = true
		}
		return nil
	}
	for _, sp := range src.specs {
		if sp.Name != "" {
			v, ok := data[sp.Key]
			if !ok {
				return &DataError{Path: rp, Msg: fmt.Sprintf("no key %q (it has %s)", sp.Key, keyList(data))}
			}
			if err := set(sp.Name, sp.Key, sp.String(), v); err != nil {
				return err
			}
			continue
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := set(VarName(k), k, fmt.Sprintf("%s (key %q)", sp, k), data[k]); err != nil {
				return err
			}
		}
	}
	h := sha256.New()
	names := make([]string, 0, len(r.vars))
	for n := range r.vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if volatile[n] {
			continue
		}
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(r.vars[n].Reveal()))
		h.Write([]byte{0})
	}
	h.Sum(r.sum[:0])
	return nil
}

func keyList(data map[string]any) string {
	if len(data) == 0 {
		return "no keys"
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, strconv.Quote(k))
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// stringify turns a value of the secret's data into a variable's value:
// strings as they are, numbers and booleans as JSON writes them, null as
// "", objects and lists as JSON.
func stringify(v any) (secret.String, error) {
	switch x := v.(type) {
	case nil:
		return secret.String{}, nil
	case string:
		return secret.NewString(x), nil
	case json.Number:
		return secret.NewString(x.String()), nil
	case bool:
		return secret.NewString(strconv.FormatBool(x)), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return secret.String{}, errors.New("the value cannot be written as JSON")
	}
	return secret.NewString(string(b)), nil
}

// Vars returns the variables, NAME=value, sorted by name: the one place
// values are revealed, for the child's environment.
func (s *Set) Vars() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, src := range s.sources {
		for n, v := range src.cur.vars {
			out = append(out, n+"="+v.Reveal())
		}
	}
	sort.Strings(out)
	return out
}

// Names returns the variables' names, sorted.
func (s *Set) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, src := range s.sources {
		for n := range src.cur.vars {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Check reads again the secrets hint names (its path as given or as read;
// "" for all of them), except dynamic ones, and returns the paths whose
// variables changed; their new values become current. Secrets that could
// not be read keep their values, and the failures are returned joined
// (with the changes found among the others).
func (s *Set) Check(ctx context.Context, hint string) ([]string, error) {
	s.mu.Lock()
	var targets []*source
	for _, src := range s.sources {
		if src.cur.kind == kindLeased {
			continue
		}
		if hint == "" || hint == src.path || hint == src.readPath {
			targets = append(targets, src)
		}
	}
	s.mu.Unlock()
	var errs []error
	next := map[*source]reading{}
	for _, src := range targets {
		r, err := s.read(ctx, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.kind == kindLeased {
			// A path that now answers with a lease: keep the old
			// values, and give the new lease back.
			s.revoke(ctx, r.lease)
			errs = append(errs, &DataError{Path: src.path, Msg: "now answers with a lease; restart to use it"})
			continue
		}
		s.mu.Lock()
		same := r.sum == src.cur.sum
		s.mu.Unlock()
		if !same {
			next[src] = r
		}
	}
	if len(next) == 0 {
		return nil, errors.Join(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkNames(next); err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	var changed []string
	for _, src := range s.sources {
		r, ok := next[src]
		if !ok {
			continue
		}
		s.log.Info("secret changed", "path", src.path, "version", r.version, "variables", len(r.vars))
		src.cur = r
		changed = append(changed, src.path)
	}
	return changed, errors.Join(errs...)
}

// Leases returns the current leases of dynamic secrets.
func (s *Set) Leases() []Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Lease
	for _, src := range s.sources {
		if src.cur.lease.ID != "" {
			out = append(out, src.cur.lease)
		}
	}
	return out
}

func (s *Set) find(path string) *source {
	for _, src := range s.sources {
		if src.path == path {
			return src
		}
	}
	return nil
}

// RenewLease renews the current lease of the dynamic secret at path
// (sys/leases/renew, the role's default increment) and returns its new
// TTL.
func (s *Set) RenewLease(ctx context.Context, path string) (time.Duration, bool, error) {
	s.mu.Lock()
	src := s.find(path)
	var id string
	if src != nil {
		id = src.cur.lease.ID
	}
	s.mu.Unlock()
	if id == "" {
		return 0, false, &DataError{Path: path, Msg: "has no lease"}
	}
	sec, err := s.o.Client.Sys().LeaseRenew(ctx, id, 0)
	if err != nil {
		return 0, false, fmt.Errorf("renewing the lease of %s: %w", path, err)
	}
	if sec == nil {
		return 0, false, fmt.Errorf("renewing the lease of %s: no answer", path)
	}
	ttl := time.Duration(sec.LeaseDuration) * time.Second
	s.mu.Lock()
	if src.cur.lease.ID == id {
		src.cur.lease.TTL, src.cur.lease.Renewable = ttl, sec.Renewable
	}
	s.mu.Unlock()
	return ttl, sec.Renewable, nil
}

// Reissue reads the dynamic secret at path again, for new credentials
// under a new lease, which become current; the old lease is retired, to
// be revoked by RevokeRetired once the child that used it is gone.
func (s *Set) Reissue(ctx context.Context, path string) error {
	s.mu.Lock()
	src := s.find(path)
	s.mu.Unlock()
	if src == nil {
		return &DataError{Path: path, Msg: "is not one of the secrets"}
	}
	r, err := s.read(ctx, src)
	if err != nil {
		return err
	}
	s.mu.Lock()
	err = s.checkNames(map[*source]reading{src: r})
	if err == nil {
		if old := src.cur.lease; old.ID != "" {
			s.retired = append(s.retired, old)
		}
		src.cur = r
	}
	s.mu.Unlock()
	if err != nil {
		if r.lease.ID != "" {
			s.revoke(ctx, r.lease)
		}
		return err
	}
	s.log.Info("new credentials", "path", path, "lease_id", r.lease.ID, "ttl", r.lease.TTL)
	return nil
}

// RevokeRetired revokes the leases Reissue replaced. Leases it could not
// revoke because the server could not be reached are kept for the next
// call; the others are dropped (they expire on their own).
func (s *Set) RevokeRetired(ctx context.Context) {
	s.mu.Lock()
	old := s.retired
	s.retired = nil
	s.mu.Unlock()
	var keep []Lease
	for _, l := range old {
		if err := s.revoke(ctx, l); err != nil && lifetime.Temporary(err) && ctx.Err() == nil {
			keep = append(keep, l)
		}
	}
	s.mu.Lock()
	s.retired = append(s.retired, keep...)
	s.mu.Unlock()
}

// Close revokes every lease, the current ones and the retired ones, and
// returns those it could not revoke with why (the server is down, or the
// token's policy does not allow sys/leases/revoke, which Vault's and
// Vigil's default policy does not): they end with the token that got them,
// or at the end of their TTL.
func (s *Set) Close(ctx context.Context) map[Lease]error {
	s.mu.Lock()
	leases := s.retired
	s.retired = nil
	for _, src := range s.sources {
		if src.cur.lease.ID != "" {
			leases = append(leases, src.cur.lease)
			src.cur.lease = Lease{}
		}
	}
	s.mu.Unlock()
	var failed map[Lease]error
	for _, l := range leases {
		if err := s.revoke(ctx, l); err != nil {
			if failed == nil {
				failed = map[Lease]error{}
			}
			failed[l] = err
		}
	}
	return failed
}

func (s *Set) revoke(ctx context.Context, l Lease) error {
	err := s.o.Client.Sys().LeaseRevoke(ctx, l.ID, true)
	if err != nil {
		s.log.Debug("could not revoke a lease", "path", l.Path, "lease_id", l.ID, "error", err)
		return err
	}
	s.log.Debug("lease revoked", "path", l.Path, "lease_id", l.ID)
	return nil
}
