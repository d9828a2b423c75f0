package lease

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// Storage layout (see the package doc).
const (
	recordPrefix      = "id/"
	tokenPrefix       = "token/"
	irrevocablePrefix = "irrevocable/"

	// recordVersion is the format version written in every record.
	recordVersion = 1
)

func recordKey(id string) string { return recordPrefix + id }

func tokenDir(tokenKey string) string { return tokenPrefix + url.PathEscape(tokenKey) + "/" }

func tokenIndexKey(tokenKey, id string) string { return tokenDir(tokenKey) + url.PathEscape(id) }

func irrevocableKey(id string) string { return irrevocablePrefix + url.PathEscape(id) }

// indexed reports whether l has a token index entry: a secret lease owned
// by a token. A token's own lease is found through the token (see the
// package doc), which saves a key per login.
func (l *Lease) indexed() bool { return l.TokenKey != "" && l.Kind != KindToken }

// errDecode marks a record that cannot be decoded, as opposed to a
// storage failure.
var errDecode = errors.New("undecodable lease record")

// record is the stored form of a lease.
type record struct {
	V int `json:"v"`
	Lease
}

func encode(l *Lease) ([]byte, error) {
	if b, ok := appendRecord(make([]byte, 0, 512), l); ok {
		return b, nil
	}
	b, err := json.Marshal(record{V: recordVersion, Lease: *l})
	if err != nil {
		return nil, fmt.Errorf("lease: encode %q: %w", l.ID, err)
	}
	return b, nil
}

func decode(id string, b []byte) (*Lease, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("lease: decode %q: %w: %v", id, errDecode, err)
	}
	if r.V != recordVersion {
		return nil, fmt.Errorf("lease: decode %q: %w: version %d", id, errDecode, r.V)
	}
	if r.ID != id {
		return nil, fmt.Errorf("lease: decode %q: %w: record names %q", id, errDecode, r.ID)
	}
	return &r.Lease, nil
}

// slim is the part of a record the restore needs; decoding only it skips
// building the data maps.
type slim struct {
	V           int       `json:"v"`
	ExpireTime  time.Time `json:"expire_time"`
	Irrevocable bool      `json:"irrevocable"`
}

func decodeSlim(id string, b []byte) (slim, error) {
	var s slim
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("lease: decode %q: %w: %v", id, errDecode, err)
	}
	if s.V != recordVersion {
		return s, fmt.Errorf("lease: decode %q: %w: version %d", id, errDecode, s.V)
	}
	return s, nil
}

// load reads the lease with id from storage. A missing lease is an error
// wrapping ErrNotFound.
func (m *Manager) load(ctx context.Context, id string) (*Lease, error) {
	b, err := m.st.Get(ctx, recordKey(id))
	if errors.Is(err, logical.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("lease: read %q: %w", id, err)
	}
	return decode(id, b)
}

// write applies ops in order, in one transaction when the storage can.
func (m *Manager) write(ctx context.Context, ops []logical.StorageOp) error {
	if m.tx != nil && len(ops) > 1 {
		return m.tx.Transaction(ctx, ops)
	}
	for _, op := range ops {
		var err error
		if op.Delete {
			err = m.st.Delete(ctx, op.Key)
		} else {
			err = m.st.Put(ctx, op.Key, op.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// save writes l's record, and adds or removes its irrevocable index entry
// when the flag changed from wasIrrevocable. Index entries are written
// before the record and deleted after it.
func (m *Manager) save(ctx context.Context, l *Lease, wasIrrevocable bool) error {
	b, err := encode(l)
	if err != nil {
		return err
	}
	ops := make([]logical.StorageOp, 0, 2)
	if l.Irrevocable && !wasIrrevocable {
		ops = append(ops, logical.StorageOp{Key: irrevocableKey(l.ID), Value: []byte{}})
	}
	ops = append(ops, logical.StorageOp{Key: recordKey(l.ID), Value: b})
	if !l.Irrevocable && wasIrrevocable {
		ops = append(ops, logical.StorageOp{Key: irrevocableKey(l.ID), Delete: true})
	}
	if err := m.write(ctx, ops); err != nil {
		return fmt.Errorf("lease: write %q: %w", l.ID, err)
	}
	return nil
}

// createOps returns the writes of a new lease: its token index entry (a
// secret's owned by a token), then its record.
func createOps(l *Lease) ([]logical.StorageOp, error) {
	b, err := encode(l)
	if err != nil {
		return nil, err
	}
	ops := make([]logical.StorageOp, 0, 2)
	if l.indexed() {
		ops = append(ops, logical.StorageOp{Key: tokenIndexKey(l.TokenKey, l.ID), Value: []byte{}})
	}
	return append(ops, logical.StorageOp{Key: recordKey(l.ID), Value: b}), nil
}

// create writes a new lease: its token index entry, then its record.
func (m *Manager) create(ctx context.Context, l *Lease) error {
	ops, err := createOps(l)
	if err != nil {
		return err
	}
	if err := m.write(ctx, ops); err != nil {
		return fmt.Errorf("lease: write %q: %w", l.ID, err)
	}
	return nil
}

// erase deletes l's record, then its index entries, then forgets it.
func (m *Manager) erase(ctx context.Context, l *Lease) error {
	ops := make([]logical.StorageOp, 0, 3)
	ops = append(ops, logical.StorageOp{Key: recordKey(l.ID), Delete: true})
	if l.indexed() {
		ops = append(ops, logical.StorageOp{Key: tokenIndexKey(l.TokenKey, l.ID), Delete: true})
	}
	// Always: a stale flag in memory must not leave an entry behind.
	ops = append(ops, logical.StorageOp{Key: irrevocableKey(l.ID), Delete: true})
	if err := m.write(ctx, ops); err != nil {
		return fmt.Errorf("lease: delete %q: %w", l.ID, err)
	}
	m.mu.Lock()
	m.forgetLocked(l.ID)
	m.mu.Unlock()
	return nil
}

// walk calls fn for every key under dir (which ends in '/'), depth first,
// in storage List order.
func (m *Manager) walk(ctx context.Context, dir string, fn func(key string) error) error {
	names, err := m.st.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("lease: list %q: %w", dir, err)
	}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasSuffix(n, "/") {
			err = m.walk(ctx, dir+n, fn)
		} else {
			err = fn(dir + n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
