// Package storage defines the physical storage contract: a small, untrusted
// key/value store that only ever sees barrier ciphertext. It knows nothing of
// the barrier, mounts or tokens.
//
// Keys are '/'-separated paths without a leading '/'. List returns the
// immediate children of a prefix: leaf keys by name and "directories" by
// name with a trailing '/', sorted, each once.
//
// Optional capabilities (transactions, HA locks) are extension interfaces
// checked with a type assertion. Every backend must pass the conformance
// suite in package storagetest.
package storage

import (
	"context"
	"errors"
	"strings"
)

// ErrNotFound is returned by Get for a key that does not exist.
var ErrNotFound = errors.New("storage: key not found")

// ErrClosed is returned by every method of a closed backend.
var ErrClosed = errors.New("storage: backend closed")

// ErrInvalidKey is returned for an empty key or one that starts with '/'.
var ErrInvalidKey = errors.New("storage: invalid key")

// Entry is one stored value.
type Entry struct {
	Key   string
	Value []byte
}

// Backend is the physical store. Implementations must be safe for
// concurrent use. A successful Put or Delete is durable: it survives a
// crash of the process (and, for file-backed stores, of the machine).
type Backend interface {
	// Get returns the value stored at key, or an error wrapping ErrNotFound.
	// The returned slice belongs to the caller, who may modify it.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value at key, replacing any previous value. The backend
	// does not retain value after Put returns.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the immediate children of prefix (see the package doc).
	// A prefix that is empty or ends in '/' names a directory.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Op is one write of a transaction: a Put when Delete is false.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// Transactional is implemented by backends that can apply several writes
// atomically: after a crash either all of ops are visible or none is.
type Transactional interface {
	Backend
	Transaction(ctx context.Context, ops []Op) error
}

// Closer is implemented by backends that hold resources (files, pools).
type Closer interface {
	Close() error
}

// ValidateKey reports whether key is acceptable to every backend.
func ValidateKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") {
		return ErrInvalidKey
	}
	return nil
}

// ChildOf reports the immediate child of prefix that key lies in: the leaf
// name for a direct child, or the directory name with a trailing '/'. ok is
// false when key is not under prefix. Backends use it to implement List.
func ChildOf(prefix, key string) (child string, ok bool) {
	if !strings.HasPrefix(key, prefix) || len(key) == len(prefix) {
		return "", false
	}
	rest := key[len(prefix):]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i+1], true
	}
	return rest, true
}

// ErrFenced is returned by the writes of an HA backend whose node held the
// leader lock and lost it (it expired, another node took it, or it was
// released): a former leader, even one that was paused and resumed, can no
// longer change anything.
var ErrFenced = errors.New("storage: this node no longer holds the leader lock")

// HABackend is implemented by backends that several servers share, one of
// them active. The active holds the leader lock; the others wait for it.
//
// Fencing: once a node's Campaign has succeeded, every write through this
// backend value (Put, Delete, Transaction) is applied only while that node
// still holds the lock, checked by the database in the same statement, and
// fails with an error wrapping ErrFenced after it lost it, until a new
// Campaign succeeds. Writes before the first Campaign are not fenced (init
// happens before any election).
type HABackend interface {
	Backend
	// Campaign blocks until this node holds the leader lock, or ctx ends
	// (returning ctx's error). id names the node; addr is the address
	// clients are forwarded to (its api_addr), which Leader reports.
	Campaign(ctx context.Context, id, addr string) (Leadership, error)
	// Leader returns the current holder of the lock, and false when no
	// node holds it (none yet, or the last holder's lock expired).
	Leader(ctx context.Context) (Holder, bool, error)
}

// Holder names the node that holds the leader lock.
type Holder struct {
	ID   string
	Addr string
}

// Leadership is a held leader lock.
type Leadership interface {
	// Lost is closed once the lock is lost: it could not be renewed in
	// time, another node took it over, or Release gave it up.
	Lost() <-chan struct{}
	// Release gives the lock up so that another node can take it at once.
	Release(ctx context.Context) error
}

// Snapshotter is implemented by backends that can copy out and replace
// their whole content consistently: what sys/storage/snapshot and
// `vigil operator migrate` use. Values are copied as stored (ciphertext).
type Snapshotter interface {
	Backend
	// Snapshot calls fn for every entry of one consistent view of the
	// store (no write is half seen), in key order. It stops at fn's first
	// error and returns it.
	Snapshot(ctx context.Context, fn func(key string, value []byte) error) error
	// Restore replaces the whole content with the entries next yields,
	// atomically where the backend can (the content is either the old or
	// the new one after a crash). next returns io.EOF after the last
	// entry.
	Restore(ctx context.Context, next func() (Entry, error)) error
}
