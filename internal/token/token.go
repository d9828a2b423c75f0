package token

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Sentinel errors. Callers branch on them with errors.Is; the auth/token
// backend turns them into Vault's messages.
var (
	// ErrInvalid is returned for a token that does not exist, was revoked,
	// has expired or has used up its uses. Callers answer 403 permission
	// denied.
	ErrInvalid = errors.New("token: invalid token")
	// ErrBadID is returned for a custom token id that is not acceptable.
	ErrBadID = errors.New("token: invalid token id")
	// ErrBatch is returned for what a batch token cannot do: be renewed,
	// be revoked on its own, or create tokens.
	ErrBatch = errors.New("token: not possible with a batch token")
	// ErrNotRenewable is returned when renewing a token created
	// non-renewable, or one that never expires.
	ErrNotRenewable = errors.New("token: lease is not renewable")
	// ErrPastMaxTTL is returned when renewing a token whose maximum
	// lifetime has been reached.
	ErrPastMaxTTL = errors.New("token: past the max TTL, cannot renew")
	// ErrClosed is returned by a store after Close.
	ErrClosed = errors.New("token: store is closed")
	// ErrTidyRunning is returned by Tidy while another tidy runs.
	ErrTidyRunning = errors.New("token: tidy already in progress")
)

// Token types, as stored in [Entry.Type] and shown as "type".
const (
	TypeService = "service"
	TypeBatch   = "batch"
)

// Token prefixes. Every generated service token starts with ServicePrefix
// and every batch token with BatchPrefix (Vault's formats, so that tools
// recognizing Vault tokens recognize ours).
const (
	ServicePrefix = "hvs."
	BatchPrefix   = "hvb."
)

// Policy names the store itself gives meaning to.
const (
	rootPolicy    = "root"
	defaultPolicy = "default"
)

// Storage keys and prefixes (see the package documentation).
const (
	saltKey        = "salt"
	keysKey        = "key"
	idPrefix       = "id/"
	accessorPrefix = "accessor/"
	parentPrefix   = "parent/"
	pathPrefix     = "path/"
	rolePrefix     = "role/"
)

// recordVersion is the format version of stored entries; entries written
// before versioning (format 0) keep their accessor in clear and have no
// expire time of their own.
const recordVersion = 1

// Entry is a token as the store knows it. It never holds the token value.
//
// Entries returned by the store are shared with its cache and with other
// callers: treat them as read-only. Create and CreateRoot fill in the entry
// they are given.
type Entry struct {
	// HashedID is the salted hash of the token, in hex: the token's key in
	// storage, its children's Parent, and the key that ties leases to the
	// token. Set by the store.
	HashedID string
	// Accessor is a second, random name for a service token, which can
	// look it up, renew and revoke it without revealing it. Batch tokens
	// have none.
	Accessor string
	// Policies are the token's policies, sanitized and sorted.
	Policies []string
	// Path is the request path that created the token
	// ("auth/token/create", "auth/approle/login").
	Path string
	// DisplayName names the token in lookups ("token-ci", "approle").
	DisplayName string
	// Meta is the token's metadata.
	Meta map[string]string
	// CreationTime is when the token was issued (its issue time).
	CreationTime time.Time
	// TTL is the TTL the token was created with (creation_ttl); 0 for a
	// token that never expires.
	TTL time.Duration
	// Type is TypeService or TypeBatch.
	Type string
	// Parent is the parent's HashedID; "" for an orphan.
	Parent string
	// NumUses is the number of requests the token may still make: 0 means
	// unlimited, and -1 marks a token whose last use is being served and
	// which is revoked after it (see [Store.UseToken]).
	NumUses int
	// ExplicitMaxTTL is a hard cap on the token's life from CreationTime;
	// 0 for none.
	ExplicitMaxTTL time.Duration
	// MaxTTL caps renewals from CreationTime on top of the mount's maximum
	// (a role's token_max_ttl, a login's MaxTTL); 0 for the mount's alone.
	MaxTTL time.Duration
	// Period makes the token periodic: each renewal resets its TTL to
	// Period.
	Period time.Duration
	// Renewable reports whether the token may be renewed.
	Renewable bool
	// ExpireTime is when the token expires; zero means never.
	ExpireTime time.Time
	// LastRenewal is when the token was last renewed; zero if never.
	LastRenewal time.Time
	// Role is the token role the token was created against, if any.
	Role string
	// BoundCIDRs restricts the client addresses that may use the token
	// (see [CheckCIDR]).
	BoundCIDRs []netip.Prefix
	// EntityID is the identity entity of the token ("" until identities
	// exist).
	EntityID string
	// MountPath is the auth mount whose login created the token
	// ("auth/approle/"), "" for tokens of the token store itself. Renewals
	// go back to that mount (see [AuthRenewer]).
	MountPath string
	// InternalData is what the login's auth method asked to keep for
	// renewals ([logical.Auth.InternalData]). Never shown to clients.
	// Numbers in it are json.Number values once read back from storage.
	InternalData map[string]any
	// Alias is the identity the login proved.
	Alias *logical.Alias
}

