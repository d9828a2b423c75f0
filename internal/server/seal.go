package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/seal/pkcs11"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// PINEnv holds the PKCS#11 user PIN, so that it need not be written in the
// configuration file; it overrides the seal block's pin. VAULT_HSM_PIN is
// honoured as a fallback.
const PINEnv = "VIGIL_HSM_PIN"

// openSeal builds the configuration's auto seal: nil for the Shamir seal.
// close releases it (an HSM session). Errors name the configuration file
// and the seal block's line, never a key or the PIN.
func openSeal(file string, s config.Seal, getenv func(string) string) (w seal.Wrapper, close func() error, err error) {
	nothing := func() error { return nil }
	where := func(err error) error { return fmt.Errorf("%s:%d: seal %q: %w", file, s.Line, s.Type, err) }
	switch {
	case s.Static != nil:
		st, err := openStatic(s.Static, getenv)
		if err != nil {
			return nil, nil, where(err)
		}
		return st, nothing, nil
	case s.PKCS11 != nil:
		pin := getenv(PINEnv)
		if pin == "" {
			pin = getenv("VAULT_HSM_PIN")
		}
		if pin == "" {
			pin = s.PKCS11.PIN
		}
		hsm, err := pkcs11.Open(pkcs11.Config{
			Lib: s.PKCS11.Lib, Slot: s.PKCS11.Slot, HasSlot: s.PKCS11.HasSlot, TokenLabel: s.PKCS11.TokenLabel,
			PIN: secret.NewString(pin), KeyLabel: s.PKCS11.KeyLabel, GenerateKey: s.PKCS11.GenerateKey,
		})
		if err != nil {
			return nil, nil, where(err)
		}
		return hsm, hsm.Close, nil
	}
	return nil, nothing, nil
}

func openStatic(s *config.StaticSeal, getenv func(string) string) (*seal.Static, error) {
	cur, err := seal.LoadKey(s.CurrentKey, getenv)
	if err != nil {
		return nil, fmt.Errorf("current_key: %w", err)
	}
	defer secret.Zero(cur)
	var prev *seal.Key
	if s.PreviousKey != "" {
		m, err := seal.LoadKey(s.PreviousKey, getenv)
		if err != nil {
			return nil, fmt.Errorf("previous_key: %w", err)
		}
		defer secret.Zero(m)
		prev = &seal.Key{ID: s.PreviousKeyID, Material: m}
	}
	return seal.NewStatic(seal.Key{ID: s.CurrentKeyID, Material: cur}, prev)
}

// Auto-unseal retries start at autoUnsealFirstRetry and double up to
// autoUnsealMaxRetry.
const (
	autoUnsealFirstRetry = time.Second
	autoUnsealMaxRetry   = time.Minute
	// autoUnsealInitPoll is how often an HA server waiting for another
	// replica's sys/init looks again.
	autoUnsealInitPoll = 500 * time.Millisecond
)

// startAutoUnseal unseals a server with an auto seal as it starts, before
// it serves. While that fails (an HSM out of reach) it keeps trying in the
// background until stop; a seal that does not match the stored one is an
// error the server stops on. A single server not yet initialized waits
// for sys/init, which unseals it; an HA server (waitInit) watches the
// shared storage instead, since sys/init may run on another replica.
func startAutoUnseal(ctx context.Context, c *core.Core, logger *slog.Logger, waitInit bool) (stop func(), _ error) {
	err := c.AutoUnseal(ctx)
	switch {
	case err == nil:
		return func() {}, nil
	case errors.Is(err, core.ErrNotInitialized) && !waitInit:
		logger.Info("not initialized: the server unseals itself once sys/init has run")
		return func() {}, nil
	case errors.Is(err, core.ErrNotInitialized):
		logger.Info("not initialized: the server unseals itself once sys/init has run on any replica")
	case errors.Is(err, core.ErrSealMismatch):
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		err, wait := err, autoUnsealFirstRetry
		for {
			if errors.Is(err, core.ErrNotInitialized) {
				wait = autoUnsealInitPoll // quietly: another replica will init
			} else {
				logger.Error("auto-unseal failed; retrying", "error", err, "retry_in", wait.String())
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			err = c.AutoUnseal(ctx)
			switch {
			case err == nil, errors.Is(err, core.ErrNotInitialized) && !waitInit:
				return
			case errors.Is(err, core.ErrSealMismatch):
				logger.Error("auto-unseal stopped: the stored seal does not match the configured one", "error", err)
				return
			case !errors.Is(err, core.ErrNotInitialized):
				wait = min(2*wait, autoUnsealMaxRetry)
			}
		}
	})
	return func() { cancel(); wg.Wait() }, nil
}
