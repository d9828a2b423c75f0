package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-secrets/vigil/internal/barrier"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/snapshot"
)

// Backups: the whole physical storage as a snapshot file (package
// snapshot), taken and restored online.
//
// Security invariants upheld here:
//   - A snapshot holds the storage as stored: ciphertext, the keyring
//     encrypted by the root key, the seal record. It needs sudo (read to
//     take one, update to restore one) on the path the client used, deny
//     by default, and nothing is read from or written to the client before
//     the token is checked and, with an audit device enabled, the request
//     recorded (fail closed).
//   - A restore replaces everything under the state lock, with every
//     subsystem stopped and the barrier sealed; a snapshot that turns out
//     bad (truncated, checksum) leaves the storage as it was, and the
//     server serves it again.
//   - A snapshot of another cluster is refused unless forced; a forced one
//     whose keyring this server's root key does not open leaves the server
//     sealed, for that cluster's key holders to unseal.
//   - With HA, only the active server takes or restores snapshots (a
//     standby answers ErrStandby; the HTTP layer forwards its clients). It
//     keeps the leader lock through a restore, so no standby takes over
//     half-way, and the backend fences the restore's writes like any
//     other: a server that lost the lock restores nothing.

// Errors of the snapshot operations, wrapped in *logical.CodedError with
// the status and the message the client sees.
var (
	// ErrSnapshotUnsupported: the storage backend cannot take or restore
	// snapshots.
	ErrSnapshotUnsupported = errors.New("core: the storage backend does not support snapshots")
	// ErrSnapshotOtherCluster: a restore of another cluster's snapshot
	// without force.
	ErrSnapshotOtherCluster = errors.New("core: the snapshot is of another cluster")
	// ErrSnapshotInvalid is snapshot.ErrInvalid: a restore whose reader
	// fails with an error wrapping it is a 400 (the HTTP layer wraps it
	// around a damaged container of its own).
	ErrSnapshotInvalid = snapshot.ErrInvalid
)

// SnapshotRequest is the caller of SnapshotSave or SnapshotRestore.
type SnapshotRequest struct {
	// ID is the request id, for the audit log.
	ID string
	// Path is the path the client asked for (sys/storage/snapshot, its
	// -force form or Vault's sys/storage/raft/... aliases): the ACL is
	// checked, and the request recorded, on it.
	Path       string
	Token      secret.String
	Connection *logical.Connection
	// Headers are the request's HTTP headers, for the audit log.
	Headers map[string][]string
}

// SnapshotInfo describes a snapshot that was taken or restored.
type SnapshotInfo struct {
	Meta    snapshot.Meta
	Entries uint64
	// Sealed is set after a restore that left the server sealed: the
	// restored keyring does not open with this server's root key (a
	// forced restore of another cluster's snapshot), or the server could
	// not start on the restored data. SealedReason says which, for the
	// operator.
	Sealed       bool
	SealedReason string
}

// snapshotter returns the storage's snapshotter, or a 400 naming the
// storage type.
func (c *Core) snapshotter() (storage.Snapshotter, error) {
	s, ok := storage.SnapshotterOf(c.cfg.Storage)
	if !ok {
		return nil, &logical.CodedError{Status: 400, Msg: fmt.Sprintf("storage type %q does not support snapshots", c.cfg.StorageType), Err: ErrSnapshotUnsupported}
	}
	return s, nil
}

// authorizeSnapshot checks the caller's token for op with sudo on
// req.Path, records the request when an audit device is enabled, and
// counts the token's use (see authorizeDirect). The caller holds stateMu
// for reading on an unsealed server.
func (c *Core) authorizeSnapshot(ctx context.Context, req SnapshotRequest, op logical.Operation) (rec *auditRecord, done func(), err error) {
	rec, _, done, err = c.authorizeDirect(ctx, directRequest{ID: req.ID, Path: req.Path, Token: req.Token, Connection: req.Connection, Headers: req.Headers}, op, true)
	return rec, done, err
}

