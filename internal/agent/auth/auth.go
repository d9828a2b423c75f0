// Package auth is the auto-auth of `vigil agent` and `vigil run`: it gets
// a token through an auth method without a person (AppRole role and secret
// ids in files, a JWT or Kubernetes service-account token in a file that
// is read again at each login, a token in a file or given), and a
// [Manager] keeps that token alive: it renews it at about two thirds of
// its TTL, logs in again when renewal stops helping (the max TTL is near,
// the token was revoked, or it expired during an outage) or when a polled
// credential file holds a new value (a new JWT), and backs off with
// jitter while the server cannot be reached.
//
// The agent builds its method from Vault Agent's method block, which
// package config parses and checks; `vigil run -method=...` builds the
// same methods from its KEY=VALUE arguments. Both go through [NewLogin]
// and [NewToken].
//
// Secrets (tokens, secret ids, JWTs) are held as [secret.String] and
// revealed only to send them; they are never logged, written to disk or put
// in an error. The package reaches the server only through the api client.
package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// DefaultKubernetesTokenPath is where a pod finds its service-account
// token when no token_path is set.
const DefaultKubernetesTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// ErrNoRelogin means the method cannot get another token: it was given a
// token (VIGIL_TOKEN, a token file that has not changed), and that token
// can no longer be renewed. It wraps [lifetime.ErrPermanent], so retries
// stop at once.
var ErrNoRelogin = fmt.Errorf("auth: the token cannot be renewed further and there is no way to log in again: %w", lifetime.ErrPermanent)

// Token is a token a [Method] got.
type Token struct {
	// Value is the token itself.
	Value secret.String
	// Accessor names the token in logs and audit entries.
	Accessor string
	// TTL is the time left when it was obtained; 0 means it never
	// expires.
	TTL time.Duration
	// Renewable says whether auth/token/renew-self may extend it.
	Renewable bool
	// Issued is true for a token a login issued for this process, false
	// for one it was given: only issued tokens are revoked at the end.
	Issued bool
	// Wrapped, for a response-wrapped login (see [WrappingMethod]), is
	// the login's wrap_info: the token is whoever unwraps it, so Value is
	// empty and Accessor is the wrapping token's.
	Wrapped *api.SecretWrapInfo
}

// Method gets a token.
type Method interface {
	// Login gets a new token; c carries the connection settings (its own
	// token is neither sent nor changed). Refusals come back as the
	// server's *api.ResponseError.
	Login(ctx context.Context, c *api.Client) (Token, error)
	// String describes the method for logs and errors: its type and
	// mount, never a credential.
	String() string
}

// WrappingMethod is a [Method] whose login can be response-wrapped (Vault
// Agent's wrap_ttl on the auto_auth method): the client that unwraps it
// can check that it was created at the method's login path.
type WrappingMethod interface {
	Method
	// LoginWrapped logs in with the response wrapped for ttl, and returns
	// the wrap_info.
	LoginWrapped(ctx context.Context, c *api.Client, ttl time.Duration) (*api.SecretWrapInfo, error)
}

// CredentialWatcher is a [Method] that can tell when its credential files
// hold new values (see [Credential.Poll]).
type CredentialWatcher interface {
	Method
	// WatchCredentials reads the method's polled credential files until
	// ctx ends; the channel receives when one of them held a new value. It
	// is nil when the method polls no file.
	WatchCredentials(ctx context.Context, clk clock.Clock) <-chan struct{}
}

// Credential is a value a method sends at login: read from a file at each
// login (white space around it trimmed), or given.
type Credential struct {
	// File, when set, is read at each login.
	File string
	// Value is used when File is empty.
	Value secret.String
	// Remove deletes File once read (Vault Agent's
	// remove_secret_id_file_after_reading); later logins use the value
	// read, kept in memory only.
	Remove bool
	// FollowSymlinks, with Remove, deletes the file a symlink at File
	// points to rather than the link (remove_jwt_follows_symlinks).
	FollowSymlinks bool
	// Poll, when set, makes a [Manager] read File every Poll: a new value
	// there means a new login at once (Vault Agent's JWT method, whose
	// jwt_read_period it is), not at the token's next renewal.
	Poll time.Duration
	// UnwrapPath, when set, makes File hold a wrapping token (Vault
	// Agent's secret_id_response_wrapping_path): it must have been
	// created at UnwrapPath, and the credential is the secret_id of the
	// response it wraps. See readWrapped.
	UnwrapPath string

	mu   sync.Mutex
	last secret.String
	// lastWrapped is the wrapping token last unwrapped into last.
	lastWrapped secret.String
}