// IsRoot reports whether the entry carries the root policy.
func (e *Entry) IsRoot() bool { return slices.Contains(e.Policies, rootPolicy) }

// IsBatch reports whether the entry is a batch token's.
func (e *Entry) IsBatch() bool { return e.Type == TypeBatch }

// IsOrphan reports whether the token has no parent.
func (e *Entry) IsOrphan() bool { return e.Parent == "" }

// IssueTime is when the token was issued: its CreationTime.
func (e *Entry) IssueTime() time.Time { return e.CreationTime }

// Expired reports whether the token has expired at now.
func (e *Entry) Expired(now time.Time) bool {
	return !e.ExpireTime.IsZero() && !now.Before(e.ExpireTime)
}

// Exhausted reports whether the token has used its last use: the request
// that used it is being served, and the token must be revoked after it.
func (e *Entry) Exhausted() bool { return e.NumUses < 0 }

// TTLAt returns the time the token has left at now, in whole seconds
// (rounded); 0 for a token that never expires or has expired.
func (e *Entry) TTLAt(now time.Time) time.Duration {
	if e.ExpireTime.IsZero() || !e.ExpireTime.After(now) {
		return 0
	}
	return e.ExpireTime.Sub(now).Round(time.Second)
}

// LeaseID is the id of the token's own lease: its creation path and its
// hashed id ("auth/approle/login/<hash>").
func (e *Entry) LeaseID() string {
	return strings.TrimSuffix(e.Path, "/") + "/" + e.HashedID
}

// LoginAuth rebuilds the Auth a login returned for the token, for the
// renewal request that goes back to its auth mount ([logical.Request.Auth]).
// It carries no client token.
func (e *Entry) LoginAuth() *logical.Auth {
	a := &logical.Auth{
		Policies:       slices.Clone(e.Policies),
		Metadata:       maps.Clone(e.Meta),
		DisplayName:    e.DisplayName,
		TTL:            e.TTL,
		MaxTTL:         e.MaxTTL,
		ExplicitMaxTTL: e.ExplicitMaxTTL,
		Period:         e.Period,
		NumUses:        max(e.NumUses, 0),
		Renewable:      e.Renewable,
		TokenType:      e.Type,
		InternalData:   maps.Clone(e.InternalData),
		Accessor:       e.Accessor,
		Orphan:         e.Parent == "",
	}
	for _, p := range e.BoundCIDRs {
		a.BoundCIDRs = append(a.BoundCIDRs, formatCIDR(p))
	}
	if e.Alias != nil {
		a.Alias = &logical.Alias{Name: e.Alias.Name, Metadata: maps.Clone(e.Alias.Metadata)}
	}
	return a
}

// clone returns a copy of e that shares nothing mutable with it.
func (e *Entry) clone() *Entry {
	c := *e
	c.Policies = slices.Clone(e.Policies)
	c.Meta = maps.Clone(e.Meta)
	c.BoundCIDRs = slices.Clone(e.BoundCIDRs)
	c.InternalData = maps.Clone(e.InternalData)
	if e.Alias != nil {
		c.Alias = &logical.Alias{Name: e.Alias.Name, Metadata: maps.Clone(e.Alias.Metadata)}
	}
	return &c
}

