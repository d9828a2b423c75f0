package identity

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// entityPrefix is where entities live in the store's view, one key per
// entity id, its aliases inside.
const entityPrefix = "entity/"

// Limits on what a login may record, so that a method's bug cannot bloat
// the store (methods record far less).
const (
	maxAliasName     = 1024
	maxMetadataPairs = 64
	maxMetadataBytes = 8 << 10
)

// ErrInvalidLogin is returned by [Store.ForLogin] for an alias it cannot
// record: no name, no mount accessor, or metadata beyond the limits.
var ErrInvalidLogin = errors.New("identity: invalid login alias")

// Store holds the entities. It is safe for concurrent use.
type Store struct {
	view logical.Storage
	now  func() time.Time
	rev  atomic.Uint64

	// stripes serialize the changes (read, store, swap) of one
	// principal: a login locks the stripe of its alias, so that logins of
	// different workloads store concurrently (and share the storage's
	// group commits); an entity-wide change locks every stripe. mu guards
	// only the indexes, so that no reader waits on a storage write.
	stripes [64]sync.Mutex
	mu      sync.RWMutex
	byID    map[string]*Entity
	byName  map[string]*Entity
	aliases map[string]*Entity // alias id → its entity
	byAlias map[aliasKey]*Entity
	// names reserved by entities being created, not yet indexed.
	reserved map[string]bool
	// writing holds the principals whose entity is being stored.
	writing map[aliasKey]*pendingWrite
}

// aliasKey names an alias by what a login proves: the mount and the
// principal's name there.
type aliasKey struct{ accessor, name string }

// NewStore returns an empty store over view; call [Store.Load] before
// serving.
func NewStore(view logical.Storage, now func() time.Time) *Store {
	return &Store{
		view:     view,
		now:      now,
		byID:     map[string]*Entity{},
		byName:   map[string]*Entity{},
		aliases:  map[string]*Entity{},
		byAlias:  map[aliasKey]*Entity{},
		reserved: map[string]bool{},
		writing:  map[aliasKey]*pendingWrite{},
	}
}

// stripe returns the lock of the principal k.
func (s *Store) stripe(k aliasKey) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(k.accessor))
	h.Write([]byte{0})
	h.Write([]byte(k.name))
	return &s.stripes[h.Sum32()%uint32(len(s.stripes))]
}

// lockAll locks every stripe, in order, for a change that may touch any
// principal; it returns the unlock.
func (s *Store) lockAll() func() {
	for i := range s.stripes {
		s.stripes[i].Lock()
	}
	return func() {
		for i := range s.stripes {
			s.stripes[i].Unlock()
		}
	}
}

// Load reads every stored entity into memory.
func (s *Store) Load(ctx context.Context) error {
	ids, err := s.view.List(ctx, entityPrefix)
	if err != nil {
		return fmt.Errorf("identity: list entities: %w", err)
	}
	defer s.lockAll()()
	for _, id := range ids {
		if strings.HasSuffix(id, "/") {
			continue
		}
		raw, err := s.view.Get(ctx, entityPrefix+id)
		if errors.Is(err, logical.ErrNotFound) {
			continue // deleted since the list
		}
		if err != nil {
			return fmt.Errorf("identity: read entity %s: %w", id, err)
		}
		var e Entity
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("identity: decode entity %s: %w", id, err)
		}
		e.rev = s.rev.Add(1)
		s.mu.Lock()
		s.indexLocked(nil, &e)
		s.mu.Unlock()
	}
	return nil
}

// Login is the alias a login proved.
type Login struct {
	MountAccessor string
	MountPath     string
	MountType     string
	Name          string
	Metadata      map[string]string
}

func (l Login) check() error {
	switch {
	case l.MountAccessor == "":
		return fmt.Errorf("%w: no mount accessor", ErrInvalidLogin)
	case l.Name == "":
		return fmt.Errorf("%w: no alias name", ErrInvalidLogin)
	case len(l.Name) > maxAliasName:
		return fmt.Errorf("%w: alias name longer than %d bytes", ErrInvalidLogin, maxAliasName)
	case len(l.Metadata) > maxMetadataPairs:
		return fmt.Errorf("%w: more than %d metadata pairs", ErrInvalidLogin, maxMetadataPairs)
	}
	n := 0
	for k, v := range l.Metadata {
		n += len(k) + len(v)
	}
	if n > maxMetadataBytes {
		return fmt.Errorf("%w: metadata larger than %d bytes", ErrInvalidLogin, maxMetadataBytes)
	}
	return nil
}