// snapshotOutcome records how a snapshot operation ended (see
// directOutcome).
func (c *Core) snapshotOutcome(ctx context.Context, rec *auditRecord, data map[string]any, err error) error {
	return c.directOutcome(ctx, rec, data, err)
}

// SnapshotSave writes a snapshot of the whole storage to w: one
// consistent state of the backend (storage.Snapshotter), streamed entry
// by entry. The token needs read and sudo on req.Path.
//
// Nothing is written to w before the request is authorized and recorded.
// With an audit device enabled, the snapshot's trailer is written only
// once the outcome is recorded: a snapshot whose outcome no device
// recorded ends without it, and no reader accepts it. A failure once
// writing has begun leaves w with a snapshot that has no trailer, too.
// Writes to the storage go on meanwhile; the state lock is not held while
// the snapshot streams.
func (c *Core) SnapshotSave(ctx context.Context, req SnapshotRequest, w io.Writer) (SnapshotInfo, error) {
	s, meta, rec, done, err := c.beginSave(ctx, req)
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer done()
	info := SnapshotInfo{Meta: meta}
	sw, err := snapshot.NewWriter(w, meta)
	if err == nil {
		err = s.Snapshot(ctx, sw.Add)
		info.Entries = sw.Count()
	}
	if err != nil {
		c.log.Error("storage snapshot failed", "request_id", req.ID, "entries", info.Entries, "error", err)
		return info, c.snapshotOutcome(ctx, rec, nil, err)
	}
	if rec != nil && !c.audit.Enabled() {
		// Sealed while the snapshot streamed: the devices that recorded
		// the request are closed, and none can record the outcome.
		return info, c.auditFailure(errors.New("core: no audit device is open to record the outcome of a snapshot"))
	}
	if err := c.snapshotOutcome(ctx, rec, map[string]any{"entries": info.Entries}, nil); err != nil {
		return info, err
	}
	if err := sw.Close(); err != nil {
		return info, err
	}
	c.log.Info("storage snapshot taken", "request_id", req.ID, "entries", info.Entries)
	return info, nil
}

// beginSave authorizes a save and describes the snapshot, holding the
// state lock for reading only meanwhile.
func (c *Core) beginSave(ctx context.Context, req SnapshotRequest) (storage.Snapshotter, snapshot.Meta, *auditRecord, func(), error) {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	switch {
	case c.sealed.Load():
		return nil, snapshot.Meta{}, nil, nil, ErrSealed
	case c.standby.Load():
		return nil, snapshot.Meta{}, nil, nil, ErrStandby
	}
	rec, done, err := c.authorizeSnapshot(ctx, req, logical.ReadOperation)
	if err != nil {
		return nil, snapshot.Meta{}, nil, nil, err
	}
	s, err := c.snapshotter()
	if err != nil {
		done()
		return nil, snapshot.Meta{}, nil, nil, c.snapshotOutcome(ctx, rec, nil, err)
	}
	meta := snapshot.Meta{ClusterID: c.cluster.ID, Created: c.clk.Now().UTC(), StorageType: c.cfg.StorageType}
	return s, meta, rec, done, nil
}

// SnapshotRestore replaces the whole storage with the snapshot r holds.
// The token needs update and sudo on req.Path. The snapshot must be of
// this cluster (its header's cluster ID) unless force is set.
//
// The request is authorized and recorded and the header read first; then,
// under the state lock, every subsystem stops, the barrier seals (the root
// key kept aside), the backend restores the entries as they stream in, and
// the barrier reopens with the same root key and the subsystems start
// again, on the restored data. While that runs, other requests wait.
//
// A snapshot found bad on the way (truncated, checksum, malformed: a 400
// wrapping snapshot.ErrInvalid) leaves the storage as it was, and the
// server serves it again. When the restored keyring does not open with
// the root key (a forced restore of another cluster's snapshot), the
// server stays sealed: its operators unseal it with that cluster's key
// shares (with an auto seal, the restored seal record is tried with the
// configured seal first). Info says so.
func (c *Core) SnapshotRestore(ctx context.Context, req SnapshotRequest, r io.Reader, force bool) (SnapshotInfo, error) {
	s, rd, rec, done, err := c.beginRestore(ctx, req, r, force)
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer done()
	info, ha, err := c.restore(ctx, req, s, rd, force)
	if info.Sealed && ha != nil {
		c.leaveHA(ha)
	}
	data := map[string]any{"entries": info.Entries, "sealed": info.Sealed}
	if err != nil {
		data = nil
	}
	return info, c.snapshotOutcome(ctx, rec, data, err)
}

