package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
)

// InitRequest is the input of Init: sys/init's parameters.
type InitRequest struct {
	// SecretShares and SecretThreshold split the unseal key of a Shamir
	// seal; they must be zero with an auto seal.
	SecretShares    int
	SecretThreshold int
	// RecoveryShares and RecoveryThreshold split the recovery key of an
	// auto seal; they must be zero with a Shamir seal.
	RecoveryShares    int
	RecoveryThreshold int
	// PGPKeys, RecoveryPGPKeys and RootTokenPGPKey are refused: this
	// server does not encrypt key shares or tokens with PGP.
	PGPKeys         []string
	RecoveryPGPKeys []string
	RootTokenPGPKey string
	// RootTokenID, when set, is used as the root token (dev mode only).
	RootTokenID string
}

// InitResult is what Init hands back once: the unseal key shares (Shamir)
// or the recovery key shares (auto seals), and the initial root token.
// Nothing of it is stored in clear.
type InitResult struct {
	Keys         [][]byte
	RecoveryKeys [][]byte
	RootToken    secret.String
}

// SealStatus is the state reported by sys/seal-status.
type SealStatus struct {
	Type        string
	Initialized bool
	Sealed      bool
	// Threshold and Shares are the unseal key's, or with an auto seal
	// (RecoverySeal) the recovery key's.
	Threshold        int
	Shares           int
	Progress         int
	Nonce            string
	RecoverySeal     bool
	RecoverySealType string
	ClusterName      string
	ClusterID        string
	StorageType      string
	// Standby is set on an unsealed HA standby.
	Standby bool
}

// Initialized reports whether the server has been initialized.
func (c *Core) Initialized(ctx context.Context) (bool, error) {
	if _, err := c.loadSealRecord(ctx); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return c.barrier.Initialized(ctx)
}

func (c *Core) loadSealRecord(ctx context.Context) (*seal.Sealed, error) {
	raw, err := c.cfg.Storage.Get(ctx, sealKey)
	if err != nil {
		return nil, fmt.Errorf("core: read seal record: %w", err)
	}
	rec, err := seal.UnmarshalRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	return &rec, nil
}

func (c *Core) storeSealRecord(ctx context.Context, rec seal.Sealed) error {
	raw, err := seal.MarshalRecord(rec)
	if err != nil {
		return fmt.Errorf("core: encode seal record: %w", err)
	}
	if err := c.cfg.Storage.Put(ctx, sealKey, raw); err != nil {
		return fmt.Errorf("core: store seal record: %w", err)
	}
	return nil
}

// sealType is the configured seal's type.
func (c *Core) sealType() string {
	if c.cfg.Seal != nil {
		return c.cfg.Seal.Type()
	}
	return seal.TypeShamir
}

// checkInitParams refuses the parameters that do not apply to the seal,
// with Vault's message, and PGP.
func (c *Core) checkInitParams(req InitRequest) error {
	var barrier, recovery []string
	for _, p := range []struct {
		set  bool
		name string
		list *[]string
	}{
		{req.SecretShares != 0, "secret_shares", &barrier},
		{req.SecretThreshold != 0, "secret_threshold", &barrier},
		{len(req.PGPKeys) != 0, "pgp_keys", &barrier},
		{req.RecoveryShares != 0, "recovery_shares", &recovery},
		{req.RecoveryThreshold != 0, "recovery_threshold", &recovery},
		{len(req.RecoveryPGPKeys) != 0, "recovery_pgp_keys", &recovery},
	} {
		if p.set {
			*p.list = append(*p.list, p.name)
		}
	}
	bad := recovery
	if c.cfg.Seal != nil {
		bad = barrier
	}
	if len(bad) > 0 {
		return logical.BadRequest("parameters %s not applicable to seal type %s", strings.Join(bad, ","), c.sealType())
	}
	if len(req.PGPKeys) != 0 || len(req.RecoveryPGPKeys) != 0 || req.RootTokenPGPKey != "" {
		return logical.BadRequest("PGP-encrypted key shares are not supported by this server")
	}
	return nil
}

