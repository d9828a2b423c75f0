package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/audit"
	"github.com/vigil-secrets/vigil/internal/auditlog"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Storage of the audit table and of each device's secrets, behind the
// barrier.
const (
	auditKey = "core/audit"
	// auditView holds, per device UUID, "keys" (salt and chain key) and
	// "checkpoint".
	auditView = "audit/"
	// checkpointEvery is how often changed checkpoints are stored.
	checkpointEvery = time.Second
)

// AuditDevice is an audit device declared in the server configuration. It
// is opened at every unseal and cannot be disabled through the API.
type AuditDevice struct {
	Path        string
	Type        string
	Description string
	Options     map[string]string
}

// auditEntry is one device of the audit table.
type auditEntry struct {
	Path        string            `json:"path"`
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
	UUID        string            `json:"uuid"`
	CreatedAt   time.Time         `json:"created_at"`
	// fromConfig marks a device of the server configuration (never
	// stored in the table).
	fromConfig bool
}

// auditKeys are a device's secrets.
type auditKeys struct {
	// Salt keys the HMAC of logged values (a UUID, as Vault's).
	Salt string `json:"salt"`
	// ChainKey keys the hash chain.
	ChainKey []byte `json:"chain_key"`
}

// auditState is the audit subsystem while unsealed.
type auditState struct {
	mu      sync.Mutex // serializes enable and disable
	entries map[string]*auditEntry
	stop    context.CancelFunc
	done    chan struct{}
}

// normalizeAuditPath gives a device path its trailing slash.
func normalizeAuditPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", logical.BadRequest("audit device path must not be empty")
	}
	if strings.Contains(p, "//") || strings.ContainsAny(p, " \t\n") {
		return "", logical.BadRequest("invalid audit device path %q", p)
	}
	return p + "/", nil
}

func (c *Core) startAudit(ctx context.Context) error {
	st := &auditState{entries: map[string]*auditEntry{}}
	if err := c.loadAuditHeaders(ctx); err != nil {
		return err
	}
	var table []*auditEntry
	if raw, err := c.barrier.Get(ctx, auditKey); err == nil {
		if err := json.Unmarshal(raw, &table); err != nil {
			return fmt.Errorf("decode audit table: %w", err)
		}
	} else if !errors.Is(err, logical.ErrNotFound) {
		return fmt.Errorf("read audit table: %w", err)
	}
	for _, cd := range c.cfg.AuditDevices {
		p, err := normalizeAuditPath(cd.Path)
		if err != nil {
			return fmt.Errorf("audit device %q in the configuration: %w", cd.Path, err)
		}
		sum := sha256.Sum256([]byte(p))
		st.entries[p] = &auditEntry{Path: p, Type: cd.Type, Description: cd.Description, Options: cd.Options,
			UUID: "config-" + hex.EncodeToString(sum[:8]), fromConfig: true}
	}
	for _, e := range table {
		if _, ok := st.entries[e.Path]; ok {
			c.log.Warn("audit device of the configuration shadows the one enabled through the API", "path", e.Path)
			continue
		}
		st.entries[e.Path] = e
	}
	for _, p := range slices.Sorted(maps.Keys(st.entries)) {
		e := st.entries[p]
		// A device that cannot open now (a missing directory, a socket
		// peer down) still counts: requests fail closed until it writes.
		d, err := c.openAuditDevice(ctx, e, true)
		if err != nil {
			c.closeAudit(ctx)
			return fmt.Errorf("audit device %s: %w", p, err)
		}
		if err := c.audit.Add(d); err != nil {
			d.Close()
			c.closeAudit(ctx)
			return err
		}
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st.stop, st.done = cancel, make(chan struct{})
	c.auditState = st
	go c.checkpointLoop(loopCtx, st.done)
	return nil
}

func (c *Core) stopAudit(ctx context.Context) {
	if st := c.auditState; st != nil {
		st.stop()
		<-st.done
	}
	// Before the state goes: the last checkpoints are stored under the
	// devices' UUIDs.
	c.closeAudit(ctx)
	c.auditState = nil
	c.auditHeaders.Store(nil)
}

// closeAudit closes every device and stores its last checkpoint.
func (c *Core) closeAudit(ctx context.Context) {
	for _, d := range c.audit.Devices() {
		c.audit.Remove(d.Path())
		if err := d.Close(); err != nil {
			c.log.Warn("close audit device", "path", d.Path(), "error", err)
		}
		c.saveCheckpoint(ctx, d)
	}
}

// checkpointLoop stores the devices' checkpoints as they move.
func (c *Core) checkpointLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := c.clk.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			for _, d := range c.audit.Devices() {
				c.saveCheckpoint(ctx, d)
			}
		}
	}
}