// beginRestore authorizes a restore, reads the snapshot's header and
// checks its cluster, holding the state lock for reading.
func (c *Core) beginRestore(ctx context.Context, req SnapshotRequest, r io.Reader, force bool) (storage.Snapshotter, *snapshot.Reader, *auditRecord, func(), error) {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	switch {
	case c.sealed.Load():
		return nil, nil, nil, nil, ErrSealed
	case c.standby.Load():
		return nil, nil, nil, nil, ErrStandby
	}
	rec, done, err := c.authorizeSnapshot(ctx, req, logical.UpdateOperation)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	fail := func(err error) (storage.Snapshotter, *snapshot.Reader, *auditRecord, func(), error) {
		done()
		return nil, nil, nil, nil, c.snapshotOutcome(ctx, rec, nil, err)
	}
	s, err := c.snapshotter()
	if err != nil {
		return fail(err)
	}
	rd, err := snapshot.NewReader(r)
	if err != nil {
		return fail(snapshotError(err))
	}
	if id := rd.Meta().ClusterID; id != c.cluster.ID && !force {
		return fail(&logical.CodedError{Status: 400, Err: ErrSnapshotOtherCluster,
			Msg: fmt.Sprintf("the snapshot is of cluster %q, not of this cluster (%q): restore it with snapshot-force (vigil operator snapshot restore -force) to replace this cluster's data with it", id, c.cluster.ID)})
	}
	return s, rd, rec, done, nil
}

// snapshotError turns a bad snapshot into a 400 that says what is wrong
// with it (the file's fault, or a key the backend refuses); other errors
// (reading the request body, the storage) pass through.
func snapshotError(err error) error {
	switch {
	case errors.Is(err, snapshot.ErrInvalid):
		msg := err.Error()
		if i := strings.Index(msg, snapshot.ErrInvalid.Error()); i >= 0 {
			msg = msg[i:]
		}
		return &logical.CodedError{Status: 400, Msg: msg, Err: err}
	case errors.Is(err, storage.ErrInvalidKey):
		return &logical.CodedError{Status: 400, Msg: "invalid snapshot: the storage backend refuses one of its keys", Err: err}
	}
	return err
}

