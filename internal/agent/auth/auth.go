// Package auth is the auto-auth of `vigil agent` and `vigil run`: it gets
// a token through an auth method without a person (AppRole role and secret
// ids in files, a JWT or Kubernetes service-account token in a file that
// is read again at each login, a token in a file or given), and a
// [Manager] keeps that token alive: it renews it at about two thirds of
// its TTL, logs in again when renewal stops helping (the max TTL is near,
// the token was revoked, or it expired during an outage), and backs off
// with jitter while the server cannot be reached.
//
// The methods are configured as in Vault Agent,
//
//	method "approle" {
//	  mount_path = "auth/approle"
//	  config = {
//	    role_id_file_path   = "/etc/vigil/role-id"
//	    secret_id_file_path = "/etc/vigil/secret-id"
//	  }
//	}
//
// which the agent passes in as a [Config] ([New] checks it: unknown keys
// are errors); `vigil run -method=...` builds the same methods from its
// KEY=VALUE arguments ([NewLogin], [NewToken]).
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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
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
		if err := os.Remove(c.File); err != nil && !errors.Is(err, os.ErrNotExist) {
			return c.last, fmt.Errorf("remove %s after reading it: %w", c.File, err)
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

// Config is one auto-auth method as Vault Agent's `method` block has it.
type Config struct {
	// Type is approle, jwt, kubernetes or token_file.
	Type string
	// MountPath is where the method is mounted; default auth/<Type>.
	MountPath string
	// Config holds the method's settings (the block's `config` map):
	//   - approle: role_id_file_path (required), secret_id_file_path,
	//     remove_secret_id_file_after_reading (default true, as in Vault
	//     Agent);
	//   - jwt: path (required: the file holding the JWT), role (required),
	//     remove_jwt_after_reading (default true, as in Vault Agent; set it
	//     to false for tokens that a platform rotates in place);
	//   - kubernetes: role (required), token_path (default
	//     /var/run/secrets/kubernetes.io/serviceaccount/token);
	//   - token_file: token_file_path (required).
	Config map[string]any
}

// New builds the method cfg describes.
func New(cfg Config) (Method, error) {
	d := &decoder{m: cfg.Config, method: cfg.Type}
	var m Method
	switch cfg.Type {
	case "approle":
		role := d.str("role_id_file_path", true)
		sid := d.str("secret_id_file_path", false)
		remove := d.boolean("remove_secret_id_file_after_reading", true)
		unwrap := d.str("secret_id_response_wrapping_path", false)
		fields := map[string]*Credential{"role_id": FileCredential(role)}
		if sid != "" {
			fields["secret_id"] = &Credential{File: sid, Remove: remove, UnwrapPath: unwrap}
		} else if unwrap != "" {
			d.errs = append(d.errs, errors.New("secret_id_response_wrapping_path needs secret_id_file_path"))
		}
		m = &loginMethod{typ: "approle", mount: mountOr(cfg.MountPath, "approle"), fields: fields}
	case "jwt":
		path := d.str("path", true)
		role := d.str("role", true)
		remove := d.boolean("remove_jwt_after_reading", true)
		m = &loginMethod{typ: "jwt", mount: mountOr(cfg.MountPath, "jwt"), fields: map[string]*Credential{
			"role": ValueCredential(secret.NewString(role)),
			"jwt":  {File: path, Remove: remove},
		}}
	case "kubernetes":
		role := d.str("role", true)
		path := d.str("token_path", false)
		if path == "" {
			path = DefaultKubernetesTokenPath
		}
		m = &loginMethod{typ: "kubernetes", mount: mountOr(cfg.MountPath, "kubernetes"), fields: map[string]*Credential{
			"role": ValueCredential(secret.NewString(role)),
			"jwt":  FileCredential(path),
		}}
	case "token_file":
		m = &tokenMethod{cred: FileCredential(d.str("token_file_path", true))}
	case "":
		return nil, errors.New("auth: no method type")
	default:
		return nil, fmt.Errorf("auth: unknown method type %q (want approle, jwt, kubernetes or token_file)", cfg.Type)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
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

// decoder reads a method's config map, remembering which keys it used.
type decoder struct {
	m      map[string]any
	method string
	used   map[string]bool
	errs   []error
}

func (d *decoder) get(key string) (any, bool) {
	if d.used == nil {
		d.used = map[string]bool{}
	}
	d.used[key] = true
	v, ok := d.m[key]
	return v, ok && v != nil
}

func (d *decoder) str(key string, required bool) string {
	v, ok := d.get(key)
	if !ok {
		if required {
			d.errs = append(d.errs, fmt.Errorf("%s is required", key))
		}
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		d.errs = append(d.errs, fmt.Errorf("%s must be a string", key))
		return ""
	}
	if required && strings.TrimSpace(s) == "" {
		d.errs = append(d.errs, fmt.Errorf("%s is required", key))
	}
	return s
}

func (d *decoder) boolean(key string, def bool) bool {
	v, ok := d.get(key)
	if !ok {
		return def
	}
	switch b := v.(type) {
	case bool:
		return b
	case string:
		switch strings.ToLower(b) {
		case "true", "1":
			return true
		case "false", "0":
			return false
		}
	}
	d.errs = append(d.errs, fmt.Errorf("%s must be true or false", key))
	return def
}

func (d *decoder) finish() error {
	var unknown []string
	for k := range d.m {
		if !d.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		d.errs = append(d.errs, fmt.Errorf("unknown key %q", k))
	}
	if len(d.errs) == 0 {
		return nil
	}
	return fmt.Errorf("auth: method %q: %w", d.method, errors.Join(d.errs...))
}
