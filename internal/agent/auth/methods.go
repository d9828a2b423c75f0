package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// usernameMethods put the user name in the login path; auto-auth does not
// serve them (Vault Agent does not either): a person's password has no
// place in an unattended process.
var usernameMethods = []string{"userpass", "ldap", "okta", "radius"}

// NewLogin returns a method that logs in at mount (default auth/<typ>)
// with fields, each read at every login: the form `vigil run
// -method=TYPE KEY=VALUE...` builds, as `vigil login -method` sends them.
func NewLogin(typ, mount string, fields map[string]*Credential) (Method, error) {
	switch {
	case typ == "" || typ == "token":
		return nil, fmt.Errorf("auth: %q is not a login method", typ)
	case slices.Contains(usernameMethods, typ):
		return nil, fmt.Errorf("auth: the %s method is for people; auto-auth supports approle, jwt, kubernetes and tokens", typ)
	case len(fields) == 0:
		return nil, fmt.Errorf("auth: the %s login needs KEY=VALUE arguments (role=..., jwt=@file...)", typ)
	}
	return &loginMethod{typ: typ, mount: mountOr(mount, typ), fields: fields}, nil
}

// NewToken returns a method that uses a given token: it checks it with
// auth/token/lookup-self and, once the token can no longer be renewed,
// gets another only if the credential (a file) holds a new one.
func NewToken(c *Credential) Method { return &tokenMethod{cred: c} }

// loginMethod logs in at <mount>/login with its fields.
type loginMethod struct {
	typ    string
	mount  string
	fields map[string]*Credential
}

func (m *loginMethod) String() string { return m.typ + " at " + m.mount }

// data reads the fields to send at login; the caller clears it.
func (m *loginMethod) data(ctx context.Context, c *api.Client) (map[string]any, error) {
	data := make(map[string]any, len(m.fields))
	for k, cred := range m.fields {
		var v secret.String
		var err error
		if cred.UnwrapPath != "" {
			v, err = cred.readWrapped(ctx, c)
		} else {
			v, err = cred.read()
		}
		if err != nil {
			clear(data)
			return nil, fmt.Errorf("auth: %s: %s: %w", m, k, err)
		}
		data[k] = v.Reveal()
	}
	return data, nil
}

func (m *loginMethod) Login(ctx context.Context, c *api.Client) (Token, error) {
	data, err := m.data(ctx, c)
	if err != nil {
		return Token{}, err
	}
	s, err := c.Login(ctx, api.LoginPath(m.mount), data)
	clear(data)
	if err != nil {
		return Token{}, fmt.Errorf("auth: %s: %w", m, err)
	}
	a := s.Auth
	return Token{
		Value:     secret.NewString(a.ClientToken),
		Accessor:  a.Accessor,
		TTL:       time.Duration(a.LeaseDuration) * time.Second,
		Renewable: a.Renewable,
		Issued:    true,
	}, nil
}

func (m *loginMethod) LoginWrapped(ctx context.Context, c *api.Client, ttl time.Duration) (*api.SecretWrapInfo, error) {
	data, err := m.data(ctx, c)
	if err != nil {
		return nil, err
	}
	s, err := c.WithToken("").WithWrapTTL(ttl).Logical().Write(ctx, api.LoginPath(m.mount), data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", m, err)
	}
	if s == nil || s.WrapInfo == nil || s.WrapInfo.Token == "" {
		return nil, fmt.Errorf("auth: %s: the server did not wrap the login", m)
	}
	return s.WrapInfo, nil
}

func (m *loginMethod) WatchCredentials(ctx context.Context, clk clock.Clock) <-chan struct{} {
	var polled []*Credential
	every := time.Duration(0)
	for _, k := range slices.Sorted(maps.Keys(m.fields)) {
		if c := m.fields[k]; c.Poll > 0 && c.File != "" {
			polled = append(polled, c)
			if every == 0 || c.Poll < every {
				every = c.Poll
			}
		}
	}
	if len(polled) == 0 {
		return nil
	}
	changed := make(chan struct{}, 1)
	go func() {
		t := clk.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
			for _, c := range polled {
				if c.changed() {
					select {
					case changed <- struct{}{}:
					default: // a new login is already due
					}
				}
			}
		}
	}()
	return changed
}

// tokenMethod uses a token it was given.
type tokenMethod struct {
	cred *Credential

	mu   sync.Mutex
	used secret.String
}

func (m *tokenMethod) String() string {
	if m.cred.File != "" {
		return "token_file " + m.cred.File
	}
	return "token"
}

func (m *tokenMethod) Login(ctx context.Context, c *api.Client) (Token, error) {
	tok, err := m.cred.read()
	if err != nil {
		return Token{}, fmt.Errorf("auth: %s: %w", m, err)
	}
	if tok.IsEmpty() {
		return Token{}, fmt.Errorf("auth: %s: no token", m)
	}
	m.mu.Lock()
	stale := !m.used.IsEmpty() && m.used.Equal(tok)
	m.mu.Unlock()
	if stale {
		return Token{}, fmt.Errorf("%w (%s)", ErrNoRelogin, m)
	}
	s, err := c.WithToken(tok.Reveal()).TokenAuth().LookupSelf(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("auth: %s: looking the token up: %w", m, err)
	}
	if s == nil || s.Data == nil {
		return Token{}, fmt.Errorf("auth: %s: looking the token up: no data", m)
	}
	t := Token{Value: tok}
	t.Accessor, _ = s.Data["accessor"].(string)
	t.Renewable, _ = s.Data["renewable"].(bool)
	if n, ok := s.Data["ttl"].(json.Number); ok {
		secs, err := n.Int64()
		if err != nil {
			return Token{}, fmt.Errorf("auth: %s: looking the token up: ttl %q: %w", m, n, err)
		}
		t.TTL = time.Duration(secs) * time.Second
	}
	m.mu.Lock()
	m.used = tok
	m.mu.Unlock()
	return t, nil
}
