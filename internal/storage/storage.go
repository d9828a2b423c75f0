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
