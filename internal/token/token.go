// Package token is the token store: it creates, looks up and revokes client
// tokens. A token is persisted only as an HMAC-SHA256 of its value under a
// random salt kept behind the barrier, so neither the storage backend nor a
// storage dump reveals a usable token; lookups compare hashes, never token
// text.
//
// This package knows nothing of HTTP, mounts or the barrier: it is handed a
// logical.Storage view.
package token

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// ErrInvalid is returned for a token that does not exist, was revoked or has
// expired. Callers answer 403 permission denied.
var ErrInvalid = errors.New("token: invalid token")

// ErrBadID is returned for a custom token id that is not acceptable.
var ErrBadID = errors.New("token: invalid token id")

// Type names.
const (
	TypeService = "service"
)

// ServicePrefix starts every generated service token (Vault's format, so
// that tools recognizing Vault tokens recognize ours).
const ServicePrefix = "hvs."

const (
	saltKey        = "salt"
	idPrefix       = "id/"
	accessorPrefix = "accessor/"
)

// Entry is a stored token. It never holds the token value.
type Entry struct {
	Accessor     string            `json:"accessor"`
	Policies     []string          `json:"policies"`
	Path         string            `json:"path"`
	DisplayName  string            `json:"display_name"`
	Meta         map[string]string `json:"meta,omitempty"`
	CreationTime time.Time         `json:"creation_time"`
	// TTL is 0 for tokens that never expire (root tokens).
	TTL  time.Duration `json:"ttl"`
	Type string        `json:"type"`
}

// IsRoot reports whether the entry carries the root policy.
func (e *Entry) IsRoot() bool {
	for _, p := range e.Policies {
		if p == "root" {
			return true
		}
	}
	return false
}

// Store persists tokens in a storage view.
type Store struct {
	s    logical.Storage
	salt []byte
	now  func() time.Time

	// hashers pools HMAC states keyed with salt: building one costs more
	// than hashing a token.
	hashers sync.Pool

	mu    sync.RWMutex
	cache map[digest]*Entry // by hashed id
}

// Open loads the store's salt from s, creating it on first use.
func Open(ctx context.Context, s logical.Storage, now func() time.Time) (*Store, error) {
	salt, err := s.Get(ctx, saltKey)
	switch {
	case errors.Is(err, logical.ErrNotFound):
		salt = secret.RandomBytes(32)
		if err := s.Put(ctx, saltKey, salt); err != nil {
			return nil, fmt.Errorf("token: store salt: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("token: load salt: %w", err)
	}
	st := &Store{s: s, salt: salt, now: now, cache: map[digest]*Entry{}}
	st.hashers.New = func() any { return hmac.New(sha256.New, st.salt) }
	return st, nil
}

// Close forgets cached entries and wipes the salt from memory.
func (st *Store) Close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	secret.Zero(st.salt)
	st.cache = nil
	st.hashers = sync.Pool{New: func() any { return hmac.New(sha256.New, nil) }}
}

// digest is a salted hash of a token or accessor: the in-memory cache key,
// and, hex-encoded, the storage key.
type digest [sha256.Size]byte

func (d digest) String() string { return hex.EncodeToString(d[:]) }

func (st *Store) hash(v string) digest {
	m := st.hashers.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(v))
	var d digest
	m.Sum(d[:0])
	st.hashers.Put(m)
	return d
}

// CreateRoot stores a new root token. With id empty a random token is
// generated; otherwise id is used verbatim (dev mode's -dev-root-token-id).
func (st *Store) CreateRoot(ctx context.Context, id string) (secret.String, *Entry, error) {
	if id != "" && strings.ContainsAny(id, ". \t\r\n") {
		// Vault's rule: a custom id may not contain '.', which would
		// collide with the prefixed formats.
		return secret.String{}, nil, ErrBadID
	}
	e := &Entry{
		Policies:    []string{"root"},
		Path:        "auth/token/root",
		DisplayName: "root",
	}
	tok, err := st.create(ctx, id, e)
	return tok, e, err
}

