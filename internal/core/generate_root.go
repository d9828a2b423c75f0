package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
)

// OTPLength is the length of a root token generation's one-time password:
// the length of the root token it encodes ("hvs." and 24 characters), as
// Vault's otp_length.
const OTPLength = 28

// GenerateRootStatus is the state reported by sys/generate-root.
type GenerateRootStatus struct {
	Started  bool
	Nonce    string
	Progress int
	Required int
	Complete bool
	// EncodedToken is the new root token XOR the OTP, base64 (see
	// api.EncodeRootToken); set once, in the answer to the last share.
	EncodedToken string
	// OTP is set once, in the answer to a start without an OTP: the one
	// the server generated.
	OTP       string
	OTPLength int
}

// generateRoot is an attempt to generate a root token: the OTP that will
// encode it and the key shares submitted so far.
type generateRoot struct {
	nonce  string
	otp    secret.String
	shares *seal.Shares
}

// withAttempt runs f on an initialized, unsealed server with its seal
// record, holding stateMu for reading and genMu.
func (c *Core) withAttempt(ctx context.Context, f func(rec seal.Sealed) (GenerateRootStatus, error)) (GenerateRootStatus, error) {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	rec, err := c.loadSealRecord(ctx)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return GenerateRootStatus{}, ErrNotInitialized
	case err != nil:
		return GenerateRootStatus{}, err
	case c.sealed.Load():
		return GenerateRootStatus{}, ErrSealed
	case c.standby.Load():
		return GenerateRootStatus{}, ErrStandby
	}
	c.genMu.Lock()
	defer c.genMu.Unlock()
	return f(*rec)
}

// status renders the attempt; the caller holds genMu.
func (c *Core) genStatus(rec seal.Sealed) GenerateRootStatus {
	st := GenerateRootStatus{Required: rec.Threshold, OTPLength: OTPLength}
	if g := c.gen; g != nil {
		st.Started, st.Nonce, st.Progress = true, g.nonce, g.shares.Len()
	}
	return st
}

// GenerateRootStatus reports the root token generation in progress, if any.
func (c *Core) GenerateRootStatus(ctx context.Context) (GenerateRootStatus, error) {
	return c.withAttempt(ctx, func(rec seal.Sealed) (GenerateRootStatus, error) {
		return c.genStatus(rec), nil
	})
}

// GenerateRootInit starts a root token generation whose token will be
// encoded with otp; with otp "" the server generates one and returns it,
// once. Encrypting the token with a PGP key is not supported. Only one
// attempt runs at a time.
func (c *Core) GenerateRootInit(ctx context.Context, otp, pgpKey string) (GenerateRootStatus, error) {
	if pgpKey != "" {
		return GenerateRootStatus{}, logical.BadRequest("pgp_key is not supported by this server: start the generation with an otp (vigil operator generate-root -init -generate-otp)")
	}
	generated := otp == ""
	if generated {
		otp = secret.RandomBase62(OTPLength)
	}
	if len(otp) != OTPLength {
		return GenerateRootStatus{}, logical.BadRequest("OTP string is wrong length")
	}
	return c.withAttempt(ctx, func(rec seal.Sealed) (GenerateRootStatus, error) {
		if c.gen != nil {
			return GenerateRootStatus{}, logical.BadRequest("root generation already in progress")
		}
		c.gen = &generateRoot{nonce: secret.UUID(), otp: secret.NewString(otp), shares: seal.NewShares(rec.Threshold)}
		c.log.Info("root generation started", "nonce", c.gen.nonce)
		st := c.genStatus(rec)
		if generated {
			st.OTP = otp
		}
		return st, nil
	})
}

// GenerateRootUpdate submits one key share for the attempt nonce names: an
// unseal key share with the Shamir seal, a recovery key share with an auto
// seal. Once the threshold is reached and the shares prove to be the
// right key, it creates a root token and returns it encoded with the
// attempt's OTP; the attempt ends. Shares that recombine to another key
// abort the round: the attempt stays, with no shares.
func (c *Core) GenerateRootUpdate(ctx context.Context, keyText, nonce string) (GenerateRootStatus, error) {
	key, err := seal.ParseKey(keyText)
	if err != nil {
		return GenerateRootStatus{}, logical.BadRequest("'key' must be a valid hex or base64 string")
	}
	defer secret.Zero(key)
	return c.withAttempt(ctx, func(rec seal.Sealed) (GenerateRootStatus, error) {
		return c.updateAttempt(ctx, rec, key, nonce)
	})
}

