package token

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// The store key is 32 random bytes kept at "key", made on first use. Two
// AES-256-GCM keys are derived from it with HKDF-SHA256, one per purpose,
// so that a sealed accessor can never be presented as a batch token.
const (
	storeKeySize   = 32
	infoBatch      = "vigil token batch v1"
	infoAccessor   = "vigil token accessor v1"
	batchVersion   = 1
	batchAAD       = "vigil batch token"
	gcmNonceSize   = 12
	maxBatchLength = 8 << 10
)

// batchEncoding spells the sealed bytes of a batch token.
var batchEncoding = base64.RawURLEncoding.Strict()

// errNoKey: the store key was never made, so nothing was sealed with it.
var errNoKey = errors.New("token: the store key does not exist")

// storeKeys are the AEADs derived from the store key.
type storeKeys struct {
	batch    cipher.AEAD
	accessor cipher.AEAD
}

func newStoreKeys(root []byte) (*storeKeys, error) {
	derive := func(info string) (cipher.AEAD, error) {
		key, err := hkdf.Key(sha256.New, root, nil, info, 32)
		if err != nil {
			return nil, err
		}
		defer secret.Zero(key)
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	}
	b, err := derive(infoBatch)
	if err != nil {
		return nil, fmt.Errorf("token: derive batch key: %w", err)
	}
	a, err := derive(infoAccessor)
	if err != nil {
		return nil, fmt.Errorf("token: derive accessor key: %w", err)
	}
	return &storeKeys{batch: b, accessor: a}, nil
}