// Create stores a new service token for e, whose Accessor and
// CreationTime it sets, and returns the token.
func (st *Store) Create(ctx context.Context, e *Entry) (secret.String, error) {
	return st.create(ctx, "", e)
}

func (st *Store) create(ctx context.Context, id string, e *Entry) (secret.String, error) {
	if id == "" {
		id = ServicePrefix + secret.RandomBase62(24)
	}
	e.Accessor = secret.RandomBase62(24)
	e.CreationTime = st.now().UTC()
	e.Type = TypeService
	if err := st.put(ctx, st.hash(id), e); err != nil {
		return secret.String{}, err
	}
	return secret.NewString(id), nil
}

func (st *Store) put(ctx context.Context, hashed digest, e *Entry) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("token: encode: %w", err)
	}
	if err := st.s.Put(ctx, idPrefix+hashed.String(), raw); err != nil {
		return fmt.Errorf("token: store: %w", err)
	}
	if err := st.s.Put(ctx, accessorPrefix+st.hash(e.Accessor).String(), []byte(hashed.String())); err != nil {
		return fmt.Errorf("token: store accessor: %w", err)
	}
	st.mu.Lock()
	if st.cache != nil {
		st.cache[hashed] = e
	}
	st.mu.Unlock()
	return nil
}

// Lookup returns the entry for a token, or ErrInvalid.
func (st *Store) Lookup(ctx context.Context, tok secret.String) (*Entry, error) {
	if tok.IsEmpty() {
		return nil, ErrInvalid
	}
	return st.lookupDigest(ctx, st.hash(tok.Reveal()))
}

func (st *Store) lookupDigest(ctx context.Context, hashed digest) (*Entry, error) {
	st.mu.RLock()
	e, ok := st.cache[hashed]
	st.mu.RUnlock()
	if !ok {
		raw, err := st.s.Get(ctx, idPrefix+hashed.String())
		if errors.Is(err, logical.ErrNotFound) {
			return nil, ErrInvalid
		}
		if err != nil {
			return nil, fmt.Errorf("token: lookup: %w", err)
		}
		e = &Entry{}
		if err := json.Unmarshal(raw, e); err != nil {
			return nil, fmt.Errorf("token: decode: %w", err)
		}
		st.mu.Lock()
		if st.cache != nil {
			st.cache[hashed] = e
		}
		st.mu.Unlock()
	}
	if e.TTL > 0 && !st.now().Before(e.CreationTime.Add(e.TTL)) {
		return nil, ErrInvalid
	}
	return e, nil
}

// LookupAccessor returns the entry of the token with the given accessor,
// or ErrInvalid.
func (st *Store) LookupAccessor(ctx context.Context, accessor string) (*Entry, error) {
	if accessor == "" {
		return nil, ErrInvalid
	}
	raw, err := st.s.Get(ctx, accessorPrefix+st.hash(accessor).String())
	if errors.Is(err, logical.ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("token: lookup accessor: %w", err)
	}
	var d digest
	if n, err := hex.Decode(d[:], raw); err != nil || n != len(d) {
		return nil, fmt.Errorf("token: accessor index entry is malformed")
	}
	return st.lookupDigest(ctx, d)
}

// Revoke deletes a token; revoking an unknown token is not an error.
func (st *Store) Revoke(ctx context.Context, tok secret.String) error {
	e, err := st.Lookup(ctx, tok)
	if errors.Is(err, ErrInvalid) {
		return nil
	}
	if err != nil {
		return err
	}
	hashed := st.hash(tok.Reveal())
	st.mu.Lock()
	delete(st.cache, hashed)
	st.mu.Unlock()
	if err := st.s.Delete(ctx, accessorPrefix+st.hash(e.Accessor).String()); err != nil {
		return fmt.Errorf("token: revoke accessor: %w", err)
	}
	if err := st.s.Delete(ctx, idPrefix+hashed.String()); err != nil {
		return fmt.Errorf("token: revoke: %w", err)
	}
	return nil
}
