package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
)

// InitRequest is the input of Init.
type InitRequest struct {
	SecretShares    int
	SecretThreshold int
	// RootTokenID, when set, is used as the root token (dev mode only).
	RootTokenID string
}

// InitResult is what Init hands back once: the unseal key shares and the
// initial root token. Nothing of it is stored in clear.
type InitResult struct {
	Keys      [][]byte
	RootToken secret.String
}

// SealStatus is the state reported by sys/seal-status.
type SealStatus struct {
	Type        string
	Initialized bool
	Sealed      bool
	Threshold   int
	Shares      int
	Progress    int
	Nonce       string
	ClusterName string
	ClusterID   string
	StorageType string
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

// Init initializes a new server: it generates the root key and the unseal
// key shares, initializes the barrier, creates the root token and the
// default mounts, and leaves the server sealed.
func (c *Core) Init(ctx context.Context, req InitRequest) (*InitResult, error) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	ok, err := c.Initialized(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, ErrAlreadyInitialized
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
	raw, err := seal.MarshalRecord(rec)
	if err != nil {
		return nil, fmt.Errorf("core: encode seal record: %w", err)
	}
	if err := c.cfg.Storage.Put(ctx, sealKey, raw); err != nil {
		return nil, fmt.Errorf("core: store seal record: %w", err)
	}
	if err := c.barrier.Initialize(ctx, rootKey); err != nil {
		return nil, fmt.Errorf("core: initialize barrier: %w", err)
	}
	if err := c.barrier.Unseal(ctx, rootKey); err != nil {
		return nil, fmt.Errorf("core: open barrier: %w", err)
	}
	defer c.barrier.Seal()
	name := c.cfg.ClusterName
	if name == "" {
		name = "vigil-cluster-" + secret.RandomBase62(8)
	}
	if err := c.putJSON(ctx, clusterKey, clusterInfo{Name: name, ID: secret.UUID()}); err != nil {
		return nil, err
	}
	if err := c.startTokens(ctx); err != nil {
		return nil, err
	}
	defer c.stopTokens(ctx)
	tok, _, err := c.tokens.CreateRoot(ctx, req.RootTokenID)
	if err != nil {
		return nil, &logical.CodedError{Status: 400, Msg: "invalid root token id", Err: err}
	}
	c.unsealer = nil
	c.log.Info("initialized", "shares", cfg.SecretShares, "threshold", cfg.SecretThreshold)
	return &InitResult{Keys: shares, RootToken: tok}, nil
}

// Unseal submits one key share, hex or base64 encoded. When the threshold is
// reached the barrier opens and the subsystems start. A malformed share
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
	if c.unsealer == nil {
		c.unsealer = seal.NewUnsealer(rec.Threshold)
	}
	_, unsealKey, done, err := c.unsealer.Add(key)
	var rootKey []byte
	if done {
		rootKey, err = seal.OpenShamir(*rec, unsealKey)
		secret.Zero(unsealKey)
	}
	switch {
	case errors.Is(err, seal.ErrInvalidShare):
		return SealStatus{}, logical.BadRequest("invalid unseal key: %v", err)
	case errors.Is(err, seal.ErrBadShares):
		return SealStatus{}, logical.BadRequest("unseal failed: the submitted key shares do not reconstruct the unseal key; progress was reset")
	case err != nil:
		return SealStatus{}, err
	}
	if done {
		err := c.unsealWithKey(ctx, rootKey)
		secret.Zero(rootKey)
		if err != nil {
			return SealStatus{}, err
		}
	}
	return c.sealStatusLocked(ctx)
}

// unsealWithKey opens the barrier with the root key and starts the
// subsystems. The caller holds stateMu for writing.
func (c *Core) unsealWithKey(ctx context.Context, rootKey []byte) error {
	if err := c.barrier.Unseal(ctx, rootKey); err != nil {
		return fmt.Errorf("core: open barrier: %w", err)
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
	c.log.Info("unsealed", "cluster_name", c.cluster.Name)
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
// it is bound to (conn is nil for internal calls).
func (c *Core) Seal(ctx context.Context, tok secret.String, conn *logical.Connection) error {
	c.stateMu.RLock()
	if c.sealed.Load() {
		c.stateMu.RUnlock()
		return ErrSealed
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
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.sealed.Load() {
		return nil
	}
	c.sealed.Store(true)
	c.stopAll(ctx)
	if c.stopCtx != nil {
		c.stopCtx()
		c.stopCtx = nil
	}
	c.barrier.Seal()
	c.unsealer = nil
	c.log.Info("sealed")
	return nil
}

// SealStatus returns the state reported by sys/seal-status.
func (c *Core) SealStatus(ctx context.Context) (SealStatus, error) {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	return c.sealStatusLocked(ctx)
}

func (c *Core) sealStatusLocked(ctx context.Context) (SealStatus, error) {
	st := SealStatus{Type: seal.TypeShamir, Sealed: c.sealed.Load(), StorageType: c.cfg.StorageType}
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
	if st.Sealed {
		if c.unsealer != nil {
			st.Progress, st.Nonce = c.unsealer.Progress()
		}
	} else {
		st.ClusterName, st.ClusterID = c.cluster.Name, c.cluster.ID
	}
	return st, nil
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
