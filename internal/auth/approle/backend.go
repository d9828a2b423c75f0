// Package approle is the AppRole auth method (spec §6.3). A machine logs in
// with two values: a role_id, which names a role and is not meant to be
// secret, and a secret_id, a credential issued for that role that can be
// limited in lifetime, use count and source addresses. A successful login
// answers with a [logical.Auth] shaped by the role's token fields; the
// pipeline, not this package, creates the token.
//
// The package owns its storage layout inside the mount's view, the
// lifecycle of secret IDs (issue, count uses, expire, tidy) and the login
// decision. It must not import storage, the barrier, core, token or lease
// (DESIGN.md §4): it sees storage only as the [logical.Storage] on each
// request.
//
// # Secret IDs are never stored
//
// A secret ID leaves the package only in the response that issues it. In
// storage it exists only as an HMAC-SHA256 under a random 32-byte key that
// is made on the mount's first use and kept in the mount's own (encrypted)
// storage, so a copy of the storage does not reveal any secret ID and the
// HMACs of two mounts cannot be compared. Secret IDs, and role IDs, which
// are half of the login credential, go into no error message and no log
// line. Role IDs and secret IDs received from clients are compared only
// through their HMACs or in constant time. Every login failure after the
// request has been understood gets the same answer, "invalid role or secret
// ID", so that the answer does not say which half was wrong.
//
// # Storage layout
//
//	salt                                  the mount's HMAC key (32 random bytes)
//	role/<name>                           a role (roleEntry); names are lowercase
//	role_id/<hmac(role_id)>               which role a role_id belongs to (roleIDEntry)
//	secret_id/<name>/<hmac(secret_id)>    a secret ID of the role (secretIDEntry)
//	accessor/<hmac(accessor)>             where the secret ID of an accessor is (accessorEntry)
//
// Each HMAC is taken with a label naming what is hashed, so the HMACs of a
// role ID, a secret ID and an accessor with the same text differ. Every
// record is JSON. A secret ID is written after its accessor and removed
// before it, so that every usable secret ID can be found and destroyed by
// its accessor; tidy removes the accessor records left behind by an
// interrupted removal. When the storage implements
// [logical.TransactionalStorage], the writes of one change go in one
// transaction.
//
// # Locks
//
// Three sets of striped locks live in the backend: one per role name, one
// per secret ID (keyed by its HMAC) and one per role ID (keyed by its
// HMAC). They are always taken in that order. Role changes take the role's
// lock exclusively; logins and secret ID issuance take it shared, so a role
// cannot change or disappear under a login. A secret ID's use count is
// decremented under its exclusive lock, so N concurrent logins with an
// N-use secret ID all succeed and the next one fails. Tidy takes one role's
// lock at a time, never a lock over every role. Storage has no
// compare-and-swap, so with several servers on one storage only the active
// one may serve writes.
package approle

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Storage keys and prefixes (see the package doc).
const (
	saltKey        = "salt"
	rolePrefix     = "role/"
	roleIDPrefix   = "role_id/"
	secretIDPrefix = "secret_id/"
	accessorPrefix = "accessor/"
)

// saltSize is the length of the mount's HMAC key.
const saltSize = 32

// HMAC domain-separation labels: each hashed value is prefixed with the
// label of its kind.
const (
	labelRoleID   = "vigil approle role_id\x00"
	labelSecretID = "vigil approle secret_id\x00"
	labelAccessor = "vigil approle secret_id_accessor\x00"
)

// maxInputLen bounds role names, role IDs and secret IDs, as Vault bounds
// what it hashes.
const maxInputLen = 4096

// lockStripes is the number of locks in each striped set; keys share a lock
// when their hashes collide, which costs only concurrency.
const lockStripes = 256

// Factory builds an AppRole backend for one mount.
func Factory(_ context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	if conf == nil {
		return nil, errors.New("approle: nil backend config")
	}
	return newBackend(conf)
}

