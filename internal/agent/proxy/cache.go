package proxy

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// cacheKey identifies a request: a hash of its method, path, query,
// X-Vault-* options, body and token.
type cacheKey [sha256.Size]byte

// tokenID identifies a token in the cache's indexes without keeping the
// token itself as a map key.
type tokenID [sha256.Size]byte

func idOf(tok secret.String) tokenID { return sha256.Sum256([]byte(tok.Reveal())) }

// keyOf computes a request's cache key. Each part is length-prefixed, so
// that no two different requests hash the same input.
func keyOf(r *http.Request, body []byte, tok secret.String) cacheKey {
	h := sha256.New()
	part := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	part([]byte(r.Method))
	part([]byte(r.URL.EscapedPath()))
	part([]byte(r.URL.Query().Encode()))
	// The X-Vault-* headers other than the token and X-Vault-Request
	// change what the server does (response wrapping, say): an answer
	// made with them is not the answer to a request without them.
	var names []string
	for name := range r.Header {
		if strings.HasPrefix(name, "X-Vault-") && name != tokenHeader && name != requestHeader {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		part([]byte(name))
		part([]byte(strings.Join(r.Header.Values(name), "\x00")))
	}
	part(body)
	part([]byte(tok.Reveal()))
	var k cacheKey
	h.Sum(k[:0])
	return k
}

// entryKind says what a cache entry holds.
type entryKind int

const (
	kindLease entryKind = iota // an answer with a lease (dynamic credentials)
	kindToken                  // an answer with a new token (a login, a token creation)
)

// entry is one cached answer.
type entry struct {
	key  cacheKey
	kind entryKind
	// path is the request's API path (without /v1/), for cache-clear by
	// request_path and revoke-prefix.
	path string

	// The answer. body holds secrets: it never leaves memory.
	status int
	header http.Header
	body   []byte

	// leaseID and owner are set for kindLease: the lease, and the token
	// that obtained it (which renews it).
	leaseID string
	owner   *tokenNode
	// node is set for kindToken: the token the answer created.
	node *tokenNode

	ttl     time.Duration // as issued; renewals ask for as much again
	stored  time.Time
	expires time.Time // moved by each renewal

	elem   *list.Element // in leaseCache.lru
	cancel context.CancelFunc
}

// tokenNode is a token the agent manages: the auto-auth token, or a token
// created through the proxy. Its leases and its child tokens (created
// with it, not orphans) go when it goes.
type tokenNode struct {
	id       tokenID
	token    secret.String
	accessor string
	parent   *tokenNode
	children map[*tokenNode]struct{}
	leases   map[*entry]struct{}
	// entry is the cached answer that created the token; nil for the
	// auto-auth token, which auto-auth renews.
	entry *entry
}

// flight is a request in progress that identical requests wait for.
type flight struct {
	done chan struct{}
	once sync.Once
}

func (f *flight) release() { f.once.Do(func() { close(f.done) }) }

// leaseCache is Vault Agent's lease cache: answers with leases or new
// tokens, shared by identical requests, renewed in the background and
// evicted when they can no longer be used.
type leaseCache struct {
	client    *api.Client
	clk       clock.Clock
	log       *slog.Logger
	max       int
	autoToken func() secret.String // nil without auto-auth

	mu        sync.Mutex
	entries   map[cacheKey]*entry
	leases    map[string]*entry
	tokens    map[tokenID]*tokenNode
	accessors map[string]*tokenNode
	lru       *list.List // of *entry, the most recently used first
	flights   map[cacheKey]*flight
	// base is the parent of the renewals' contexts, set by start; stopped
	// is set by stop, after which nothing new is cached.
	base       context.Context
	cancelBase context.CancelFunc
	stopped    bool
	renewals   sync.WaitGroup
}

func newLeaseCache(client *api.Client, clk clock.Clock, log *slog.Logger, max int, autoToken func() secret.String) *leaseCache {
	return &leaseCache{
		client:    client,
		clk:       clk,
		log:       log,
		max:       max,
		autoToken: autoToken,
		entries:   map[cacheKey]*entry{},
		leases:    map[string]*entry{},
		tokens:    map[tokenID]*tokenNode{},
		accessors: map[string]*tokenNode{},
		lru:       list.New(),
		flights:   map[cacheKey]*flight{},
	}
}

// start lets the cache store answers; their renewals run until ctx ends
// or stop.
func (c *leaseCache) start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.cancelBase = context.WithCancel(ctx)
}

// stop ends every renewal, waits for them and empties the cache.
func (c *leaseCache) stop() {
	c.mu.Lock()
	c.stopped = true
	if c.cancelBase != nil {
		c.cancelBase()
	}
	c.mu.Unlock()
	c.renewals.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		secret.Zero(e.body)
	}
	clear(c.entries)
	clear(c.leases)
	clear(c.tokens)
	clear(c.accessors)
	c.lru.Init()
}

// cachedResponse is a cached answer as served: its lease_duration
// lowered to the time left.
type cachedResponse struct {
	status int
	header http.Header
	body   []byte
	age    time.Duration
}