// Init initializes a new server. With the Shamir seal it generates the root
// key and the unseal key shares and leaves the server sealed; with an auto
// seal the seal wraps the root key, the operators get recovery key shares,
// and the server is unsealed on return. Either way it initializes the
// barrier and creates the root token.
func (c *Core) Init(ctx context.Context, req InitRequest) (*InitResult, error) {
	if err := c.checkInitParams(req); err != nil {
		return nil, err
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	ok, err := c.Initialized(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, ErrAlreadyInitialized
	}
	if c.cfg.Seal != nil {
		return c.initAuto(ctx, req)
	}
	cfg := seal.Config{Type: seal.TypeShamir, SecretShares: req.SecretShares, SecretThreshold: req.SecretThreshold}
	if err := cfg.Validate(); err != nil {
		return nil, &logical.CodedError{Status: 400, Msg: err.Error(), Err: err}
	}
	rootKey, shares, rec, err := seal.GenerateShamir(cfg)
	if err != nil {
		return nil, fmt.Errorf("core: generate keys: %w", err)
	}
	defer secret.Zero(rootKey)
	tok, err := c.initStorage(ctx, rec, rootKey, nil, req.RootTokenID)
	if err != nil {
		return nil, err
	}
	c.log.Info("initialized", "seal", seal.TypeShamir, "shares", cfg.SecretShares, "threshold", cfg.SecretThreshold)
	return &InitResult{Keys: shares, RootToken: tok}, nil
}

// initAuto initializes with the auto seal and unseals. The caller holds
// stateMu for writing.
func (c *Core) initAuto(ctx context.Context, req InitRequest) (*InitResult, error) {
	w := c.cfg.Seal
	recovery := seal.Config{Type: w.Type(), SecretShares: req.RecoveryShares, SecretThreshold: req.RecoveryThreshold}
	if recovery.SecretShares < 1 {
		return nil, logical.BadRequest("recovery configuration must specify a positive number of shares")
	}
	if err := recovery.Validate(); err != nil {
		return nil, &logical.CodedError{Status: 400, Msg: "invalid recovery configuration: " + strings.TrimPrefix(err.Error(), seal.ErrConfig.Error()+": "), Err: err}
	}
	recoveryKey, recoveryShares, err := seal.GenerateRecovery(recovery)
	if err != nil {
		return nil, fmt.Errorf("core: generate recovery key: %w", err)
	}
	defer secret.Zero(recoveryKey)
	rootKey, rec, err := seal.GenerateAuto(ctx, w, recovery)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	defer secret.Zero(rootKey)
	tok, err := c.initStorage(ctx, rec, rootKey, seal.RecoveryHash(recoveryKey), req.RootTokenID)
	if err != nil {
		return nil, err
	}
	c.log.Info("initialized", "seal", w.Type(), "key_id", rec.KeyID, "recovery_shares", recovery.SecretShares, "recovery_threshold", recovery.SecretThreshold)
	if err := c.unsealWithKey(ctx, rootKey); err != nil {
		return nil, err
	}
	return &InitResult{RecoveryKeys: recoveryShares, RootToken: tok}, nil
}

// initStorage stores the seal record, initializes the barrier with the
// root key and writes, behind it, what a new server starts with: the
// cluster's name and id, the recovery key's hash (auto seals) and the root
// token. It leaves the barrier sealed. The caller holds stateMu for
// writing.
func (c *Core) initStorage(ctx context.Context, rec seal.Sealed, rootKey, recoveryHash []byte, rootTokenID string) (secret.String, error) {
	var none secret.String
	if err := c.storeSealRecord(ctx, rec); err != nil {
		return none, err
	}
	if err := c.barrier.Initialize(ctx, rootKey); err != nil {
		return none, fmt.Errorf("core: initialize barrier: %w", err)
	}
	if err := c.barrier.Unseal(ctx, rootKey); err != nil {
		return none, fmt.Errorf("core: open barrier: %w", err)
	}
	defer c.barrier.Seal()
	name := c.cfg.ClusterName
	if name == "" {
		name = "vigil-cluster-" + secret.RandomBase62(8)
	}
	if err := c.putJSON(ctx, clusterKey, clusterInfo{Name: name, ID: secret.UUID()}); err != nil {
		return none, err
	}
	if recoveryHash != nil {
		if err := c.barrier.Put(ctx, recoveryKeyPath, recoveryHash); err != nil {
			return none, fmt.Errorf("core: store recovery key hash: %w", err)
		}
	}
	if err := c.startTokens(ctx); err != nil {
		return none, err
	}
	defer c.stopTokens(ctx)
	tok, _, err := c.tokens.CreateRoot(ctx, rootTokenID)
	if err != nil {
		return none, &logical.CodedError{Status: 400, Msg: "invalid root token id", Err: err}
	}
	c.unsealer = nil
	return tok, nil
}

// AutoUnseal opens an initialized server with its auto seal, as it does at
// every start: no operator is involved. A root key wrapped under the
// static seal's previous key is rewrapped under the current one. It
// returns ErrNotInitialized before init (init unseals), and an error
// wrapping ErrSealMismatch when the stored seal is not the configured one.
func (c *Core) AutoUnseal(ctx context.Context) error {
	if c.cfg.Seal == nil {
		return fmt.Errorf("%w: no auto seal is configured", ErrSealMismatch)
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if !c.sealed.Load() {
		return nil
	}
	rec, err := c.loadSealRecord(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotInitialized
	}
	if err != nil {
		return err
	}
	if err := c.checkSealType(*rec); err != nil {
		return err
	}
	return c.openAuto(ctx, *rec, nil)
}

// checkSealType refuses a stored seal of another type than the configured
// one: Vigil does not migrate seals.
func (c *Core) checkSealType(rec seal.Sealed) error {
	if rec.Type == c.sealType() {
		return nil
	}
	if rec.Auto() {
		return fmt.Errorf("%w: the root key is sealed by seal %q; add that seal block to the configuration", ErrSealMismatch, rec.Type)
	}
	return fmt.Errorf("%w: the server was initialized with seal %q, not the configured %q (seal migration is not supported)", ErrSealMismatch, rec.Type, c.sealType())
}

// openAuto unwraps the root key with the auto seal, opens the barrier,
// checks recoveryKey (when given: an operator's unseal after sys/seal)
// against the stored hash, rewraps a record wrapped under a previous key
// and starts the subsystems. The caller holds stateMu for writing.
func (c *Core) openAuto(ctx context.Context, rec seal.Sealed, recoveryKey []byte) error {
	w := c.cfg.Seal
	rootKey, stale, err := seal.OpenAuto(ctx, w, rec)
	if err != nil {
		return fmt.Errorf("core: unseal with seal %q: %w", w.Type(), err)
	}
	defer secret.Zero(rootKey)
	if err := c.barrier.Unseal(ctx, rootKey); err != nil {
		return fmt.Errorf("core: open barrier: %w", err)
	}
	if recoveryKey != nil {
		hash, err := c.barrier.Get(ctx, recoveryKeyPath)
		if err != nil {
			c.barrier.Seal()
			return fmt.Errorf("core: read recovery key hash: %w", err)
		}
		if !seal.CheckRecoveryKey(recoveryKey, hash) {
			c.barrier.Seal()
			return seal.ErrBadShares
		}
	}
	if stale {
		c.rewrap(ctx, rec, rootKey)
	}
	return c.startUnsealed(ctx)
}

// rewrap stores the record wrapped under the seal's current key. A failure
// is logged, not fatal: the previous key still opens the stored record.
func (c *Core) rewrap(ctx context.Context, rec seal.Sealed, rootKey []byte) {
	old := rec.KeyID
	rec, err := seal.Rewrap(ctx, c.cfg.Seal, rec, rootKey)
	if err == nil {
		err = c.storeSealRecord(ctx, rec)
	}
	if err != nil {
		c.log.Warn("root key not rewrapped under the current seal key; the previous key is still needed", "previous_key_id", old, "error", err)
		return
	}
	c.log.Info("root key rewrapped under the current seal key", "key_id", rec.KeyID, "previous_key_id", old)
}

// Unseal submits one key share, hex or base64 encoded: an unseal key share
// with the Shamir seal, or a recovery key share with an auto seal (which
// unseals a server sealed with sys/seal, as Vault does). When the threshold
// is reached the barrier opens and the subsystems start. A malformed share
// leaves the progress unchanged.
func (c *Core) Unseal(ctx context.Context, keyText string) (SealStatus, error) {
	key, err := seal.ParseKey(keyText)
	if err != nil {
		return SealStatus{}, logical.BadRequest("'key' must be a valid hex or base64 string")
	}
	defer secret.Zero(key)
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if !c.sealed.Load() {
		return c.sealStatusLocked(ctx)
	}
	rec, err := c.loadSealRecord(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return SealStatus{}, ErrNotInitialized
	}
	if err != nil {
		return SealStatus{}, err
	}
	if err := c.checkSealType(*rec); err != nil {
		return SealStatus{}, &logical.CodedError{Status: 400, Msg: strings.TrimPrefix(err.Error(), ErrSealMismatch.Error()+": "), Err: err}
	}
	if c.unsealer == nil {
		c.unsealer = seal.NewUnsealer(rec.Threshold)
	}
	_, combined, done, err := c.unsealer.Add(key)
	if err == nil && done {
		err = c.openWith(ctx, *rec, combined)
		secret.Zero(combined)
	}
	switch {
	case errors.Is(err, seal.ErrInvalidShare):
		return SealStatus{}, logical.BadRequest("invalid unseal key: %v", err)
	case errors.Is(err, seal.ErrBadShares):
		return SealStatus{}, logical.BadRequest("unseal failed: the submitted key shares do not reconstruct the key; progress was reset")
	case err != nil:
		return SealStatus{}, err
	}
	return c.sealStatusLocked(ctx)
}

// openWith unseals with the key a threshold of shares recombined: the
// unseal key of a Shamir seal, the recovery key of an auto seal.
func (c *Core) openWith(ctx context.Context, rec seal.Sealed, key []byte) error {
	if rec.Auto() {
		return c.openAuto(ctx, rec, key)
	}
	rootKey, err := seal.OpenShamir(rec, key)
	if err != nil {
		return err
	}
	defer secret.Zero(rootKey)
	return c.unsealWithKey(ctx, rootKey)
}

// unsealWithKey opens the barrier with the root key and starts the
// subsystems. The caller holds stateMu for writing.
func (c *Core) unsealWithKey(ctx context.Context, rootKey []byte) error {
	if err := c.barrier.Unseal(ctx, rootKey); err != nil {
		return fmt.Errorf("core: open barrier: %w", err)
	}
	return c.startUnsealed(ctx)
}

// startUnsealed starts the subsystems behind the open barrier, or seals it
// again when one fails. The caller holds stateMu for writing.
func (c *Core) startUnsealed(ctx context.Context) error {
	if c.cfg.HA != nil {
		if err := c.startHA(ctx); err != nil {
			c.barrier.Seal()
			return err
		}
		c.unsealer = nil
		c.sealed.Store(false)
		c.log.Info("unsealed; standing by for the leader lock", "cluster_name", c.cluster.Name, "seal", c.sealType(), "node_id", c.cfg.NodeID)
		return nil
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := c.startAll(runCtx); err != nil {
		cancel()
		c.barrier.Seal()
		return err
	}
	c.stopCtx = cancel
	c.unsealer = nil
	c.sealed.Store(false)
	c.log.Info("unsealed", "cluster_name", c.cluster.Name, "seal", c.sealType())
	return nil
}

// ResetUnseal discards the shares submitted so far.
func (c *Core) ResetUnseal(ctx context.Context) (SealStatus, error) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if !c.sealed.Load() {
		return SealStatus{}, ErrAlreadyUnsealed
	}
	if c.unsealer != nil {
		c.unsealer.Reset()
	}
	return c.sealStatusLocked(ctx)
}

// Seal stops every subsystem, forgets the keys and seals the server. The
// token must have update and sudo on sys/seal and be used from an address
// it is bound to (conn is nil for internal calls). A server with an auto
// seal stays sealed until it restarts or a threshold of recovery key
// shares unseals it, as in Vault.
func (c *Core) Seal(ctx context.Context, tok secret.String, conn *logical.Connection) error {
	c.stateMu.RLock()
	if c.sealed.Load() {
		c.stateMu.RUnlock()
		return ErrSealed
	}
	if c.standby.Load() {
		// A standby cannot check the token: its token store is closed.
		c.stateMu.RUnlock()
		return ErrCannotSealStandby
	}
	if err := c.authorizeSys(ctx, tok, conn, "sys/seal", logical.UpdateOperation); err != nil {
		c.stateMu.RUnlock()
		return err
	}
	c.stateMu.RUnlock()
	return c.SealInternal(ctx)
}

// SealInternal seals without a token check (shutdown).
func (c *Core) SealInternal(ctx context.Context) error {
	// The HA loop stands an active server down (it takes stateMu) and
	// releases the leader lock before the barrier closes.
	c.stopHA()
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.sealed.Load() {
		return nil
	}
	c.sealed.Store(true)
	c.standby.Store(false)
	if k := c.fwdKey.Swap(nil); k != nil {
		secret.Zero(*k)
	}
	c.stopRunning(ctx)
	c.barrier.Seal()
	c.unsealer = nil
	c.log.Info("sealed")
	return nil
}

// stopRunning stops the subsystems, ends their context and discards a
// root token generation in progress: what sealing, standing by and a
// restore have in common. The caller holds stateMu for writing.
func (c *Core) stopRunning(ctx context.Context) {
	c.stopAll(ctx)
	if c.stopCtx != nil {
		c.stopCtx()
		c.stopCtx = nil
	}
	c.genMu.Lock()
	c.cancelGenerateRoot()
	c.genMu.Unlock()
}

// SealStatus returns the state reported by sys/seal-status.
func (c *Core) SealStatus(ctx context.Context) (SealStatus, error) {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	return c.sealStatusLocked(ctx)
}

func (c *Core) sealStatusLocked(ctx context.Context) (SealStatus, error) {
	st := SealStatus{Type: c.sealType(), Sealed: c.sealed.Load(), StorageType: c.cfg.StorageType, Standby: c.standby.Load()}
	st.setRecovery()
	init, err := c.Initialized(ctx)
	if err != nil {
		return st, err
	}
	st.Initialized = init
	if !init {
		return st, nil
	}
	rec, err := c.loadSealRecord(ctx)
	if err != nil {
		return st, err
	}
	st.Type, st.Shares, st.Threshold = rec.Type, rec.Shares, rec.Threshold
	st.setRecovery()
	if st.Sealed {
		if c.unsealer != nil {
			st.Progress, st.Nonce = c.unsealer.Progress()
		}
	} else {
		st.ClusterName, st.ClusterID = c.cluster.Name, c.cluster.ID
	}
	return st, nil
}

// setRecovery marks an auto seal's status as a recovery seal, whose shares
// are Shamir shares of the recovery key.
func (st *SealStatus) setRecovery() {
	st.RecoverySeal = seal.IsAuto(st.Type)
	st.RecoverySealType = ""
	if st.RecoverySeal {
		st.RecoverySealType = seal.TypeShamir
	}
}

func (c *Core) loadCluster(ctx context.Context) error {
	raw, err := c.barrier.Get(ctx, clusterKey)
	if err != nil {
		return fmt.Errorf("read cluster info: %w", err)
	}
	return json.Unmarshal(raw, &c.cluster)
}

func (c *Core) putJSON(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("core: encode %q: %w", key, err)
	}
	if err := c.barrier.Put(ctx, key, raw); err != nil {
		return fmt.Errorf("core: store %q: %w", key, err)
	}
	return nil
}