// FileCredential returns a credential read from path at each login.
func FileCredential(path string) *Credential { return &Credential{File: path} }

// ValueCredential returns a credential with a fixed value.
func ValueCredential(v secret.String) *Credential { return &Credential{Value: v} }

// read returns the credential's current value. A file that is missing or
// empty falls back to the value last read from it, as Vault Agent does, so
// that a removed secret-id file does not stop later logins.
func (c *Credential) read() (secret.String, error) {
	if c.File == "" {
		return c.Value, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readLocked()
}

// changed reads File again for a watcher, and reports whether it held a
// value other than the one last read. A missing or empty file is no
// change: the value read before stays.
func (c *Credential) changed() bool {
	if c.File == "" || c.UnwrapPath != "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.last
	v, err := c.readLocked()
	return err == nil && !v.Equal(prev)
}

func (c *Credential) readLocked() (secret.String, error) {
	target := c.File
	if c.Remove && c.FollowSymlinks {
		if t, err := filepath.EvalSymlinks(c.File); err == nil {
			target = t
		}
	}
	b, err := os.ReadFile(c.File)
	v := strings.TrimSpace(string(b))
	clear(b)
	switch {
	case err != nil && c.last.IsEmpty():
		return secret.String{}, fmt.Errorf("read %s: %w", c.File, err)
	case err == nil && v == "" && c.last.IsEmpty():
		return secret.String{}, fmt.Errorf("read %s: the file is empty", c.File)
	case err != nil || v == "":
		return c.last, nil
	}
	c.last = secret.NewString(v)
	if c.Remove {
		if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
			return c.last, fmt.Errorf("remove %s after reading it: %w", target, err)
		}
	}
	return c.last, nil
}

// readWrapped returns the secret ID a wrapping token in File holds. A
// wrapping token is good once: the one unwrapped before (or a file since
// removed) gives the secret ID it gave then. A new token is looked up
// first, without a token, and refused unless it was created at
// UnwrapPath: a token for another path (a response an attacker wrapped)
// is never unwrapped.
func (c *Credential) readWrapped(ctx context.Context, cl *api.Client) (secret.String, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := os.ReadFile(c.File)
	v := secret.NewString(strings.TrimSpace(string(b)))
	clear(b)
	switch {
	case (err != nil || v.IsEmpty()) && !c.last.IsEmpty():
		return c.last, nil
	case err != nil:
		return secret.String{}, fmt.Errorf("read %s: %w", c.File, err)
	case v.IsEmpty():
		return secret.String{}, fmt.Errorf("read %s: the file is empty", c.File)
	case v.Equal(c.lastWrapped):
		return c.last, nil
	}
	look, err := cl.WithToken("").Logical().Write(ctx, "sys/wrapping/lookup", map[string]any{"token": v.Reveal()})
	if err != nil {
		return secret.String{}, fmt.Errorf("look up the wrapping token in %s: %w", c.File, err)
	}
	if got, _ := look.Data["creation_path"].(string); strings.Trim(got, "/") != strings.Trim(c.UnwrapPath, "/") {
		return secret.String{}, fmt.Errorf("the wrapping token in %s was created at %q, not at %q (secret_id_response_wrapping_path): not unwrapping it", c.File, got, c.UnwrapPath)
	}
	s, err := cl.WithToken(v.Reveal()).Logical().Write(ctx, "sys/wrapping/unwrap", nil)
	if err != nil {
		return secret.String{}, fmt.Errorf("unwrap the wrapping token in %s: %w", c.File, err)
	}
	sid := ""
	if s != nil {
		sid, _ = s.Data["secret_id"].(string)
	}
	if sid == "" {
		return secret.String{}, fmt.Errorf("the response wrapped in %s holds no secret_id", c.File)
	}
	c.lastWrapped, c.last = v, secret.NewString(sid)
	if c.Remove {
		if err := os.Remove(c.File); err != nil && !errors.Is(err, os.ErrNotExist) {
			return c.last, fmt.Errorf("remove %s after reading it: %w", c.File, err)
		}
	}
	return c.last, nil
}

// mountOr returns mount, or auth/<def> when it is empty.
func mountOr(mount, def string) string {
	mount = strings.Trim(mount, "/")
	if mount == "" {
		return "auth/" + def
	}
	if !strings.HasPrefix(mount, "auth/") {
		mount = "auth/" + mount
	}
	return mount
}
