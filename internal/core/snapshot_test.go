package core

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/audit"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/snapshot"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

const snapPath = "sys/storage/snapshot"

func snapReq(tok secret.String, path string) SnapshotRequest {
	return SnapshotRequest{ID: secret.UUID(), Path: path, Token: tok, Connection: &logical.Connection{RemoteAddr: "127.0.0.1"}}
}

// save takes a snapshot with the fixture's root token.
func (f *fixture) save(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	info, err := f.c.SnapshotSave(context.Background(), snapReq(f.token, snapPath), &buf)
	if err != nil {
		t.Fatalf("SnapshotSave: %v", err)
	}
	if info.Entries == 0 || info.Meta.ClusterID == "" || info.Meta.StorageType != "inmem" {
		t.Fatalf("SnapshotSave info: %+v", info)
	}
	return buf.Bytes()
}

func (f *fixture) restore(t *testing.T, snap []byte, force bool) (SnapshotInfo, error) {
	t.Helper()
	path := snapPath
	if force {
		path += "-force"
	}
	return f.c.SnapshotRestore(context.Background(), snapReq(f.token, path), bytes.NewReader(snap), force)
}

// kv mounts KV v1 at secret/ and writes secret/app.
func (f *fixture) kv(t *testing.T, v string) {
	t.Helper()
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv"}); err != nil {
		t.Fatal(err)
	}
	f.put(t, "secret/app", v)
}

func (f *fixture) put(t *testing.T, path, v string) {
	t.Helper()
	if _, err := f.do(t, logical.UpdateOperation, path, map[string]any{"v": v}); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func (f *fixture) get(t *testing.T, path string) (string, error) {
	t.Helper()
	resp, err := f.do(t, logical.ReadOperation, path, nil)
	if err != nil {
		return "", err
	}
	if resp == nil || resp.Data == nil {
		return "", logical.ErrNotFound
	}
	return resp.Data["v"].(string), nil
}

func (f *fixture) want(t *testing.T, path, v string) {
	t.Helper()
	got, err := f.get(t, path)
	if err != nil || got != v {
		t.Fatalf("read %s = %q, %v; want %q", path, got, err, v)
	}
}

// TestSnapshotRoundTrip: a restore brings back the data of the snapshot,
// and only it: secrets written, changed or deleted since, a mount enabled
// since, a token created since. The server is unsealed afterwards and the
// snapshot's tokens work.
func TestSnapshotRoundTrip(t *testing.T) {
	f := initCore(t)
	f.kv(t, "v1")
	f.put(t, "secret/gone", "g")
	snap := f.save(t)

	f.put(t, "secret/app", "v2")
	f.put(t, "secret/new", "n")
	if _, err := f.do(t, logical.DeleteOperation, "secret/gone", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/later", map[string]any{"type": "kv"}); err != nil {
		t.Fatal(err)
	}
	later := f.tokenWith(t, "default")

	info, err := f.restore(t, snap, false)
	if err != nil || info.Sealed || info.Entries == 0 {
		t.Fatalf("restore: %+v, %v", info, err)
	}
	if f.c.Sealed() {
		t.Fatal("sealed after restoring this cluster's snapshot")
	}
	f.want(t, "secret/app", "v1")
	f.want(t, "secret/gone", "g")
	if _, err := f.get(t, "secret/new"); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("secret written after the snapshot: %v", err)
	}
	if _, err := f.do(t, logical.ReadOperation, "later/x", nil); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("mount enabled after the snapshot: %v", err)
	}
	if _, err := f.doAs(t, later, logical.ReadOperation, "auth/token/lookup-self", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("token created after the snapshot: %v", err)
	}
	// The restored store takes writes, and a second snapshot of it
	// restores too.
	f.put(t, "secret/app", "v3")
	if _, err := f.restore(t, f.save(t), false); err != nil {
		t.Fatal(err)
	}
	f.want(t, "secret/app", "v3")
}