// usable reports whether the token may be used at now: not expired and
// not past its last use.
func (e *Entry) usable(now time.Time) bool { return !e.Expired(now) && e.NumUses >= 0 }

// usableNow is e.usable now, reading the clock only for a token that
// expires.
func (st *Store) usableNow(e *Entry) bool {
	if e.ExpireTime.IsZero() {
		return e.usable(time.Time{})
	}
	return e.usable(st.now())
}

// Config configures a store opened with [OpenWith].
type Config struct {
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// Leases ties tokens to the expiration manager; nil means tokens have
	// no leases (revocation then only deletes tokens).
	Leases LeaseHooks
	// AuthRenewer asks auth mounts about renewals of the tokens their
	// logins created; nil renews them with their stored settings.
	AuthRenewer AuthRenewer
	// Logger receives the store's rare log lines (tidy); nil discards
	// them.
	Logger *slog.Logger
}

// Store persists tokens in a storage view. It is safe for concurrent use.
type Store struct {
	s       logical.Storage
	salt    []byte
	now     func() time.Time
	leases  LeaseHooks
	renewer AuthRenewer
	log     *slog.Logger

	// hashers pools HMAC states keyed with salt: building one costs more
	// than hashing a token.
	hashers sync.Pool

	closed atomic.Bool

	// cache holds decoded entries by hashed id. Entries in it are never
	// modified: a change stores a new entry.
	cache [cacheShards]cacheShard

	// locks serialize the changes of one token (striped by hashed id);
	// lookups take none.
	locks [lockStripes]sync.RWMutex

	// keys holds the AEADs derived from the store key, once loaded;
	// keysMu serializes its creation.
	keysMu sync.Mutex
	keys   atomic.Pointer[storeKeys]

	tidyMu sync.Mutex
}

const (
	cacheShards = 64
	// cacheShardSize bounds each shard: 64 × 1024 cached entries at most,
	// a few tens of MB.
	cacheShardSize = 1024
	lockStripes    = 256
)

type cacheShard struct {
	mu sync.RWMutex
	m  map[digest]*Entry
}

// Open loads the store's salt from s, creating it on first use. now tells
// the time. It is OpenWith with only Now set.
func Open(ctx context.Context, s logical.Storage, now func() time.Time) (*Store, error) {
	return OpenWith(ctx, s, Config{Now: now})
}

// OpenWith opens the store kept in s (creating its salt on first use) with
// the hooks of cfg.
func OpenWith(ctx context.Context, s logical.Storage, cfg Config) (*Store, error) {
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
	st := &Store{s: s, salt: salt, now: cfg.Now, leases: cfg.Leases, renewer: cfg.AuthRenewer, log: cfg.Logger}
	if st.now == nil {
		st.now = time.Now
	}
	if st.log == nil {
		st.log = slog.New(slog.DiscardHandler)
	}
	for i := range st.cache {
		st.cache[i].m = map[digest]*Entry{}
	}
	st.hashers.New = func() any { return &hasher{h: hmac.New(sha256.New, st.salt)} }
	return st, nil
}

// Close forgets cached entries and keys and wipes the salt from memory.
// The store answers ErrClosed afterwards. No other call may be in flight
// (core closes the store while sealing, with requests drained).
func (st *Store) Close() {
	if st.closed.Swap(true) {
		return
	}
	for i := range st.cache {
		sh := &st.cache[i]
		sh.mu.Lock()
		sh.m = map[digest]*Entry{}
		sh.mu.Unlock()
	}
	st.keysMu.Lock()
	st.keys.Store(nil)
	st.keysMu.Unlock()
	secret.Zero(st.salt)
	st.hashers = sync.Pool{New: func() any { return &hasher{h: hmac.New(sha256.New, nil)} }}
}