func (r *cachedResponse) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range r.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(len(r.body)))
	h.Set("X-Cache", "HIT")
	h.Set("Age", strconv.FormatInt(int64(r.age/time.Second), 10))
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

// begin returns the cached answer for key, or else the flight of an
// identical request in progress to wait for (leader false), or a new
// flight that the caller leads and must [leaseCache.finish].
func (c *leaseCache) begin(key cacheKey) (hit *cachedResponse, f *flight, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hit := c.lookupLocked(key); hit != nil {
		return hit, nil, false
	}
	if f := c.flights[key]; f != nil {
		return nil, f, false
	}
	f = &flight{done: make(chan struct{})}
	c.flights[key] = f
	return nil, f, true
}

// finish ends a flight: the requests waiting for it look at the cache.
func (c *leaseCache) finish(key cacheKey, f *flight) {
	c.mu.Lock()
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	c.mu.Unlock()
	f.release()
}

// lookup returns the cached answer for key, or nil.
func (c *leaseCache) lookup(key cacheKey) *cachedResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookupLocked(key)
}

func (c *leaseCache) lookupLocked(key cacheKey) *cachedResponse {
	e := c.entries[key]
	if e == nil {
		return nil
	}
	now := c.clk.Now()
	left := e.expires.Sub(now)
	if left < time.Second {
		c.evictLocked(e, "expired")
		return nil
	}
	c.lru.MoveToFront(e.elem)
	return &cachedResponse{status: e.status, header: e.header.Clone(), body: withTTL(e.body, e.kind, left), age: now.Sub(e.stored)}
}