// backend is the AppRole auth method of one mount. It serves one storage
// view: the HMAC key is cached after its first load, and the records
// logins read are kept decoded, checked against storage on every use
// (see readCached).
type backend struct {
	*framework.Backend
	now    func() time.Time
	logger *slog.Logger
	system logical.SystemView

	roleLocks     [lockStripes]sync.RWMutex
	secretIDLocks [lockStripes]sync.RWMutex
	roleIDLocks   [lockStripes]sync.Mutex

	// saltMu serializes the creation of the HMAC key; salt caches it.
	saltMu sync.Mutex
	salt   atomic.Pointer[hmacKey]

	// tidying is set while a tidy runs.
	tidying atomic.Bool

	// records keeps what logins read decoded (see readCached).
	records framework.DecodeCache
}

var (
	_ logical.Backend       = (*backend)(nil)
	_ logical.SpecialPather = (*backend)(nil)
)

func newBackend(conf *logical.BackendConfig) (*backend, error) {
	b := &backend{now: conf.Now, logger: conf.Logger, system: conf.System}
	if b.now == nil {
		b.now = time.Now
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	paths := []*framework.Path{
		b.pathLogin(),
		b.pathRoleList(),
		b.pathRole(),
		b.pathRoleID(),
		b.pathSecretID(),
		b.pathSecretIDLookup(),
		b.pathSecretIDDestroy(),
		b.pathAccessorLookup(),
		b.pathAccessorDestroy(),
		b.pathCustomSecretID(),
		b.pathTidy(),
	}
	paths = append(paths, b.pathRoleProperties()...)
	fb, err := framework.NewBackend(backendHelp, paths,
		framework.WithSpecialPaths(logical.PathsSpecial{Unauthenticated: []string{"login"}}),
		framework.WithAuthRenew(b.renew),
	)
	if err != nil {
		return nil, fmt.Errorf("approle: %w", err)
	}
	b.Backend = fb
	return b, nil
}

// stripe maps a key to its lock index (FNV-1a, inline so that it does not
// allocate).
func stripe(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h % lockStripes
}

func (b *backend) roleLock(name string) *sync.RWMutex { return &b.roleLocks[stripe(name)] }

// lockedRole takes the lock of the role called name (exclusive for a
// change, shared otherwise) and loads the role. It answers missing when
// there is no such role. On success the caller holds the lock and must
// call unlock; on an error the lock is already released.
func (b *backend) lockedRole(ctx context.Context, s logical.Storage, name string, exclusive bool, missing error) (r *roleEntry, unlock func(), err error) {
	l := b.roleLock(name)
	unlock = l.RUnlock
	if exclusive {
		l.Lock()
		unlock = l.Unlock
	} else {
		l.RLock()
	}
	r, err = loadRole(ctx, s, name)
	if err == nil && r == nil {
		err = missing
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return r, unlock, nil
}

func (b *backend) secretIDLock(hmacHex string) *sync.RWMutex {
	return &b.secretIDLocks[stripe(hmacHex)]
}

func (b *backend) roleIDLock(hmacHex string) *sync.Mutex { return &b.roleIDLocks[stripe(hmacHex)] }

// hmacKey is the mount's HMAC key with a pool of HMAC states keyed with
// it: Reset brings a used state back to the keyed start, which saves the
// key schedule of hmac.New on every hash.
type hmacKey struct {
	pool sync.Pool // of *macState
}

// macState is a pooled HMAC state with a scratch buffer for its input, so
// that hashing allocates only the result.
type macState struct {
	h   hash.Hash
	buf []byte
	sum []byte
}

func newHMACKey(key []byte) *hmacKey {
	k := &hmacKey{}
	k.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return k
}

// key returns the mount's HMAC key, creating it on first use.
func (b *backend) key(ctx context.Context, s logical.Storage) (*hmacKey, error) {
	if k := b.salt.Load(); k != nil {
		return k, nil
	}
	b.saltMu.Lock()
	defer b.saltMu.Unlock()
	if k := b.salt.Load(); k != nil {
		return k, nil
	}
	raw, err := s.Get(ctx, saltKey)
	switch {
	case errors.Is(err, logical.ErrNotFound):
		raw = secret.RandomBytes(saltSize)
		if err := s.Put(ctx, saltKey, raw); err != nil {
			return nil, fmt.Errorf("approle: store HMAC key: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("approle: read HMAC key: %w", err)
	case len(raw) != saltSize:
		return nil, fmt.Errorf("approle: stored HMAC key has %d bytes, want %d", len(raw), saltSize)
	}
	k := newHMACKey(raw)
	b.salt.Store(k)
	return k, nil
}

// mac returns the hex HMAC of value under label with the mount's key.
func (b *backend) mac(ctx context.Context, s logical.Storage, label, value string) (string, error) {
	k, err := b.key(ctx, s)
	if err != nil {
		return "", err
	}
	m := k.pool.Get().(*macState)
	m.h.Reset()
	m.buf = append(append(m.buf[:0], label...), value...)
	m.h.Write(m.buf)
	clear(m.buf) // the value may be a secret ID
	m.sum = m.h.Sum(m.sum[:0])
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], m.sum)
	k.pool.Put(m)
	return string(out[:]), nil
}

// roleEntry is a stored role (role/<name>).
type roleEntry struct {
	// Name is the role's lowercase name.
	Name string `json:"name"`
	// RoleID is the role's current role_id. It is stored in clear, as it
	// can be read back through the API; only its index is keyed by HMAC.
	RoleID             string                `json:"role_id"`
	BindSecretID       bool                  `json:"bind_secret_id"`
	SecretIDBoundCIDRs []netip.Prefix        `json:"secret_id_bound_cidrs,omitempty"`
	SecretIDNumUses    int                   `json:"secret_id_num_uses,omitempty"`
	SecretIDTTL        time.Duration         `json:"secret_id_ttl,omitempty"`
	LocalSecretIDs     bool                  `json:"local_secret_ids,omitempty"`
	Token              framework.TokenParams `json:"token"`
}

// roleIDEntry is the index record of a role_id (role_id/<hmac>).
type roleIDEntry struct {
	Name string `json:"name"`
}

// secretIDEntry is a stored secret ID (secret_id/<role>/<hmac>). Times are
// UTC; a zero ExpirationTime means the secret ID does not expire.
type secretIDEntry struct {
	Accessor        string            `json:"accessor"`
	NumUses         int               `json:"num_uses,omitempty"`
	TTL             time.Duration     `json:"ttl,omitempty"`
	CreationTime    time.Time         `json:"creation_time"`
	ExpirationTime  time.Time         `json:"expiration_time"`
	LastUpdatedTime time.Time         `json:"last_updated_time"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	CIDRList        []netip.Prefix    `json:"cidr_list,omitempty"`
	TokenBoundCIDRs []netip.Prefix    `json:"token_bound_cidrs,omitempty"`
}

// expired reports whether the secret ID can no longer be used at now.
func (e *secretIDEntry) expired(now time.Time) bool {
	return !e.ExpirationTime.IsZero() && !now.Before(e.ExpirationTime)
}

// accessorEntry is the index record of an accessor (accessor/<hmac>).
type accessorEntry struct {
	RoleName     string `json:"role_name"`
	SecretIDHMAC string `json:"secret_id_hmac"`
}

func roleKey(name string) string             { return rolePrefix + name }
func roleIDKey(h string) string              { return roleIDPrefix + h }
func secretIDDir(role string) string         { return secretIDPrefix + role + "/" }
func secretIDKey(role, h string) string      { return secretIDPrefix + role + "/" + h }
func accessorKey(accessorHMAC string) string { return accessorPrefix + accessorHMAC }

// getJSON decodes the record at key into v. It reports false, without an
// error, when there is none.
func getJSON(ctx context.Context, s logical.Storage, key string, v any) (bool, error) {
	raw, err := s.Get(ctx, key)
	if errors.Is(err, logical.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("approle: read %s: %w", describeKey(key), err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("approle: decode %s: %w", describeKey(key), err)
	}
	return true, nil
}

// describeKey names a storage key for an error message. Keys hold HMACs,
// not secrets, but the messages need only the kind of record.
func describeKey(key string) string {
	for _, p := range []string{rolePrefix, roleIDPrefix, secretIDPrefix, accessorPrefix} {
		if len(key) > len(p) && key[:len(p)] == p {
			if p == rolePrefix {
				return fmt.Sprintf("role %q", key[len(p):])
			}
			return p[:len(p)-1] + " record"
		}
	}
	return fmt.Sprintf("%q", key)
}

// loadRole returns the role called name, or nil when there is none.
func loadRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	r := new(roleEntry)
	ok, err := getJSON(ctx, s, roleKey(name), r)
	if !ok || err != nil {
		return nil, err
	}
	return r, nil
}

// loadSecretID returns the secret ID record at key, or nil.
func loadSecretID(ctx context.Context, s logical.Storage, key string) (*secretIDEntry, error) {
	e := new(secretIDEntry)
	ok, err := getJSON(ctx, s, key, e)
	if !ok || err != nil {
		return nil, err
	}
	return e, nil
}

// loadAccessor returns the accessor record for the accessor's HMAC, or nil.
func loadAccessor(ctx context.Context, s logical.Storage, accessorHMAC string) (*accessorEntry, error) {
	e := new(accessorEntry)
	ok, err := getJSON(ctx, s, accessorKey(accessorHMAC), e)
	if !ok || err != nil {
		return nil, err
	}
	return e, nil
}

// writeOps is a batch of storage writes, applied in one transaction when
// the storage supports it and otherwise in order.
type writeOps []logical.StorageOp

func (w *writeOps) put(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("approle: encode %s: %w", describeKey(key), err)
	}
	*w = append(*w, logical.StorageOp{Key: key, Value: raw})
	return nil
}

func (w *writeOps) del(key string) {
	*w = append(*w, logical.StorageOp{Key: key, Delete: true})
}

// apply writes the batch (see logical.ApplyOps): callers order their
// writes so that every prefix leaves a usable state.
func (w writeOps) apply(ctx context.Context, s logical.Storage) error {
	if err := logical.ApplyOps(ctx, s, w); err != nil {
		return fmt.Errorf("approle: write: %w", err)
	}
	return nil
}

// removeSecretID adds to w the removal of a secret ID and of its accessor
// record: the secret ID first, so that an interrupted removal leaves at
// worst an accessor record pointing nowhere (tidy removes those).
func (b *backend) removeSecretID(ctx context.Context, s logical.Storage, w *writeOps, key string, e *secretIDEntry) error {
	w.del(key)
	if e.Accessor == "" {
		return nil
	}
	ah, err := b.mac(ctx, s, labelAccessor, e.Accessor)
	if err != nil {
		return err
	}
	w.del(accessorKey(ah))
	return nil
}

// seconds is [framework.Seconds]: whole seconds, as Vault renders durations.
func seconds(d time.Duration) int64 { return framework.Seconds(d) }

// formatTime renders a stored time as RFC 3339 in UTC; the zero time (a
// secret ID that never expires) renders as Go's zero time, as Vault's does.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

const backendHelp = `
The AppRole auth method lets machines and services log in with a role_id,
which names a role, and a secret_id, a credential issued for that role.
Roles set the constraints of a login (a secret_id, source CIDR blocks) and
the properties of the tokens it creates (policies, TTLs, bound CIDRs).
`