func (c *Core) saveCheckpoint(ctx context.Context, d *audit.Device) {
	cp, changed := d.Checkpoint()
	if !changed {
		return
	}
	uuid := c.auditUUID(d.Path())
	if uuid == "" {
		return
	}
	if err := c.putJSON(ctx, auditView+uuid+"/checkpoint", cp); err != nil {
		c.log.Warn("store audit checkpoint", "path", d.Path(), "error", err)
		return
	}
	d.Saved(cp)
}

// auditUUID returns the storage name of the device at path.
func (c *Core) auditUUID(path string) string {
	st := c.auditState
	if st == nil {
		return ""
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.entries[path]; ok {
		return e.UUID
	}
	return ""
}

// openAuditDevice opens the device of e, creating its salt and chain key
// the first time. With retry, a sink that cannot open yet is retried on
// every write instead of failing.
func (c *Core) openAuditDevice(ctx context.Context, e *auditEntry, retry bool) (*audit.Device, error) {
	factory, ok := c.cfg.AuditFactories[e.Type]
	if !ok {
		return nil, logical.BadRequest("unknown audit device type %q", e.Type)
	}
	keys, err := c.auditKeys(ctx, e.UUID)
	if err != nil {
		return nil, err
	}
	var cp auditlog.Checkpoint
	if raw, err := c.barrier.Get(ctx, auditView+e.UUID+"/checkpoint"); err == nil {
		if err := json.Unmarshal(raw, &cp); err != nil {
			return nil, fmt.Errorf("decode audit checkpoint: %w", err)
		}
	} else if !errors.Is(err, logical.ErrNotFound) {
		return nil, err
	}
	return audit.OpenDevice(ctx, audit.DeviceConfig{
		Path:       e.Path,
		Type:       e.Type,
		Options:    e.Options,
		Salt:       []byte(keys.Salt),
		ChainKey:   keys.ChainKey,
		Checkpoint: cp,
		Logger:     c.cfg.Logger.With("component", "audit"),
		Now:        c.clk.Now,
		Retry:      retry,
	}, factory)
}

// auditKeys reads a device's secrets, creating them the first time.
func (c *Core) auditKeys(ctx context.Context, uuid string) (*auditKeys, error) {
	key := auditView + uuid + "/keys"
	raw, err := c.barrier.Get(ctx, key)
	if err == nil {
		var k auditKeys
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("decode audit keys: %w", err)
		}
		return &k, nil
	}
	if !errors.Is(err, logical.ErrNotFound) {
		return nil, err
	}
	k := &auditKeys{Salt: secret.UUID(), ChainKey: secret.RandomBytes(auditlog.KeySize)}
	if err := c.putJSON(ctx, key, k); err != nil {
		return nil, err
	}
	return k, nil
}

// AuditDeviceInfo describes an enabled device for sys/audit.
type AuditDeviceInfo struct {
	Path        string
	Type        string
	Description string
	Options     map[string]string
	Local       bool
}

// AuditDevices lists the enabled devices, sorted by path.
func (c *Core) AuditDevices() []AuditDeviceInfo {
	st := c.auditState
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []AuditDeviceInfo
	for _, p := range slices.Sorted(maps.Keys(st.entries)) {
		e := st.entries[p]
		out = append(out, AuditDeviceInfo{Path: e.Path, Type: e.Type, Description: e.Description,
			Options: e.Options, Local: e.Local})
	}
	return out
}