// ForLogin returns the entity of the principal a login proved, creating
// the alias and a new entity at its first login, and recording the
// login's metadata and mount path on the alias when they changed. A login
// that changes nothing writes nothing.
//
// A new entity is stored before ForLogin returns: tokens will name it. A
// change of an existing alias takes effect in memory at once and is
// stored by one writer per principal: while a write of the principal is
// under way, other logins of it (a CI matrix of one repository, the
// replicas of a deployment) return without waiting, and the writer stores
// the latest state again when it is done. A crash can lose only the
// metadata of those logins, which the principal's next login records
// again.
func (s *Store) ForLogin(ctx context.Context, l Login) (*Entity, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	key := aliasKey{l.MountAccessor, l.Name}
	if e := s.byAliasKey(key); e != nil && current(e.AliasFor(l.MountAccessor), l) {
		return e, nil
	}
	for {
		if e, w := s.update(key, l); e != nil {
			if w == nil {
				return e, nil // unchanged, or the write under way stores it
			}
			return e, s.flush(ctx, key, w)
		}
		e, err := s.create(ctx, key, l)
		if !errors.Is(err, errExists) {
			return e, err
		}
		// Another login created it meanwhile: record this one on it.
	}
}

// errExists tells ForLogin that the entity it was about to create exists.
var errExists = errors.New("identity: the entity exists")

// pendingWrite is the write of one principal's entity under way; dirty
// reports a change made in memory since the writer read the entity.
type pendingWrite struct{ dirty bool }

// update records login l on the existing entity of principal key in
// memory. It returns nil when the principal has no entity; else the
// updated entity and, when no write of the principal is under way, the
// write the caller must now flush.
func (s *Store) update(key aliasKey, l Login) (*Entity, *pendingWrite) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byAlias[key]
	if old == nil {
		return nil, nil
	}
	if current(old.AliasFor(l.MountAccessor), l) {
		return old, nil
	}
	e := old.clone()
	now := s.now().UTC()
	record(e.AliasFor(l.MountAccessor), l, now)
	e.LastUpdateTime = now
	e.rev = s.rev.Add(1)
	s.indexLocked(old, e)
	if w := s.writing[key]; w != nil {
		w.dirty = true
		return e, nil
	}
	w := &pendingWrite{}
	s.writing[key] = w
	return e, w
}

// flush stores the entity of principal key until no change is left
// unstored, then ends the write w. It holds the principal's stripe, so a
// deletion waits for it and the write cannot bring a deleted entity back.
func (s *Store) flush(ctx context.Context, key aliasKey, w *pendingWrite) error {
	mu := s.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	for {
		s.mu.Lock()
		e := s.byAlias[key]
		w.dirty = false
		if e == nil { // deleted meanwhile
			delete(s.writing, key)
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		err := s.put(ctx, e)
		s.mu.Lock()
		if err != nil || !w.dirty {
			delete(s.writing, key)
			s.mu.Unlock()
			return err
		}
		s.mu.Unlock()
	}
}

// create makes the entity and alias of principal key at its first login,
// stored before it is indexed.
func (s *Store) create(ctx context.Context, key aliasKey, l Login) (*Entity, error) {
	mu := s.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	if s.byAliasKey(key) != nil {
		return nil, errExists
	}
	now := s.now().UTC()
	id := secret.UUID()
	e := &Entity{ID: id, Name: s.reserveName(), CreationTime: now, LastUpdateTime: now}
	defer s.releaseName(e.Name)
	e.Aliases = []*Alias{{ID: secret.UUID(), CanonicalID: id, MountAccessor: l.MountAccessor, Name: l.Name, CreationTime: now}}
	record(e.Aliases[0], l, now)
	if err := s.saveLocked(ctx, nil, e); err != nil {
		return nil, err
	}
	return e, nil
}

// record sets what login l proved on alias a.
func record(a *Alias, l Login, now time.Time) {
	a.MountPath, a.MountType = l.MountPath, l.MountType
	a.Metadata = maps.Clone(l.Metadata)
	a.LastUpdateTime = now
}

// current reports whether alias a already records login l.
func current(a *Alias, l Login) bool {
	return a != nil && a.Name == l.Name && a.MountPath == l.MountPath &&
		a.MountType == l.MountType && maps.Equal(a.Metadata, l.Metadata)
}

// reserveName returns an entity name no entity has or is being created
// with; release it with releaseName once the entity is indexed (or was
// not stored).
func (s *Store) reserveName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		name := "entity_" + hex.EncodeToString(secret.RandomBytes(4))
		if _, taken := s.byName[name]; !taken && !s.reserved[name] {
			s.reserved[name] = true
			return name
		}
	}
}