// A snapshot is the storage as stored: no secret value, no token in
// clear.
func TestSnapshotHoldsOnlyCiphertext(t *testing.T) {
	f := initCore(t)
	f.kv(t, "plaintext-canary-4711")
	snap := f.save(t)
	for _, s := range []string{"plaintext-canary-4711", f.token.Reveal()} {
		if bytes.Contains(snap, []byte(s)) {
			t.Fatalf("the snapshot holds %q in clear", s)
		}
	}
	r, err := snapshot.NewReader(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Meta(); m.ClusterID != f.c.cluster.ID || m.StorageType != "inmem" || m.Created.IsZero() {
		t.Fatalf("meta %+v", m)
	}
}

// Sudo is needed, with read to save and update to restore, on the path
// asked for; a denied caller gets nothing and changes nothing.
func TestSnapshotPermissions(t *testing.T) {
	f := initCore(t)
	f.kv(t, "v1")
	policies := map[string]string{
		"read-only":  `path "sys/storage/snapshot" { capabilities = ["read"] }`,
		"saver":      `path "sys/storage/snapshot" { capabilities = ["read", "sudo"] }`,
		"updater":    `path "sys/storage/snapshot" { capabilities = ["update"] }`,
		"restorer":   `path "sys/storage/snapshot" { capabilities = ["update", "sudo"] }`,
		"raft-saver": `path "sys/storage/raft/snapshot" { capabilities = ["read", "sudo"] }`,
		"everything": "path \"sys/*\" { capabilities = [\"read\", \"update\", \"sudo\"] }\npath \"sys/storage/*\" { capabilities = [\"deny\"] }",
	}
	for name, rules := range policies {
		if _, err := f.do(t, logical.UpdateOperation, "sys/policy/"+name, map[string]any{"policy": rules}); err != nil {
			t.Fatal(err)
		}
	}
	snap := f.save(t) // with the policies: a restore keeps them
	ctx := context.Background()
	for _, tc := range []struct {
		policy, path  string
		save, restore bool
	}{
		{"default", snapPath, false, false},
		{"read-only", snapPath, false, false},
		{"saver", snapPath, true, false},
		{"updater", snapPath, false, false},
		{"restorer", snapPath, false, true},
		{"restorer", snapPath + "-force", false, false},
		{"raft-saver", "sys/storage/raft/snapshot", true, false},
		{"raft-saver", snapPath, false, false},
		{"everything", snapPath, false, false},
	} {
		tok := f.tokenWith(t, tc.policy)
		var buf bytes.Buffer
		_, err := f.c.SnapshotSave(ctx, snapReq(tok, tc.path), &buf)
		if tc.save != (err == nil) {
			t.Errorf("%s save on %s: %v", tc.policy, tc.path, err)
		}
		if err != nil && (!errors.Is(err, logical.ErrPermissionDenied) || buf.Len() != 0) {
			t.Errorf("%s save on %s: %v, %d bytes written", tc.policy, tc.path, err, buf.Len())
		}
		f.put(t, "secret/app", "changed")
		_, err = f.c.SnapshotRestore(ctx, snapReq(tok, tc.path), bytes.NewReader(snap), strings.HasSuffix(tc.path, "-force"))
		if tc.restore != (err == nil) {
			t.Errorf("%s restore on %s: %v", tc.policy, tc.path, err)
		}
		want := "changed"
		if err == nil {
			want = "v1"
		} else if !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("%s restore on %s: %v", tc.policy, tc.path, err)
		}
		f.want(t, "secret/app", want)
	}
	// No token, or a bad one.
	for _, tok := range []secret.String{{}, secret.NewString("hvs.not-a-token")} {
		if _, err := f.c.SnapshotSave(ctx, snapReq(tok, snapPath), &bytes.Buffer{}); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("save with token %v: %v", tok, err)
		}
	}
}

