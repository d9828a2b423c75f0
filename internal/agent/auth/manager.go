package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// ErrNoToken is returned by [Manager.Run] before a successful
// [Manager.Login].
var ErrNoToken = errors.New("auth: no token yet: Login first")

// ManagerOptions configures a [Manager].
type ManagerOptions struct {
	// Method gets tokens.
	Method Method
	// Client carries the connection settings. The manager never changes
	// its token: it sends each request with the token it needs.
	Client *api.Client
	// Logger receives the manager's messages (never a secret); nil
	// discards them.
	Logger *slog.Logger
	// Retry times the retries of logins and renewals: clock, backoff,
	// and Retries, the number of consecutive failures after which Login
	// and Run give up with [lifetime.ErrRetriesExhausted] (0: never).
	Retry lifetime.RetryOptions
	// FailFastLogin makes a failed login (the first or a later one) end
	// Login or Run at once with its error, instead of being retried;
	// renewals are still retried (Vault Agent's exit_on_err).
	FailFastLogin bool
	// Rand, when set, draws the renewal grace periods (for tests).
	Rand func() float64
	// OnToken, when set, is called with each new token, from the
	// goroutine that got it, before [Manager.Token] returns it.
	OnToken func(Token)
	// WrapTTL, when set, response-wraps the login (Method must be a
	// [WrappingMethod]): the token holds only the wrap_info, and Run has
	// nothing to renew.
	WrapTTL time.Duration
}

// Manager keeps a token alive: [Manager.Login] gets the first one and
// [Manager.Run] renews it and logs in again as needed. Its methods are safe
// for concurrent use.
type Manager struct {
	o   ManagerOptions
	log *slog.Logger

	mu      sync.Mutex
	tok     Token
	have    bool
	changed chan struct{}
}

// NewManager returns a manager; it does nothing until Login.
func NewManager(o ManagerOptions) *Manager {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{o: o, log: log, changed: make(chan struct{})}
}

// Token returns the current token and a channel closed when it is
// replaced. Before the first login the token is empty.
func (m *Manager) Token() (Token, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tok, m.changed
}