// digest is a salted hash of a token or accessor: the in-memory cache key,
// and, as a string, the storage key. A generated token that expires, and
// its accessor, begin with their creation second (see order); the digest
// carries it, as the first characters of its string, so that such tokens
// are stored in the order they were created.
type digest struct {
	order [orderLen]byte // zero for a value without one
	sum   [sha256.Size]byte
}

// String is the hex of sum, after order if the value had one.
func (d digest) String() string {
	if d.order == ([orderLen]byte{}) {
		return hex.EncodeToString(d.sum[:])
	}
	b := make([]byte, orderLen+hex.EncodedLen(len(d.sum)))
	copy(b, d.order[:])
	hex.Encode(b[orderLen:], d.sum[:])
	return string(b)
}

// parseDigest parses a hashed id.
func parseDigest(s string) (digest, bool) {
	var d digest
	switch len(s) {
	case 2 * len(d.sum):
	case orderLen + 2*len(d.sum):
		if !isOrder(s[:orderLen]) {
			return d, false
		}
		copy(d.order[:], s)
		s = s[orderLen:]
	default:
		return d, false
	}
	if _, err := hex.Decode(d.sum[:], []byte(s)); err != nil {
		return d, false
	}
	return d, true
}

// orderLen is the length of an order: the creation second of a generated
// token or accessor in base62, digits in ASCII order, so that orders sort
// as the times do (until the year 3770).
const orderLen = 6