func (s *Store) releaseName(name string) {
	s.mu.Lock()
	delete(s.reserved, name)
	s.mu.Unlock()
}

// saveLocked stores e (replacing old, which may be nil) and swaps it into
// the indexes; the stripes of e's principals are held.
func (s *Store) saveLocked(ctx context.Context, old, e *Entity) error {
	if err := s.put(ctx, e); err != nil {
		return err
	}
	e.rev = s.rev.Add(1)
	s.mu.Lock()
	s.indexLocked(old, e)
	s.mu.Unlock()
	return nil
}

// put stores e.
func (s *Store) put(ctx context.Context, e *Entity) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("identity: encode entity: %w", err)
	}
	if err := s.view.Put(ctx, entityPrefix+e.ID, raw); err != nil {
		return fmt.Errorf("identity: store entity: %w", err)
	}
	return nil
}

// indexLocked replaces old (nil for none) by e (nil to remove) in the
// indexes; mu is held for writing.
func (s *Store) indexLocked(old, e *Entity) {
	if old != nil {
		delete(s.byID, old.ID)
		delete(s.byName, old.Name)
		for _, a := range old.Aliases {
			delete(s.aliases, a.ID)
			delete(s.byAlias, aliasKey{a.MountAccessor, a.Name})
		}
	}
	if e != nil {
		s.byID[e.ID] = e
		s.byName[e.Name] = e
		for _, a := range e.Aliases {
			s.aliases[a.ID] = e
			s.byAlias[aliasKey{a.MountAccessor, a.Name}] = e
		}
	}
}

func (s *Store) byAliasKey(k aliasKey) *Entity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byAlias[k]
}

// Entity returns the entity with the id, or nil.
func (s *Store) Entity(id string) *Entity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[id]
}

// EntityByName returns the entity with the name, or nil.
func (s *Store) EntityByName(name string) *Entity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byName[name]
}

// Alias returns the alias with the id and its entity, or nils.
func (s *Store) Alias(id string) (*Alias, *Entity) {
	s.mu.RLock()
	e := s.aliases[id]
	s.mu.RUnlock()
	if e == nil {
		return nil, nil
	}
	for _, a := range e.Aliases {
		if a.ID == id {
			return a, e
		}
	}
	return nil, nil
}

// AliasByName returns the entity with an alias of the name on the mount
// with the accessor, or nil.
func (s *Store) AliasByName(accessor, name string) *Entity {
	return s.byAliasKey(aliasKey{accessor, name})
}

// Entities returns every entity, sorted by id.
func (s *Store) Entities() []*Entity {
	s.mu.RLock()
	out := slices.Collect(maps.Values(s.byID))
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Entity) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// DeleteEntity removes the entity and its aliases. Tokens of the entity
// stay valid but resolve no identity template any more; the next login of
// one of its principals creates a new entity. Deleting an unknown id is
// not an error.
func (s *Store) DeleteEntity(ctx context.Context, id string) error {
	defer s.lockAll()()
	old := s.Entity(id)
	if old == nil {
		return nil
	}
	if err := s.view.Delete(ctx, entityPrefix+id); err != nil {
		return fmt.Errorf("identity: delete entity: %w", err)
	}
	s.mu.Lock()
	s.indexLocked(old, nil)
	s.mu.Unlock()
	return nil
}

// DeleteAlias removes an alias from its entity, which stays. Deleting an
// unknown id is not an error.
func (s *Store) DeleteAlias(ctx context.Context, id string) error {
	defer s.lockAll()()
	_, old := s.Alias(id)
	if old == nil {
		return nil
	}
	e := old.clone()
	e.Aliases = slices.DeleteFunc(e.Aliases, func(a *Alias) bool { return a.ID == id })
	e.LastUpdateTime = s.now().UTC()
	return s.saveLocked(ctx, old, e)
}