func (m *Manager) set(t Token) {
	if m.o.OnToken != nil {
		m.o.OnToken(t)
	}
	m.mu.Lock()
	m.tok, m.have = t, true
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// Login gets the first token. Failures to reach the server (and 5xx
// answers) are retried with backoff, up to the configured retries; a
// refusal (a wrong role, a bad secret id) is returned at once, since a
// person is probably watching.
func (m *Manager) Login(ctx context.Context) error {
	ro := m.retryOptions("login")
	return m.login(ctx, ro)
}

func (m *Manager) login(ctx context.Context, ro lifetime.RetryOptions) error {
	if m.o.FailFastLogin {
		ro.Retries, ro.RetryRefusals = 1, false
	}
	var t Token
	err := lifetime.Retry(ctx, ro, func(ctx context.Context) error {
		var err error
		if m.o.WrapTTL > 0 {
			t, err = m.loginWrapped(ctx)
		} else {
			t, err = m.o.Method.Login(ctx, m.o.Client)
		}
		return err
	})
	if err != nil {
		return err
	}
	if t.Wrapped != nil {
		m.log.Info("logged in, response-wrapped", "method", m.o.Method.String(), "wrapping_accessor", t.Accessor, "wrap_ttl", m.o.WrapTTL)
	} else {
		m.log.Debug("logged in", "method", m.o.Method.String(), "accessor", t.Accessor, "ttl", t.TTL, "renewable", t.Renewable)
	}
	m.set(t)
	return nil
}

// loginWrapped logs in with the response wrapped for WrapTTL.
func (m *Manager) loginWrapped(ctx context.Context) (Token, error) {
	wm, ok := m.o.Method.(WrappingMethod)
	if !ok {
		return Token{}, fmt.Errorf("auth: %s cannot wrap its login: %w", m.o.Method, lifetime.ErrPermanent)
	}
	wi, err := wm.LoginWrapped(ctx, m.o.Client, m.o.WrapTTL)
	if err != nil {
		return Token{}, err
	}
	return Token{Accessor: wi.Accessor, TTL: time.Duration(wi.TTL) * time.Second, Wrapped: wi}, nil
}

func (m *Manager) retryOptions(what string) lifetime.RetryOptions {
	ro := m.o.Retry
	ro.OnError = func(err error, attempt int, wait time.Duration) {
		m.log.Warn(what+" failed; retrying", "method", m.o.Method.String(), "attempt", attempt, "wait", wait, "error", err)
	}
	return ro
}

// Run keeps the token alive until ctx ends: it renews it at about two
// thirds of its TTL and logs in again when renewing stops helping, or at
// once when a polled credential file (see [Credential.Poll]) holds a new
// value. A response-wrapped login is not renewed: Run waits for new
// credentials, or for ctx to end. While
// the server cannot be reached it retries with backoff; a login refused
// while running is retried too (the credential files may be replaced).
//
// It returns ctx's error when ctx ends, an error wrapping
// [lifetime.ErrRetriesExhausted] when the configured retries ran out, or
// one wrapping [ErrNoRelogin] when a given token can no longer be renewed.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	have := m.have
	m.mu.Unlock()
	if !have {
		return ErrNoToken
	}
	var newCreds <-chan struct{}
	if w, ok := m.o.Method.(CredentialWatcher); ok {
		clk := m.o.Retry.Clock
		if clk == nil {
			clk = clock.Real{}
		}
		newCreds = w.WatchCredentials(ctx, clk)
	}
	for {
		tok, _ := m.Token()
		if tok.Wrapped != nil {
			// Whoever unwraps the token owns it; the agent pauses until
			// the method's credentials change, as Vault Agent does.
			m.log.Info("the login is response-wrapped: nothing to renew", "method", m.o.Method.String())
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-newCreds:
			}
			m.log.Info("new credentials; logging in again", "method", m.o.Method.String())
		} else if err := m.keep(ctx, tok, newCreds); err != nil {
			return err
		}
		ro := m.retryOptions("login")
		ro.RetryRefusals = true
		if err := m.login(ctx, ro); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// keep renews tok until a new login is due: it returns nil then, and an
// error when Run must end. newCreds receiving ends the renewals at once.
func (m *Manager) keep(ctx context.Context, tok Token, newCreds <-chan struct{}) error {
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// fresh is set before kctx ends for new credentials; a signal that
	// comes as renewals end for another reason is spent on the login
	// that follows anyway.
	var fresh atomic.Bool
	if newCreds != nil {
		go func() {
			select {
			case <-newCreds:
				fresh.Store(true)
				cancel()
			case <-kctx.Done():
			}
		}()
	}
	ko := lifetime.KeepOptions{RetryOptions: m.retryOptions("token renewal"), Rand: m.o.Rand}
	err := lifetime.Keep(kctx, tok.TTL, tok.Renewable, func(ctx context.Context) (time.Duration, bool, error) {
		s, err := m.o.Client.WithToken(tok.Value.Reveal()).TokenAuth().RenewSelf(ctx, 0)
		if err != nil {
			return 0, false, err
		}
		if s == nil || s.Auth == nil {
			return 0, false, errors.New("auth: renew-self answered without auth")
		}
		m.log.Debug("token renewed", "accessor", tok.Accessor, "ttl", s.Auth.LeaseDuration)
		return time.Duration(s.Auth.LeaseDuration) * time.Second, s.Auth.Renewable, nil
	}, ko)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case fresh.Load():
		m.log.Info("new credentials; logging in again", "method", m.o.Method.String(), "accessor", tok.Accessor)
	case errors.Is(err, lifetime.ErrRetriesExhausted):
		return fmt.Errorf("auth: renewing the token: %w", err)
	case errors.Is(err, lifetime.ErrExpiring):
		m.log.Info("token near its max TTL; logging in again", "method", m.o.Method.String(), "accessor", tok.Accessor)
	default:
		m.log.Warn("token lost; logging in again", "method", m.o.Method.String(), "accessor", tok.Accessor, "error", err)
	}
	return nil
}

// Revoke revokes the current token if a login issued it for this process
// (auth/token/revoke-self); a token the method was given is left alone.
func (m *Manager) Revoke(ctx context.Context) error {
	tok, _ := m.Token()
	if !tok.Issued || tok.Value.IsEmpty() {
		return nil
	}
	if err := m.o.Client.WithToken(tok.Value.Reveal()).TokenAuth().RevokeSelf(ctx); err != nil {
		return fmt.Errorf("auth: revoking the token %s: %w", tok.Accessor, err)
	}
	m.mu.Lock()
	m.tok.Value = secret.String{}
	m.mu.Unlock()
	return nil
}