// EnableAudit enables a device: it must open (and so pass a test write)
// before it is added.
func (c *Core) EnableAudit(ctx context.Context, path, typ, description string, options map[string]string, local bool) error {
	st := c.auditState
	p, err := normalizeAuditPath(path)
	if err != nil {
		return err
	}
	if typ == "" {
		return logical.BadRequest("audit device type is required")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.entries[p]; ok {
		return logical.BadRequest("path already in use at %s", p)
	}
	e := &auditEntry{Path: p, Type: typ, Description: description, Options: options, Local: local,
		UUID: secret.UUID(), CreatedAt: c.clk.Now().UTC()}
	d, err := c.openAuditDevice(ctx, e, false)
	if err != nil {
		c.deleteAuditData(ctx, e.UUID)
		if errors.Is(err, audit.ErrBadOption) {
			return logical.BadRequest("%s", strings.TrimPrefix(err.Error(), "audit: "))
		}
		var coded *logical.CodedError
		if errors.As(err, &coded) {
			return err
		}
		return logical.BadRequest("audit device %s: cannot open its output: %s", p, strings.TrimPrefix(err.Error(), "audit: "))
	}
	st.entries[p] = e
	if err := c.saveAuditTable(ctx, st); err != nil {
		delete(st.entries, p)
		d.Close()
		c.deleteAuditData(ctx, e.UUID)
		return err
	}
	if err := c.audit.Add(d); err != nil {
		delete(st.entries, p)
		d.Close()
		return err
	}
	c.log.Info("audit device enabled", "path", p, "type", typ)
	return nil
}

// DisableAudit disables a device and discards its salt and chain key. A
// device of the server configuration cannot be disabled here.
func (c *Core) DisableAudit(ctx context.Context, path string) error {
	st := c.auditState
	p, err := normalizeAuditPath(path)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.entries[p]
	if !ok {
		return nil
	}
	if e.fromConfig {
		return logical.BadRequest("audit device %s is declared in the server configuration: remove it there", p)
	}
	delete(st.entries, p)
	if err := c.saveAuditTable(ctx, st); err != nil {
		st.entries[p] = e
		return err
	}
	if d := c.audit.Remove(p); d != nil {
		if err := d.Close(); err != nil {
			c.log.Warn("close audit device", "path", p, "error", err)
		}
	}
	c.deleteAuditData(ctx, e.UUID)
	c.log.Info("audit device disabled", "path", p)
	return nil
}

func (c *Core) saveAuditTable(ctx context.Context, st *auditState) error {
	var table []*auditEntry
	for _, p := range slices.Sorted(maps.Keys(st.entries)) {
		if e := st.entries[p]; !e.fromConfig {
			table = append(table, e)
		}
	}
	return c.putJSON(ctx, auditKey, table)
}

func (c *Core) deleteAuditData(ctx context.Context, uuid string) {
	for _, k := range []string{"keys", "checkpoint"} {
		if err := c.barrier.Delete(ctx, auditView+uuid+"/"+k); err != nil && !errors.Is(err, logical.ErrNotFound) {
			c.log.Warn("delete audit device data", "error", err)
		}
	}
}

// AuditHash hashes input as the device at path writes it.
func (c *Core) AuditHash(path, input string) (string, error) {
	p, err := normalizeAuditPath(path)
	if err != nil {
		return "", err
	}
	h, err := c.audit.Hash(p, input)
	if errors.Is(err, audit.ErrUnknownDevice) {
		return "", logical.BadRequest("unknown audit device %s", p)
	}
	return h, err
}

// AuditChain is what `vigil audit verify` needs of a device: its chain
// key and where its log stands now.
type AuditChain struct {
	Path       string
	Key        []byte
	Checkpoint auditlog.Checkpoint
}

// AuditChainOf returns the chain key and current checkpoint of a device.
func (c *Core) AuditChainOf(ctx context.Context, path string) (*AuditChain, error) {
	p, err := normalizeAuditPath(path)
	if err != nil {
		return nil, err
	}
	d, ok := c.audit.Device(p)
	uuid := c.auditUUID(p)
	if !ok || uuid == "" {
		return nil, logical.BadRequest("unknown audit device %s", p)
	}
	keys, err := c.auditKeys(ctx, uuid)
	if err != nil {
		return nil, err
	}
	cp, _ := d.Checkpoint()
	return &AuditChain{Path: p, Key: keys.ChainKey, Checkpoint: cp}, nil
}

// ReopenAudit reopens every device's output (SIGHUP after log rotation)
// and stores the checkpoints, so that the new files continue the chains.
func (c *Core) ReopenAudit(ctx context.Context) error {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	if c.sealed.Load() || c.standby.Load() {
		return nil
	}
	err := c.audit.Reopen(ctx)
	for _, d := range c.audit.Devices() {
		c.saveCheckpoint(ctx, d)
	}
	return err
}