// updateAttempt adds a share to the attempt; the caller holds stateMu for
// reading and genMu.
func (c *Core) updateAttempt(ctx context.Context, rec seal.Sealed, key []byte, nonce string) (GenerateRootStatus, error) {
	g := c.gen
	switch {
	case g == nil:
		return GenerateRootStatus{}, logical.BadRequest("no root generation in progress")
	case nonce != g.nonce:
		return GenerateRootStatus{}, logical.BadRequest("incorrect nonce supplied; nonce for this root generation operation is %q", g.nonce)
	}
	combined, err := g.shares.Add(key)
	switch {
	case errors.Is(err, seal.ErrDuplicateShare):
		return GenerateRootStatus{}, logical.BadRequest("given key has already been provided during this generation operation")
	case errors.Is(err, seal.ErrInvalidShare):
		return GenerateRootStatus{}, logical.BadRequest("invalid key: %v", err)
	case errors.Is(err, seal.ErrBadShares):
		return GenerateRootStatus{}, logical.BadRequest("root generation aborted: %v", err)
	case err != nil:
		return GenerateRootStatus{}, err
	case combined == nil:
		return c.genStatus(rec), nil
	}
	defer secret.Zero(combined)
	if err := c.checkOperatorKey(ctx, rec, combined); err != nil {
		return GenerateRootStatus{}, err
	}
	tok, entry, err := c.tokens.CreateRoot(ctx, "")
	if err != nil {
		return GenerateRootStatus{}, fmt.Errorf("core: generate root token: %w", err)
	}
	encoded, err := api.EncodeRootToken(tok.Reveal(), g.otp.Reveal())
	if err != nil {
		if rerr := c.tokens.Revoke(ctx, tok); rerr != nil {
			c.log.Error("revoke the root token that could not be encoded", "accessor", entry.Accessor, "error", rerr)
		}
		return GenerateRootStatus{}, fmt.Errorf("core: encode root token: %w", err)
	}
	c.gen = nil
	c.log.Info("root generation finished", "nonce", g.nonce, "accessor", entry.Accessor)
	return GenerateRootStatus{Started: true, Nonce: g.nonce, Progress: rec.Threshold, Required: rec.Threshold, Complete: true, EncodedToken: encoded, OTPLength: OTPLength}, nil
}

// checkOperatorKey checks the key a threshold of shares recombined: the
// unseal key of a Shamir seal (it must open the seal record), the recovery
// key of an auto seal (it must match the hash kept behind the barrier).
// The caller holds stateMu for reading, on an unsealed server.
func (c *Core) checkOperatorKey(ctx context.Context, rec seal.Sealed, key []byte) error {
	if !rec.Auto() {
		rootKey, err := seal.OpenShamir(rec, key)
		if err != nil {
			return logical.BadRequest("root generation aborted: the key shares do not reconstruct the unseal key")
		}
		secret.Zero(rootKey)
		return nil
	}
	hash, err := c.barrier.Get(ctx, recoveryKeyPath)
	if err != nil {
		return fmt.Errorf("core: read recovery key hash: %w", err)
	}
	if !seal.CheckRecoveryKey(key, hash) {
		return logical.BadRequest("root generation aborted: the key shares do not reconstruct the recovery key")
	}
	return nil
}

// GenerateRootCancel discards the attempt in progress, if any.
func (c *Core) GenerateRootCancel(ctx context.Context) error {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	if c.sealed.Load() {
		return ErrSealed
	}
	if c.standby.Load() {
		return ErrStandby
	}
	c.genMu.Lock()
	defer c.genMu.Unlock()
	c.cancelGenerateRoot()
	return nil
}

// cancelGenerateRoot drops the attempt; the caller holds genMu.
func (c *Core) cancelGenerateRoot() {
	if c.gen != nil {
		c.gen.shares.Reset()
		c.log.Info("root generation canceled", "nonce", c.gen.nonce)
	}
	c.gen = nil
}