func TestSnapshotSealed(t *testing.T) {
	f := initCore(t)
	snap := f.save(t)
	if err := f.c.SealInternal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.SnapshotSave(context.Background(), snapReq(f.token, snapPath), &bytes.Buffer{}); !errors.Is(err, ErrSealed) {
		t.Fatalf("save while sealed: %v", err)
	}
	if _, err := f.restore(t, snap, false); !errors.Is(err, ErrSealed) {
		t.Fatalf("restore while sealed: %v", err)
	}
}

// A bad snapshot (truncated, a flipped bit, garbage) is a 400 that says
// so; the data is unchanged and the server serves it.
func TestSnapshotRestoreBadSnapshot(t *testing.T) {
	f := initCore(t)
	f.kv(t, "v1")
	snap := f.save(t)
	f.put(t, "secret/app", "v2")
	flipped := bytes.Clone(snap)
	flipped[len(flipped)/2] ^= 0x10
	for name, bad := range map[string][]byte{
		"truncated":    snap[:len(snap)-10],
		"no trailer":   snap[:len(snap)-41],
		"header only":  snap[:60],
		"flipped bit":  flipped,
		"not one":      []byte(`{"data":{}}`),
		"empty":        nil,
		"trailing end": append(bytes.Clone(snap), '\n'),
	} {
		_, err := f.restore(t, bad, false)
		var ce *logical.CodedError
		if !errors.As(err, &ce) || ce.Status != 400 || !strings.HasPrefix(ce.Msg, "invalid snapshot") || !errors.Is(err, snapshot.ErrInvalid) {
			t.Fatalf("%s: %v", name, err)
		}
		if f.c.Sealed() {
			t.Fatalf("%s: the server is sealed after a failed restore", name)
		}
		f.want(t, "secret/app", "v2")
	}
}