// order returns the order of creation time t.
func order(t time.Time) string {
	var b [orderLen]byte
	n := uint64(max(t.Unix(), 0))
	for i := orderLen - 1; i >= 0; i-- {
		b[i] = base62[n%62]
		n /= 62
	}
	return string(b[:])
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func isOrder(s string) bool {
	for i := range len(s) {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	return true
}

// Lengths of what this version generates for a token that expires: a
// service token is ServicePrefix, an order and 24 random characters; an
// accessor an order and 24 random characters. Tokens that never expire,
// and earlier versions' tokens, have no order.
const (
	randomLen      = 24
	serviceIDLen   = len(ServicePrefix) + orderLen + randomLen
	accessorLength = orderLen + randomLen
)

// tokenOrder is the order a service token begins with, or "" for a token
// without one (an earlier version's, a custom id: those cannot begin with
// ServicePrefix, a batch token).
func tokenOrder(v string) string {
	if len(v) != serviceIDLen || !strings.HasPrefix(v, ServicePrefix) {
		return ""
	}
	if o := v[len(ServicePrefix) : len(ServicePrefix)+orderLen]; isOrder(o) {
		return o
	}
	return ""
}

// accessorOrder is the order an accessor begins with, or "" for an
// earlier version's accessor.
func accessorOrder(v string) string {
	if len(v) != accessorLength || !isOrder(v[:orderLen]) {
		return ""
	}
	return v[:orderLen]
}

// hasher is a pooled HMAC state with a scratch buffer, so that hashing a
// token allocates nothing.
type hasher struct {
	h   hash.Hash
	buf []byte
	sum []byte
}

// hash is the digest of a value without an order (a batch token).
func (st *Store) hash(v string) digest {
	hs := st.hashers.Get().(*hasher)
	hs.h.Reset()
	hs.buf = append(hs.buf[:0], v...)
	hs.h.Write(hs.buf)
	hs.sum = hs.h.Sum(hs.sum[:0])
	var d digest
	copy(d.sum[:], hs.sum)
	clear(hs.buf)
	st.hashers.Put(hs)
	return d
}

// hashToken is the digest of a service token, with its order if it has
// one.
func (st *Store) hashToken(v string) digest {
	d := st.hash(v)
	copy(d.order[:], tokenOrder(v))
	return d
}

// hashAccessor is the digest of an accessor, with its order if it has
// one.
func (st *Store) hashAccessor(v string) digest {
	d := st.hash(v)
	copy(d.order[:], accessorOrder(v))
	return d
}

func (st *Store) shard(d digest) *cacheShard { return &st.cache[d.sum[0]%cacheShards] }

func (st *Store) cached(d digest) (*Entry, bool) {
	sh := st.shard(d)
	sh.mu.RLock()
	e, ok := sh.m[d]
	sh.mu.RUnlock()
	return e, ok
}

// cachePut caches e. A full shard first forgets one entry at random (map
// iteration order is random): the cache holds the tokens in use, not every
// token ever created, and a forgotten one is read again from storage.
func (st *Store) cachePut(d digest, e *Entry) {
	sh := st.shard(d)
	sh.mu.Lock()
	if _, ok := sh.m[d]; !ok && len(sh.m) >= cacheShardSize {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[d] = e
	sh.mu.Unlock()
}

func (st *Store) cacheDelete(d digest) {
	sh := st.shard(d)
	sh.mu.Lock()
	delete(sh.m, d)
	sh.mu.Unlock()
}

func (st *Store) lock(d digest) *sync.RWMutex { return &st.locks[d.sum[1]] }

// lockWithParent takes d's lock exclusively and parent's shared (one lock
// when they share a stripe), in stripe order so that two such calls never
// deadlock. It returns the unlock function.
func (st *Store) lockWithParent(d, parent digest) func() {
	a, b := d.sum[1], parent.sum[1]
	switch {
	case a == b:
		st.locks[a].Lock()
		return st.locks[a].Unlock
	case a < b:
		st.locks[a].Lock()
		st.locks[b].RLock()
	default:
		st.locks[b].RLock()
		st.locks[a].Lock()
	}
	return func() {
		st.locks[a].Unlock()
		st.locks[b].RUnlock()
	}
}

func idKey(d digest) string                { return idPrefix + d.String() }
func accessorKey(d digest) string          { return accessorPrefix + d.String() }
func childKey(parent, child string) string { return parentPrefix + parent + "/" + child }

// pathIndexDir is the directory of the creation-path index for path: the
// path's non-empty segments under path/.
func pathIndexDir(path string) string {
	var b strings.Builder
	b.WriteString(pathPrefix)
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			continue
		}
		b.WriteString(seg)
		b.WriteByte('/')
	}
	return b.String()
}

// load returns the stored entry for d, whatever its state (expired or
// exhausted tokens included), or ErrInvalid when there is none. A cache
// hit takes no lock; a miss reads storage under the token's shared lock,
// so that it cannot cache an entry a writer is replacing.
func (st *Store) load(ctx context.Context, d digest) (*Entry, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	if e, ok := st.cached(d); ok {
		return e, nil
	}
	mu := st.lock(d)
	mu.RLock()
	defer mu.RUnlock()
	return st.loadHeld(ctx, d)
}

// loadHeld is load for a caller holding the token's lock (in either mode).
func (st *Store) loadHeld(ctx context.Context, d digest) (*Entry, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	if e, ok := st.cached(d); ok {
		return e, nil
	}
	raw, err := st.s.Get(ctx, idKey(d))
	if errors.Is(err, logical.ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("token: lookup: %w", err)
	}
	e, err := st.decodeEntry(ctx, d, raw)
	if err != nil {
		return nil, err
	}
	st.cachePut(d, e)
	return e, nil
}

// Lookup returns the entry of a usable token (service or batch), or
// ErrInvalid for a token that does not exist, was revoked, has expired or
// has no uses left. It writes nothing.
func (st *Store) Lookup(ctx context.Context, tok secret.String) (*Entry, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	v := tok.Reveal()
	if v == "" {
		return nil, ErrInvalid
	}
	if strings.HasPrefix(v, BatchPrefix) {
		return st.lookupBatch(ctx, v)
	}
	return st.lookupDigest(ctx, st.hashToken(v))
}

func (st *Store) lookupDigest(ctx context.Context, d digest) (*Entry, error) {
	e, err := st.load(ctx, d)
	if err != nil {
		return nil, err
	}
	if !st.usableNow(e) {
		return nil, ErrInvalid
	}
	return e, nil
}

// lookupHeld is lookupDigest for a caller holding the token's lock.
func (st *Store) lookupHeld(ctx context.Context, d digest) (*Entry, error) {
	e, err := st.loadHeld(ctx, d)
	if err != nil {
		return nil, err
	}
	if !st.usableNow(e) {
		return nil, ErrInvalid
	}
	return e, nil
}

// LookupHashed returns the entry of a usable service token by its hashed
// id ([Entry.HashedID], the key leases carry), or ErrInvalid.
func (st *Store) LookupHashed(ctx context.Context, hashedID string) (*Entry, error) {
	d, ok := parseDigest(hashedID)
	if !ok {
		return nil, ErrInvalid
	}
	return st.lookupDigest(ctx, d)
}

// LookupAccessor returns the entry of the usable token with the given
// accessor, or ErrInvalid.
func (st *Store) LookupAccessor(ctx context.Context, accessor string) (*Entry, error) {
	d, err := st.accessorTarget(ctx, accessor)
	if err != nil {
		return nil, err
	}
	return st.lookupDigest(ctx, d)
}

// accessorTarget returns the hashed id an accessor leads to, or ErrInvalid.
func (st *Store) accessorTarget(ctx context.Context, accessor string) (digest, error) {
	if accessor == "" {
		return digest{}, ErrInvalid
	}
	if st.closed.Load() {
		return digest{}, ErrClosed
	}
	raw, err := st.s.Get(ctx, accessorKey(st.hashAccessor(accessor)))
	if errors.Is(err, logical.ErrNotFound) {
		return digest{}, ErrInvalid
	}
	if err != nil {
		return digest{}, fmt.Errorf("token: lookup accessor: %w", err)
	}
	d, ok := parseDigest(strings.TrimSpace(string(raw)))
	if !ok {
		return digest{}, fmt.Errorf("token: accessor index entry is malformed")
	}
	return d, nil
}

// CheckCIDR checks that remoteAddr, a client address as in
// [logical.Connection.RemoteAddr], may use the token of e: always, unless
// the token has bound CIDRs and the address lies in none of them. The
// error wraps ErrInvalid (403).
func CheckCIDR(e *Entry, remoteAddr string) error {
	if len(e.BoundCIDRs) == 0 {
		return nil
	}
	a, err := netip.ParseAddr(strings.TrimSpace(remoteAddr))
	if err == nil {
		a = a.WithZone("").Unmap()
		for _, p := range e.BoundCIDRs {
			if p.Contains(a) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: the client address is outside the token's bound CIDRs", ErrInvalid)
}

// UseToken counts one use of the token of e, which Lookup returned, for a
// request about to be served. A token without a use limit costs nothing:
// no lock, no write. For a limited token the count is decremented
// atomically in storage, so that a token created with num_uses N serves
// exactly N requests: the returned entry is the token after the use, and
// when that use was the last, its Exhausted method reports true, lookups
// fail from now on, and the caller must revoke the token with RevokeTree
// once the request has been served. A token already used up, or revoked
// meanwhile, is ErrInvalid.
func (st *Store) UseToken(ctx context.Context, e *Entry) (*Entry, error) {
	if e == nil {
		return nil, ErrInvalid
	}
	if e.NumUses == 0 {
		// A token's use limit is fixed at creation: unlimited stays so.
		return e, nil
	}
	if e.IsBatch() {
		return e, nil
	}
	d, ok := parseDigest(e.HashedID)
	if !ok {
		return nil, ErrInvalid
	}
	mu := st.lock(d)
	mu.Lock()
	defer mu.Unlock()
	cur, err := st.loadHeld(ctx, d)
	if err != nil {
		return nil, err
	}
	if !cur.usable(st.now()) || cur.NumUses == 0 {
		return nil, ErrInvalid
	}
	next := cur.clone()
	next.NumUses--
	if next.NumUses == 0 {
		next.NumUses = -1
	}
	if err := st.putEntry(ctx, d, next); err != nil {
		return nil, err
	}
	return next, nil
}

// putEntry rewrites the entry of an existing token and caches it; the
// caller holds the token's lock.
func (st *Store) putEntry(ctx context.Context, d digest, e *Entry) error {
	k, err := st.storeKeys(ctx, true)
	if err != nil {
		return err
	}
	raw, err := encodeEntry(k, d, e)
	if err != nil {
		return err
	}
	if err := st.s.Put(ctx, idKey(d), raw); err != nil {
		return fmt.Errorf("token: store: %w", err)
	}
	st.cachePut(d, e)
	return nil
}

// CreateRoot stores a new root token: policy root, never expiring, not
// renewable, an orphan. With id empty a random token is generated;
// otherwise id is used verbatim (dev mode's -dev-root-token-id) and must
// pass [ValidateID].
func (st *Store) CreateRoot(ctx context.Context, id string) (secret.String, *Entry, error) {
	if id != "" {
		if err := ValidateID(id); err != nil {
			return secret.String{}, nil, err
		}
	}
	e := &Entry{
		Policies:    []string{rootPolicy},
		Path:        "auth/token/root",
		DisplayName: "root",
	}
	tok, err := st.create(ctx, id, e)
	if err != nil {
		return secret.String{}, nil, err
	}
	return tok, e, nil
}

// Create stores a new service token for e and returns the token. It sets
// e's HashedID, Accessor, CreationTime and Type, and, for an e with a TTL
// but no ExpireTime, ExpireTime (CreationTime+TTL); a zero TTL means the
// token never expires. When e.Parent is set the parent must be a usable
// token, and the new token becomes its child. Policies are stored as
// given: the rules about who may create what belong to the caller (the
// auth/token backend enforces them).
func (st *Store) Create(ctx context.Context, e *Entry) (secret.String, error) {
	e.Type = TypeService
	return st.create(ctx, "", e)
}

// ValidateID checks a custom token id: not empty, no '.', no spaces or
// control characters, and none of the generated prefixes (hvs., s., hvb.,
// b.). The error wraps ErrBadID.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrBadID)
	case strings.HasPrefix(id, ServicePrefix), strings.HasPrefix(id, "s."),
		strings.HasPrefix(id, BatchPrefix), strings.HasPrefix(id, "b."):
		return fmt.Errorf("%w: a custom id may not start with a token prefix", ErrBadID)
	case strings.Contains(id, "."):
		return fmt.Errorf("%w: a custom id may not contain '.'", ErrBadID)
	}
	for _, c := range id {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: a custom id may not contain spaces or control characters", ErrBadID)
		}
	}
	return nil
}