// storeKeys returns the store's keys, loading them on first use and, when
// create is set, making the store key if there is none.
func (st *Store) storeKeys(ctx context.Context, create bool) (*storeKeys, error) {
	if k := st.keys.Load(); k != nil {
		return k, nil
	}
	st.keysMu.Lock()
	defer st.keysMu.Unlock()
	if k := st.keys.Load(); k != nil {
		return k, nil
	}
	if st.closed.Load() {
		return nil, ErrClosed
	}
	raw, err := st.s.Get(ctx, keysKey)
	switch {
	case errors.Is(err, logical.ErrNotFound):
		if !create {
			return nil, errNoKey
		}
		raw = secret.RandomBytes(storeKeySize)
		if err := st.s.Put(ctx, keysKey, raw); err != nil {
			return nil, fmt.Errorf("token: store key: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("token: load key: %w", err)
	case len(raw) != storeKeySize:
		return nil, fmt.Errorf("token: stored key has %d bytes, want %d", len(raw), storeKeySize)
	}
	k, err := newStoreKeys(raw)
	secret.Zero(raw)
	if err != nil {
		return nil, err
	}
	st.keys.Store(k)
	return k, nil
}

// sealAccessor seals an accessor for storage, bound to its token's hashed
// id.
func (k *storeKeys) sealAccessor(d digest, accessor string) []byte {
	out := make([]byte, gcmNonceSize+len(accessor), gcmNonceSize+len(accessor)+k.accessor.Overhead())
	_, _ = rand.Read(out[:gcmNonceSize])
	// Sealed in place: the plaintext is copied where the ciphertext goes.
	plain := out[gcmNonceSize:]
	copy(plain, accessor)
	return k.accessor.Seal(out[:gcmNonceSize], out[:gcmNonceSize], plain, d.sum[:])
}

func (k *storeKeys) openAccessor(d digest, sealed []byte) (string, error) {
	if len(sealed) < gcmNonceSize+k.accessor.Overhead() {
		return "", errors.New("token: sealed accessor is too short")
	}
	plain, err := k.accessor.Open(nil, sealed[:gcmNonceSize], sealed[gcmNonceSize:], d.sum[:])
	if err != nil {
		return "", errors.New("token: sealed accessor failed authentication")
	}
	return string(plain), nil
}

// batchPayload is the compact entry sealed inside a batch token. Times
// are whole Unix seconds.
type batchPayload struct {
	Policies    []string          `json:"p"`
	Meta        map[string]string `json:"m,omitempty"`
	DisplayName string            `json:"d,omitempty"`
	Path        string            `json:"x,omitempty"`
	Created     int64             `json:"c"`
	TTL         int64             `json:"t,omitempty"`
	Parent      string            `json:"pa,omitempty"`
	Role        string            `json:"r,omitempty"`
	BoundCIDRs  []netip.Prefix    `json:"b,omitempty"`
	EntityID    string            `json:"en,omitempty"`
	MountPath   string            `json:"mp,omitempty"`
}

// createBatch seals e into a batch token. Nothing is written (but the
// store key, on the store's very first use). A batch token has no
// accessor, is not renewable, has no use limit and cannot be revoked on
// its own; with a parent it is valid only while the parent is.
func (st *Store) createBatch(ctx context.Context, e *Entry) (secret.String, error) {
	if e.TTL <= 0 {
		return secret.String{}, errors.New("token: a batch token needs a TTL")
	}
	k, err := st.storeKeys(ctx, true)
	if err != nil {
		return secret.String{}, err
	}
	if e.Parent != "" {
		pd, ok := parseDigest(e.Parent)
		if !ok {
			return secret.String{}, fmt.Errorf("%w: malformed parent", ErrInvalid)
		}
		if _, err := st.lookupDigest(ctx, pd); err != nil {
			return secret.String{}, fmt.Errorf("parent: %w", err)
		}
	}
	e.CreationTime = e.CreationTime.Truncate(time.Second)
	e.TTL = e.TTL.Truncate(time.Second)
	e.ExpireTime = e.CreationTime.Add(e.TTL)
	e.Accessor, e.Renewable, e.NumUses, e.Period = "", false, 0, 0
	p := batchPayload{
		Policies:    e.Policies,
		Meta:        e.Meta,
		DisplayName: e.DisplayName,
		Path:        e.Path,
		Created:     e.CreationTime.Unix(),
		TTL:         int64(e.TTL / time.Second),
		Parent:      e.Parent,
		Role:        e.Role,
		BoundCIDRs:  e.BoundCIDRs,
		EntityID:    e.EntityID,
		MountPath:   e.MountPath,
	}
	plain, err := json.Marshal(&p)
	if err != nil {
		return secret.String{}, fmt.Errorf("token: encode batch token: %w", err)
	}
	buf := make([]byte, 1+gcmNonceSize, 1+gcmNonceSize+len(plain)+k.batch.Overhead())
	buf[0] = batchVersion
	_, _ = rand.Read(buf[1:])
	sealed := k.batch.Seal(buf, buf[1:], plain, []byte(batchAAD))
	tok := BatchPrefix + batchEncoding.EncodeToString(sealed)
	e.HashedID = st.hash(tok).String()
	return secret.NewString(tok), nil
}

// lookupBatch opens a batch token. Anything wrong with it (not ours,
// tampered, expired, parent gone) is ErrInvalid.
func (st *Store) lookupBatch(ctx context.Context, tok string) (*Entry, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	if len(tok) > maxBatchLength {
		return nil, ErrInvalid
	}
	// Strict: one token has one spelling (no stray padding bits).
	raw, err := batchEncoding.DecodeString(tok[len(BatchPrefix):])
	if err != nil || len(raw) < 1+gcmNonceSize || raw[0] != batchVersion {
		return nil, ErrInvalid
	}
	k, err := st.storeKeys(ctx, false)
	if errors.Is(err, errNoKey) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	plain, err := k.batch.Open(nil, raw[1:1+gcmNonceSize], raw[1+gcmNonceSize:], []byte(batchAAD))
	if err != nil {
		return nil, ErrInvalid
	}
	var p batchPayload
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, ErrInvalid
	}
	created := time.Unix(p.Created, 0).UTC()
	ttl := time.Duration(p.TTL) * time.Second
	e := &Entry{
		Policies:     p.Policies,
		Path:         p.Path,
		DisplayName:  p.DisplayName,
		Meta:         p.Meta,
		CreationTime: created,
		TTL:          ttl,
		Type:         TypeBatch,
		Parent:       p.Parent,
		ExpireTime:   created.Add(ttl),
		Role:         p.Role,
		BoundCIDRs:   p.BoundCIDRs,
		EntityID:     p.EntityID,
		MountPath:    p.MountPath,
	}
	if ttl <= 0 || e.Expired(st.now()) {
		return nil, ErrInvalid
	}
	if e.Parent != "" {
		// A batch token cannot outlive its parent.
		pd, ok := parseDigest(e.Parent)
		if !ok {
			return nil, ErrInvalid
		}
		if _, err := st.lookupDigest(ctx, pd); err != nil {
			return nil, err
		}
	}
	e.HashedID = st.hash(tok).String()
	return e, nil
}

// IsBatchToken reports whether tok has the form of a batch token.
func IsBatchToken(tok secret.String) bool {
	v := tok.Reveal()
	return len(v) > len(BatchPrefix) && v[:len(BatchPrefix)] == BatchPrefix
}