// A snapshot of another cluster is refused without force. Forced, it
// replaces the data and leaves the server sealed: the other cluster's
// unseal keys open it, on that cluster's data.
func TestSnapshotRestoreOtherCluster(t *testing.T) {
	f := initCore(t)
	f.kv(t, "mine")
	other := initCore(t)
	other.kv(t, "theirs")
	snap := other.save(t)

	_, err := f.restore(t, snap, false)
	wantStatus(t, err, 400, "snapshot-force")
	if !errors.Is(err, ErrSnapshotOtherCluster) || f.c.Sealed() {
		t.Fatalf("unforced restore of another cluster: %v (sealed %v)", err, f.c.Sealed())
	}
	f.want(t, "secret/app", "mine")

	info, err := f.restore(t, snap, true)
	if err != nil || !info.Sealed || !strings.Contains(info.SealedReason, "unseal") {
		t.Fatalf("forced restore: %+v, %v", info, err)
	}
	if !f.c.Sealed() {
		t.Fatal("unsealed with a keyring its root key cannot open")
	}
	if _, err := f.do(t, logical.ReadOperation, "secret/app", nil); !errors.Is(err, ErrSealed) {
		t.Fatalf("read while sealed: %v", err)
	}
	for _, k := range f.keys[:2] { // this cluster's keys open nothing now
		_, err = f.c.Unseal(context.Background(), k)
	}
	if !f.c.Sealed() || err == nil {
		t.Fatalf("unsealed with the replaced cluster's keys: %v", err)
	}
	if _, err := f.c.ResetUnseal(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.keys, f.token = other.keys, other.token
	f.unseal(t)
	f.want(t, "secret/app", "theirs")
	if st, _ := f.c.SealStatus(context.Background()); st.ClusterID != other.c.cluster.ID {
		t.Fatalf("cluster id %q after restore, want the other cluster's %q", st.ClusterID, other.c.cluster.ID)
	}
}

// With an auto seal, a forced restore of a cluster sealed by the same key
// unseals with the restored seal record.
func TestSnapshotRestoreOtherClusterAutoSeal(t *testing.T) {
	key := newKey("shared")
	mk := func(v string) *autoFixture {
		f := &autoFixture{phys: inmem.New(), key: key}
		f.c = newSealCore(t, f.phys, staticSeal(t, key, nil))
		res, err := f.c.Init(context.Background(), InitRequest{RecoveryShares: 1, RecoveryThreshold: 1})
		if err != nil {
			t.Fatal(err)
		}
		f.root = res.RootToken
		if err := f.c.EnableMount(context.Background(), "secret/", MountInput{Type: "kv"}); err != nil {
			t.Fatal(err)
		}
		f.write(t, f.c, "secret/app", v)
		return f
	}
	a, b := mk("a"), mk("b")
	var buf bytes.Buffer
	if _, err := b.c.SnapshotSave(context.Background(), snapReq(b.root, snapPath), &buf); err != nil {
		t.Fatal(err)
	}
	info, err := a.c.SnapshotRestore(context.Background(), snapReq(a.root, snapPath+"-force"), &buf, true)
	if err != nil || info.Sealed || a.c.Sealed() {
		t.Fatalf("forced restore: %+v, %v", info, err)
	}
	if got := b.read(t, a.c, "secret/app"); got != "b" {
		t.Fatalf("read %q", got)
	}
}

// A backend without snapshots is a 400 that names its type.
func TestSnapshotUnsupportedBackend(t *testing.T) {
	ctx := context.Background()
	c := newCore(t, storagetest.NewFaulty(inmem.New()))
	res, err := c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Unseal(ctx, hex.EncodeToString(res.Keys[0])); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = c.SnapshotSave(ctx, snapReq(res.RootToken, snapPath), &buf)
	wantStatus(t, err, 400, `storage type "inmem" does not support snapshots`)
	if !errors.Is(err, ErrSnapshotUnsupported) || buf.Len() != 0 {
		t.Fatalf("save: %v, %d bytes", err, buf.Len())
	}
	_, err = c.SnapshotRestore(ctx, snapReq(res.RootToken, snapPath), strings.NewReader("x"), false)
	if !errors.Is(err, ErrSnapshotUnsupported) {
		t.Fatalf("restore: %v", err)
	}
}

// With an audit device, saves and restores are recorded, request and
// response, under the path asked for.
func TestSnapshotAudited(t *testing.T) {
	f := initCore(t)
	f.kv(t, "v1")
	ctx := context.Background()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := f.c.EnableAudit(ctx, "file", "file", "", map[string]string{"file_path": logPath}, false); err != nil {
		t.Fatal(err)
	}
	snap := f.save(t)
	if _, err := f.c.SnapshotSave(ctx, snapReq(f.tokenWith(t, "default"), snapPath), &bytes.Buffer{}); err == nil {
		t.Fatal("denied save succeeded")
	}
	if _, err := f.c.SnapshotRestore(ctx, snapReq(f.token, "sys/storage/raft/snapshot"), bytes.NewReader(snap), false); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range readEntries(t, logPath) {
		if strings.Contains(e.Request.Path, "storage") {
			seen = append(seen, e.Type+" "+e.Request.Operation+" "+e.Request.Path+" "+e.Error)
		}
	}
	want := []string{
		"request read sys/storage/snapshot ",
		"response read sys/storage/snapshot ",
		"request read sys/storage/snapshot permission denied",
		"request update sys/storage/raft/snapshot ",
		"response update sys/storage/raft/snapshot ",
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit entries:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	// The device reopened on the restored data (whose checkpoint is older
	// than the log) continues its chain: the log verifies whole.
	f.put(t, "secret/app", "after")
	if rep := verifyFile(t, chainOf(t, f, "file"), logPath); rep.Problem != nil || rep.FirstSeq != 1 {
		t.Fatalf("verify after restore: %+v %v", rep, rep.Problem)
	}
}

// With the only audit device unable to write, a save writes nothing and a
// restore changes nothing: both fail with a 500.
func TestSnapshotAuditFailsClosed(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	f := initCore(t)
	f.kv(t, "v1")
	snap := f.save(t)
	f.put(t, "secret/app", "v2")
	ctx := context.Background()
	if err := f.c.EnableAudit(ctx, "full", "file", "", map[string]string{"file_path": "/dev/full", "write_timeout": "200ms"}, false); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err := f.c.SnapshotSave(ctx, snapReq(f.token, snapPath), &buf)
	wantStatus(t, err, 500, "internal error")
	if !errors.Is(err, audit.ErrNotRecorded) || buf.Len() != 0 {
		t.Fatalf("save: %v, %d bytes written", err, buf.Len())
	}
	_, err = f.restore(t, snap, false)
	wantStatus(t, err, 500, "internal error")
	if err := f.c.DisableAudit(ctx, "full"); err != nil {
		t.Fatal(err)
	}
	f.want(t, "secret/app", "v2")
}

// A save streams: what reaches the writer before the end is a prefix of
// the snapshot, and without its trailer (an outcome no device recorded,
// a failed storage read) no reader accepts it.
func TestSnapshotSaveFailureLeavesNoTrailer(t *testing.T) {
	f := initCore(t)
	f.kv(t, "v1")
	for i := range 2000 {
		f.put(t, "secret/k"+strings.Repeat("x", i%50)+string(rune('a'+i%26)), strings.Repeat("v", 100))
	}
	w := &failAfter{n: 100 << 10}
	_, err := f.c.SnapshotSave(context.Background(), snapReq(f.token, snapPath), w)
	if err == nil || !strings.Contains(err.Error(), "client went away") {
		t.Fatalf("save to a failing writer: %v", err)
	}
	r, err := snapshot.NewReader(bytes.NewReader(w.buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = r.Next()
	}
	if !errors.Is(err, snapshot.ErrTruncated) {
		t.Fatalf("reading what was written: %v", err)
	}
}

// failAfter keeps the first n bytes and fails after them.
type failAfter struct {
	n   int
	buf bytes.Buffer
}

func (w *failAfter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.n {
		return 0, errors.New("client went away")
	}
	return w.buf.Write(p)
}

// After a restore the physical store holds what the snapshot held, key
// for key: nothing written since survives, and restarting on it writes
// nothing.
func TestSnapshotRestoreReplacesEveryKey(t *testing.T) {
	f := initCore(t)
	f.kv(t, "v1")
	snap := f.save(t)
	phys := f.phys.(storage.Snapshotter)
	var before int
	_ = phys.Snapshot(context.Background(), func(string, []byte) error { before++; return nil })
	for i := range 50 {
		f.put(t, "secret/more"+string(rune('a'+i%26))+strings.Repeat("z", i), "x")
	}
	if _, err := f.restore(t, snap, false); err != nil {
		t.Fatal(err)
	}
	var after int
	_ = phys.Snapshot(context.Background(), func(string, []byte) error { after++; return nil })
	if after != before {
		t.Fatalf("%d keys after restoring a snapshot of %d", after, before)
	}
}

// breakAfter reads r and breaks the leader lock of phys once n bytes have
// been read: the active server loses it in the middle of a restore.
type breakAfter struct {
	r    io.Reader
	n    int
	phys *inmem.Backend
}

func (b *breakAfter) Read(p []byte) (int, error) {
	k, err := b.r.Read(p)
	if b.n -= k; b.n <= 0 && b.phys != nil {
		b.phys.BreakLock()
		b.phys = nil
	}
	return k, err
}

// With HA, only the active server takes and restores snapshots; it keeps
// the leader lock through a restore and serves the restored data. One
// that loses the lock mid-restore restores nothing (fenced) and answers
// ErrStandby, and the next active (either node) serves the old data.
func TestSnapshotHA(t *testing.T) {
	ctx := context.Background()
	phys, key, f := initHA(t)
	a := f.c
	f.write(t, a, "secret/app", "v1")
	// Enough data that the snapshot reader's buffer holds a small part.
	for i := range 200 {
		f.write(t, a, fmt.Sprintf("secret/bulk%03d", i), strings.Repeat("x", 1024))
	}
	b := newHACore(t, phys, staticSeal(t, key, nil), "b")
	if err := b.AutoUnseal(ctx); err != nil {
		t.Fatal(err)
	}

	var snap bytes.Buffer
	if _, err := b.SnapshotSave(ctx, snapReq(f.root, snapPath), &snap); !errors.Is(err, ErrStandby) {
		t.Fatalf("save on a standby: %v", err)
	}
	if _, err := a.SnapshotSave(ctx, snapReq(f.root, snapPath), &snap); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SnapshotRestore(ctx, snapReq(f.root, snapPath), bytes.NewReader(snap.Bytes()), false); !errors.Is(err, ErrStandby) {
		t.Fatalf("restore on a standby: %v", err)
	}

	f.write(t, a, "secret/app", "v2")
	info, err := a.SnapshotRestore(ctx, snapReq(f.root, snapPath), bytes.NewReader(snap.Bytes()), false)
	if err != nil || info.Sealed {
		t.Fatalf("restore on the active: %+v, %v", info, err)
	}
	if a.Sealed() || a.Standby() || !b.Standby() {
		t.Fatalf("after the restore: a sealed=%v standby=%v, b standby=%v", a.Sealed(), a.Standby(), b.Standby())
	}
	if st, err := a.Leader(ctx); err != nil || !st.IsSelf {
		t.Fatalf("a.Leader after the restore: %+v %v", st, err)
	}
	if got := f.read(t, a, "secret/app"); got != "v1" {
		t.Fatalf("after the restore: %q", got)
	}

	// The lock goes near the end of a restore (well past what the
	// snapshot reader reads ahead before the restore begins).
	f.write(t, a, "secret/app", "v3")
	r := &breakAfter{r: bytes.NewReader(snap.Bytes()), n: snap.Len() - 1024, phys: phys}
	_, err = a.SnapshotRestore(ctx, snapReq(f.root, snapPath), r, false)
	if !errors.Is(err, ErrStandby) || !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("restore that lost the lock: %v", err)
	}
	// The lock is free: either node may take it, a as well as b, and
	// reads fail until one has.
	var got string
	waitFor(t, "a node serves reads", func() bool {
		for _, c := range []*Core{a, b} {
			res, err := c.HandleRequest(ctx, &Request{ID: secret.UUID(), Operation: logical.ReadOperation, Path: "secret/app", Token: f.root})
			if err == nil {
				got = res.Response.Data["v"].(string)
				return true
			}
		}
		return false
	})
	if got != "v3" {
		t.Fatalf("the fenced restore changed the data: %q", got)
	}
}

// With HA, a forced restore of another cluster leaves the server sealed
// and gives the leader lock up.
func TestSnapshotHAForcedOtherCluster(t *testing.T) {
	ctx := context.Background()
	other := initCore(t)
	other.kv(t, "theirs")
	snap := other.save(t)

	phys := inmem.New()
	a := newHACore(t, phys, nil, "a")
	res, err := a.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Unseal(ctx, hex.EncodeToString(res.Keys[0])); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a is active", active(a))
	info, err := a.SnapshotRestore(ctx, snapReq(res.RootToken, snapPath+"-force"), bytes.NewReader(snap), true)
	if err != nil || !info.Sealed || !strings.Contains(info.SealedReason, "restart the other servers") {
		t.Fatalf("forced restore: %+v, %v", info, err)
	}
	if !a.Sealed() || a.Standby() {
		t.Fatalf("a: sealed=%v standby=%v, want sealed", a.Sealed(), a.Standby())
	}
	if _, held, err := phys.Node().Leader(ctx); err != nil || held {
		t.Fatalf("the leader lock after a restore that sealed the server: held=%v %v", held, err)
	}
	// The other cluster's key opens it, as an active server again.
	for _, k := range other.keys[:2] {
		if _, err := a.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a is active", active(a))
	f := &fixture{c: a, token: other.token}
	f.want(t, "secret/app", "theirs")
}