// create stores a new token for e, with the custom id if not empty, and
// calls the TokenCreated hook for a service token. It fills in e (creation
// time, id hash, accessor...) and does not keep it: a token enters the
// entry cache when it is first used.
func (st *Store) create(ctx context.Context, id string, e *Entry) (secret.String, error) {
	if st.closed.Load() {
		return secret.String{}, ErrClosed
	}
	e.CreationTime = st.now().UTC()
	if e.Type == "" {
		e.Type = TypeService
	}
	if e.TTL > 0 && e.ExpireTime.IsZero() {
		e.ExpireTime = e.CreationTime.Add(e.TTL)
	}
	if e.Type == TypeBatch {
		if id != "" {
			return secret.String{}, fmt.Errorf("%w: batch tokens cannot have a custom id", ErrBadID)
		}
		return st.createBatch(ctx, e)
	}
	if e.Type != TypeService {
		return secret.String{}, fmt.Errorf("token: unknown token type %q", e.Type)
	}
	custom := id != ""
	// A token that expires begins with its order, and so does its
	// accessor: storage keeps such tokens, their accessors and leases in
	// the order they were created, so that a checkpoint of a busy login
	// endpoint appends to the B+tree instead of rewriting a leaf page
	// per token. A token that never expires (a root token: generate-root
	// encodes it with an OTP of Vault's fixed length) keeps the earlier
	// shape.
	o := ""
	if !e.ExpireTime.IsZero() {
		o = order(e.CreationTime)
	}
	if !custom {
		id = ServicePrefix + o + secret.RandomBase62(randomLen)
	}
	k, err := st.storeKeys(ctx, true)
	if err != nil {
		return secret.String{}, err
	}
	d := st.hashToken(id)
	e.HashedID = d.String()
	e.Accessor = o + secret.RandomBase62(randomLen)
	raw, err := encodeEntry(k, d, e)
	if err != nil {
		return secret.String{}, err
	}
	// With a committer the token and its lease are one write; otherwise
	// the lease is registered once the token is stored. A custom id takes
	// the second way: a lease of an earlier token with the same id may be
	// being revoked, and registering one must then not wait for it with
	// the token's lock held.
	committer, _ := st.leases.(LeaseCommitter)
	if custom || e.ExpireTime.IsZero() {
		committer = nil
	}
	if err := st.insert(ctx, d, e, raw, custom, committer); err != nil {
		return secret.String{}, err
	}
	if st.leases != nil && committer == nil {
		if err := st.leases.TokenCreated(ctx, e); err != nil {
			// Nothing refers to the token yet: take it back.
			mu := st.lock(d)
			mu.Lock()
			rerr := st.remove(ctx, d, e, "")
			mu.Unlock()
			if rerr != nil {
				st.log.Error("remove a token whose lease failed", "error", rerr)
			}
			return secret.String{}, fmt.Errorf("token: register lease: %w", err)
		}
	}
	return secret.NewString(id), nil
}