// restore swaps the storage under the state lock (see SnapshotRestore).
// With HA it returns the HA loop that ran during the restore, for the
// caller to end (leaveHA) when the server was left sealed: that must wait
// until the state lock is released.
func (c *Core) restore(ctx context.Context, req SnapshotRequest, s storage.Snapshotter, rd *snapshot.Reader, force bool) (SnapshotInfo, *haRun, error) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	meta := rd.Meta()
	info := SnapshotInfo{Meta: meta}
	switch {
	case c.sealed.Load():
		return info, nil, ErrSealed // sealed since the request was authorized
	case c.standby.Load():
		return info, nil, ErrStandby // lost the leader lock since
	}
	c.haMu.Lock()
	ha := c.ha
	c.haMu.Unlock()
	rootKey, err := c.barrier.RootKey()
	if err != nil {
		return info, nil, fmt.Errorf("core: restore: %w", err)
	}
	defer secret.Zero(rootKey)
	c.log.Info("storage restore started: the server is stopped until it ends", "request_id", req.ID,
		"snapshot_cluster_id", meta.ClusterID, "snapshot_created", meta.Created, "forced", force)
	c.stopForRestore(ctx)
	// The restart must not fail because the request's context ended
	// (the client went away, or the request timed out, mid-restore).
	bg := context.WithoutCancel(ctx)
	rerr := s.Restore(ctx, rd.Next)
	info.Entries = rd.Count()
	if rerr != nil {
		rerr = snapshotError(rerr)
		if errors.Is(rerr, storage.ErrFenced) {
			// The leader lock was lost: another server is active, and
			// the client may retry there.
			rerr = fmt.Errorf("%w: %w", ErrStandby, rerr)
		}
		c.log.Error("storage restore failed; the storage is unchanged", "request_id", req.ID, "entries_read", info.Entries, "error", rerr)
		if err := c.restartOn(bg, rootKey); err != nil {
			c.log.Error("could not restart after a failed restore; the server is sealed", "error", err)
			return info, ha, errors.Join(rerr, fmt.Errorf("core: restart after the failed restore: %w", err))
		}
		return info, ha, rerr
	}
	c.log.Info("storage restored from snapshot", "request_id", req.ID, "entries", info.Entries,
		"snapshot_cluster_id", meta.ClusterID, "snapshot_created", meta.Created)
	if err := c.reopenAfterRestore(bg, rootKey); err != nil {
		info.Sealed = true
		if errors.Is(err, barrier.ErrBadRootKey) {
			info.SealedReason = "the restored keyring does not open with this server's root key (a snapshot of another cluster): unseal the server with that cluster's unseal keys"
			if ha != nil {
				info.SealedReason += ", and restart the other servers of this HA cluster"
			}
			c.log.Warn("restored a snapshot of another cluster; the server stays sealed until unsealed with that cluster's keys", "snapshot_cluster_id", meta.ClusterID)
		} else {
			info.SealedReason = "the server could not start on the restored data and is sealed; see its log"
			c.log.Error("could not start on the restored data; the server is sealed", "error", err)
		}
	}
	return info, ha, nil
}

// stopForRestore stops the subsystems and seals the barrier, as
// SealInternal does, keeping the sealed flag set until the restart. The
// caller holds stateMu for writing.
func (c *Core) stopForRestore(ctx context.Context) {
	c.sealed.Store(true)
	c.stopRunning(ctx)
	c.barrier.Seal()
	c.unsealer = nil
}

// restartOn opens the barrier with rootKey and starts what ran before
// the restore: the subsystems of a single server, or those of the active
// server of HA, which keeps its HA loop and leader lock. On failure the
// barrier is sealed again. The caller holds stateMu for writing.
func (c *Core) restartOn(ctx context.Context, rootKey []byte) error {
	if c.cfg.HA == nil {
		return c.unsealWithKey(ctx, rootKey)
	}
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
	c.sealed.Store(false)
	c.log.Info("active again on the restored storage", "node_id", c.cfg.NodeID)
	return nil
}

// reopenAfterRestore restarts on the restored storage with the root key
// the barrier had, or, with an auto seal (and no HA: standbys would keep
// the old key), with the root key the restored seal record holds. The
// caller holds stateMu for writing.
func (c *Core) reopenAfterRestore(ctx context.Context, rootKey []byte) error {
	err := c.restartOn(ctx, rootKey)
	if !errors.Is(err, barrier.ErrBadRootKey) || c.cfg.Seal == nil || c.cfg.HA != nil {
		return err
	}
	rec, rerr := c.loadSealRecord(ctx)
	if rerr != nil {
		return err
	}
	if c.checkSealType(*rec) != nil {
		return err
	}
	if aerr := c.openAuto(ctx, *rec, nil); aerr != nil {
		c.log.Warn("the configured auto seal does not open the restored seal record", "error", aerr)
		return err
	}
	return nil
}

// leaveHA ends the HA loop that ran during a restore which left the
// server sealed: the loop stands down and releases the leader lock, so
// that another server takes over. The caller must not hold stateMu.
func (c *Core) leaveHA(h *haRun) {
	c.haMu.Lock()
	if c.ha == h {
		c.ha = nil
	}
	c.haMu.Unlock()
	h.cancel()
	<-h.done
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.sealed.Load() { // not unsealed again meanwhile
		c.standby.Store(false)
		if k := c.fwdKey.Swap(nil); k != nil {
			secret.Zero(*k)
		}
	}
}