// envelope is the part of an answer the cache reads.
type envelope struct {
	LeaseID       string `json:"lease_id"`
	LeaseDuration int64  `json:"lease_duration"`
	Renewable     bool   `json:"renewable"`
	Auth          *struct {
		ClientToken   string `json:"client_token"`
		Accessor      string `json:"accessor"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
		Orphan        bool   `json:"orphan"`
	} `json:"auth"`
}

// store caches the answer to x when it carries a renewable lease obtained
// with a managed token, or a new renewable token created by a managed
// token or as an orphan, and starts renewing it.
func (c *leaseCache) store(x *exchange, status int, header http.Header, body []byte) {
	var env envelope
	if json.Unmarshal(body, &env) != nil {
		return
	}
	if strings.HasPrefix(x.apiPath, "sys/wrapping/") {
		// An unwrapped response carries the lease or token it wrapped,
		// but a wrapping token is good once: a cached unwrap would hand
		// the response out again.
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base == nil || c.stopped {
		return
	}
	if _, dup := c.entries[x.key]; dup {
		return
	}
	var e *entry
	switch {
	case env.LeaseID != "":
		if !env.Renewable || env.LeaseDuration <= 0 {
			c.log.Debug("cache: not caching a lease that is not renewable", "path", x.apiPath)
			return
		}
		if c.leases[env.LeaseID] != nil || c.managedLocked(x.token, false) == nil {
			c.log.Debug("cache: not caching a lease of a token the agent does not manage", "path", x.apiPath)
			return
		}
		c.makeRoomLocked()
		owner := c.managedLocked(x.token, true)
		if owner == nil {
			return // evicted to make room
		}
		e = &entry{kind: kindLease, leaseID: env.LeaseID, owner: owner, ttl: seconds(env.LeaseDuration)}
		owner.leases[e] = struct{}{}
		c.leases[e.leaseID] = e
	case env.Auth != nil && env.Auth.ClientToken != "":
		a := env.Auth
		tok := secret.NewString(a.ClientToken)
		if isTokenRenewal(x.apiPath) || tok.Equal(x.token) || c.tokens[idOf(tok)] != nil {
			return
		}
		if !a.Renewable || a.LeaseDuration <= 0 {
			c.log.Debug("cache: not caching a token that is not renewable", "path", x.apiPath)
			return
		}
		if !a.Orphan && c.managedLocked(x.token, false) == nil {
			c.log.Debug("cache: not caching a child of a token the agent does not manage", "path", x.apiPath)
			return
		}
		c.makeRoomLocked()
		var parent *tokenNode
		if !a.Orphan {
			if parent = c.managedLocked(x.token, true); parent == nil {
				return // evicted to make room
			}
		}
		node := &tokenNode{id: idOf(tok), token: tok, accessor: a.Accessor, parent: parent, children: map[*tokenNode]struct{}{}, leases: map[*entry]struct{}{}}
		if parent != nil {
			parent.children[node] = struct{}{}
		}
		c.tokens[node.id] = node
		if node.accessor != "" {
			c.accessors[node.accessor] = node
		}
		e = &entry{kind: kindToken, node: node, ttl: seconds(a.LeaseDuration)}
		node.entry = e
	default:
		return
	}
	now := c.clk.Now()
	e.key, e.path, e.status = x.key, x.apiPath, status
	e.header = header.Clone()
	for _, h := range []string{"Content-Length", "Date", "X-Cache", "Age"} {
		e.header.Del(h)
	}
	e.body = bytes.Clone(body)
	e.stored, e.expires = now, now.Add(e.ttl)
	c.entries[e.key] = e
	e.elem = c.lru.PushFront(e)
	c.log.Debug("cache: stored", "path", e.path, "lease_id", e.leaseID, "ttl", e.ttl)
	c.renewLocked(e)
}

// managedLocked returns the node of tok when the agent manages it: a
// token created through the proxy, or the auto-auth token (whose node is
// made when create is set and it has none yet).
func (c *leaseCache) managedLocked(tok secret.String, create bool) *tokenNode {
	if tok.IsEmpty() {
		return nil
	}
	id := idOf(tok)
	if n := c.tokens[id]; n != nil {
		return n
	}
	if c.autoToken == nil || !tok.Equal(c.autoToken()) {
		return nil
	}
	n := &tokenNode{id: id, token: tok, children: map[*tokenNode]struct{}{}, leases: map[*entry]struct{}{}}
	if create {
		c.tokens[id] = n
	}
	return n
}

// makeRoomLocked evicts the least recently used entries until one more
// fits.
func (c *leaseCache) makeRoomLocked() {
	for len(c.entries) >= c.max {
		back := c.lru.Back()
		if back == nil {
			return
		}
		c.evictLocked(back.Value.(*entry), "cache full")
	}
}

// evictLocked removes e; for a token, its leases and child tokens too. It
// returns how many entries went.
func (c *leaseCache) evictLocked(e *entry, reason string) int {
	if c.entries[e.key] != e {
		return 0 // already gone
	}
	if e.kind == kindToken {
		return c.evictTokenLocked(e.node, reason, true)
	}
	c.removeLocked(e, reason)
	delete(e.owner.leases, e)
	c.pruneLocked(e.owner)
	return 1
}

// evictTokenLocked forgets the token n: its leases and its own entry go;
// its children go too with cascade, and become orphans without (as
// revoke-orphan does on the server).
func (c *leaseCache) evictTokenLocked(n *tokenNode, reason string, cascade bool) int {
	count := 0
	for e := range n.leases {
		c.removeLocked(e, reason)
		count++
	}
	clear(n.leases)
	for child := range n.children {
		if cascade {
			count += c.evictTokenLocked(child, reason, true)
		} else {
			child.parent = nil
		}
	}
	clear(n.children)
	if n.entry != nil && c.entries[n.entry.key] == n.entry {
		c.removeLocked(n.entry, reason)
		count++
	}
	if c.tokens[n.id] == n {
		delete(c.tokens, n.id)
	}
	if n.accessor != "" && c.accessors[n.accessor] == n {
		delete(c.accessors, n.accessor)
	}
	if p := n.parent; p != nil {
		n.parent = nil
		delete(p.children, n)
		c.pruneLocked(p)
	}
	return count
}

// pruneLocked forgets an auto-auth token node that no longer holds
// anything.
func (c *leaseCache) pruneLocked(n *tokenNode) {
	if n.entry == nil && len(n.leases) == 0 && len(n.children) == 0 && c.tokens[n.id] == n {
		delete(c.tokens, n.id)
	}
}

// removeLocked removes one entry from the indexes, stops its renewal and
// wipes its answer.
func (c *leaseCache) removeLocked(e *entry, reason string) {
	delete(c.entries, e.key)
	if e.leaseID != "" && c.leases[e.leaseID] == e {
		delete(c.leases, e.leaseID)
	}
	if e.elem != nil {
		c.lru.Remove(e.elem)
		e.elem = nil
	}
	if e.cancel != nil {
		e.cancel()
	}
	secret.Zero(e.body)
	e.body = nil
	c.log.Debug("cache: evicted", "path", e.path, "lease_id", e.leaseID, "reason", reason)
}

// withTTL returns body with its lease_duration (auth.lease_duration for a
// token) set to the time left.
func withTTL(body []byte, kind entryKind, left time.Duration) []byte {
	secs := []byte(strconv.FormatInt(int64(left/time.Second), 10))
	var env map[string]json.RawMessage
	if json.Unmarshal(body, &env) != nil {
		return bytes.Clone(body)
	}
	switch kind {
	case kindLease:
		env["lease_duration"] = secs
	case kindToken:
		var auth map[string]json.RawMessage
		if json.Unmarshal(env["auth"], &auth) != nil || auth == nil {
			return bytes.Clone(body)
		}
		auth["lease_duration"] = secs
		b, err := marshal(auth)
		if err != nil {
			return bytes.Clone(body)
		}
		env["auth"] = b
	}
	b, err := marshal(env)
	if err != nil {
		return bytes.Clone(body)
	}
	return b
}

// marshal encodes v as JSON without escaping HTML characters, so that
// the values pass through as the server wrote them.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// isTokenRenewal reports the token renewal paths, whose answers carry an
// existing token, not a new one.
func isTokenRenewal(apiPath string) bool {
	for _, p := range []string{"auth/token/renew", "auth/token/renew-self", "auth/token/renew-accessor"} {
		if apiPath == p || strings.HasPrefix(apiPath, p+"/") {
			return true
		}
	}
	return false
}