// leased reports whether e has a lease of its own: one that expires, in a
// store with lease hooks. Its lease record indexes it by creation path.
func (st *Store) leased(e *Entry) bool { return st.leases != nil && !e.ExpireTime.IsZero() }

// insert writes a new token's entry and indexes under its lock (and its
// parent's, which must be usable); with committer, through it, together
// with the token's lease.
func (st *Store) insert(ctx context.Context, d digest, e *Entry, raw []byte, custom bool, committer LeaseCommitter) error {
	var unlock func()
	if e.Parent != "" {
		pd, ok := parseDigest(e.Parent)
		if !ok {
			return fmt.Errorf("%w: malformed parent", ErrInvalid)
		}
		unlock = st.lockWithParent(d, pd)
		defer unlock()
		if _, err := st.lookupHeld(ctx, pd); err != nil {
			return fmt.Errorf("parent: %w", err)
		}
	} else {
		mu := st.lock(d)
		mu.Lock()
		defer mu.Unlock()
	}
	if custom {
		if _, err := st.loadHeld(ctx, d); err == nil {
			return fmt.Errorf("%w: a token with this id already exists", ErrBadID)
		} else if !errors.Is(err, ErrInvalid) {
			return err
		}
	}
	// Indexes first: without transactions a crash leaves at worst an index
	// entry pointing nowhere, which readers skip and Tidy removes.
	w := make(writeOps, 0, 4)
	if e.Parent != "" {
		w.put(childKey(e.Parent, e.HashedID), nil)
	}
	if e.Path != "" && !st.leased(e) {
		w.put(pathIndexDir(e.Path)+e.HashedID, nil)
	}
	w.put(accessorKey(st.hashAccessor(e.Accessor)), []byte(e.HashedID))
	w.put(idPrefix+e.HashedID, raw) // idKey(d), without encoding d again
	if committer != nil {
		if err := committer.CommitToken(ctx, e, w); err != nil {
			return fmt.Errorf("token: register lease: %w", err)
		}
	} else if err := w.apply(ctx, st.s); err != nil {
		return err
	}
	return nil
}

// remove deletes a token's entry and every index entry naming it; the
// caller holds its lock, or the token is not yet known to anyone.
// staleParent, when set, is a parent whose child index also names it.
func (st *Store) remove(ctx context.Context, d digest, e *Entry, staleParent string) error {
	var w writeOps
	w.del(idKey(d))
	if e.Accessor != "" {
		w.del(accessorKey(st.hashAccessor(e.Accessor)))
	}
	if e.Parent != "" {
		w.del(childKey(e.Parent, e.HashedID))
	}
	if staleParent != "" && staleParent != e.Parent {
		w.del(childKey(staleParent, e.HashedID))
	}
	if e.Path != "" && !st.leased(e) {
		w.del(pathIndexDir(e.Path) + e.HashedID)
	}
	if err := w.apply(ctx, st.s); err != nil {
		return err
	}
	st.cacheDelete(d)
	return nil
}

// formatCIDR renders a block as Vault does: a single address without its
// /32 or /128.
func formatCIDR(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
