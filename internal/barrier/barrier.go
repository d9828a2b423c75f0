// Package barrier is the encryption layer between Vigil and its physical
// storage: every value stored through it is AES-256-GCM ciphertext bound to
// its storage path, so the backend only ever sees ciphertext, and a value
// copied to another path, or altered, fails to decrypt.
//
// Data keys live in a keyring of numbered terms. Each ciphertext starts with
// a format version and the term of the key that sealed it:
//
//	version (1 byte) | term (4 bytes, big endian) | nonce (12 bytes) | GCM ciphertext and tag
//
// and the version, term and storage path are the GCM additional data.
// Rotation adds a term and makes it the one new writes use; older terms stay
// in the keyring so existing data remains readable. The keyring itself is
// stored at [KeyringPath], encrypted by the root key the seal hands over at
// unseal, and bound to that path in the same way.
//
// Paths (keys) are not encrypted: listing must work on the backend. Nothing
// secret belongs in a path.
package barrier

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
)

// KeyringPath is where the encrypted keyring is stored.
const KeyringPath = "core/keyring"

// reserved are physical paths the barrier never reads or writes on behalf
// of callers: the keyring, and the seal record stored beside it in clear.
var reserved = []string{KeyringPath, "core/seal"}

const (
	formatVersion = 1
	headerSize    = 1 + 4
	nonceSize     = 12
	keySize       = 32
	keyringTerm   = 0 // the term written in the keyring's own header
)

// Errors callers branch on.
var (
	ErrSealed             = errors.New("barrier: sealed")
	ErrDecrypt            = errors.New("barrier: cannot decrypt entry")
	ErrBadRootKey         = errors.New("barrier: root key does not open the keyring")
	ErrAlreadyInitialized = errors.New("barrier: already initialized")
	ErrNotInitialized     = errors.New("barrier: not initialized")
	ErrReservedPath       = errors.New("barrier: reserved path")
)

// KeyStatus describes the active term, for sys/key-status.
type KeyStatus struct {
	Term        uint32
	InstallTime time.Time
	// Encryptions counts values encrypted with the active term since this
	// server unsealed.
	Encryptions int64
}

// Barrier encrypts values on their way to a storage.Backend. It is safe for
// concurrent use.
type Barrier struct {
	backend storage.Backend
	clk     clock.Clock

	// ring is nil while sealed. A keyring is immutable once published:
	// rotation publishes a new one.
	ring atomic.Pointer[keyring]
	// rotateMu serializes Rotate, Unseal and Seal.
	rotateMu    sync.Mutex
	rootKey     []byte // guarded by rotateMu; nil while sealed
	encryptions atomic.Int64
	// aads pools additional-data buffers (header || path): every Get and
	// Put would otherwise allocate one for the AEAD.
	aads sync.Pool // of *[]byte
}

// New returns a sealed barrier over backend.
func New(backend storage.Backend, clk clock.Clock) *Barrier {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Barrier{backend: backend, clk: clk}
}

type termKey struct {
	Term        uint32    `json:"term"`
	Key         []byte    `json:"key"`
	InstallTime time.Time `json:"install_time"`
}

// keyringFile is the stored form of the keyring.
type keyringFile struct {
	ActiveTerm uint32    `json:"active_term"`
	Keys       []termKey `json:"keys"`
}

type keyring struct {
	file   keyringFile
	active uint32
	aeads  map[uint32]cipher.AEAD
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("barrier: cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

func buildKeyring(f keyringFile) (*keyring, error) {
	r := &keyring{file: f, active: f.ActiveTerm, aeads: make(map[uint32]cipher.AEAD, len(f.Keys))}
	for _, k := range f.Keys {
		if len(k.Key) != keySize || k.Term == keyringTerm {
			return nil, fmt.Errorf("barrier: keyring holds an invalid key for term %d", k.Term)
		}
		a, err := newAEAD(k.Key)
		if err != nil {
			return nil, err
		}
		r.aeads[k.Term] = a
	}
	if r.aeads[r.active] == nil {
		return nil, fmt.Errorf("barrier: keyring has no key for its active term %d", r.active)
	}
	return r, nil
}

func (r *keyring) zero() {
	for _, k := range r.file.Keys {
		secret.Zero(k.Key)
	}
}

func (r *keyring) activeKey() termKey {
	for _, k := range r.file.Keys {
		if k.Term == r.active {
			return k
		}
	}
	return termKey{}
}

// aad returns header || path in a buffer from pool (nil: a new one); put
// it back with putAAD.
func aad(pool *sync.Pool, header []byte, path string) *[]byte {
	var bp *[]byte
	if pool != nil {
		bp, _ = pool.Get().(*[]byte)
	}
	if bp == nil {
		bp = new([]byte)
	}
	*bp = append(append((*bp)[:0], header...), path...)
	return bp
}

// putAAD returns an additional-data buffer to pool, unless it grew for an
// unusually long path.
func putAAD(pool *sync.Pool, bp *[]byte) {
	if pool != nil && cap(*bp) <= 1024 {
		pool.Put(bp)
	}
}

func encrypt(a cipher.AEAD, term uint32, path string, plaintext []byte, pool *sync.Pool) []byte {
	out := make([]byte, headerSize+nonceSize, headerSize+nonceSize+len(plaintext)+a.Overhead())
	out[0] = formatVersion
	binary.BigEndian.PutUint32(out[1:headerSize], term)
	// crypto/rand.Read never fails on supported platforms (it crashes
	// the program instead).
	_, _ = rand.Read(out[headerSize : headerSize+nonceSize])
	ad := aad(pool, out[:headerSize], path)
	out = a.Seal(out, out[headerSize:headerSize+nonceSize], plaintext, *ad)
	putAAD(pool, ad)
	return out
}

// termOf parses a ciphertext header.
func termOf(path string, ct []byte) (uint32, error) {
	if len(ct) < headerSize+nonceSize+16 {
		return 0, fmt.Errorf("barrier: entry %q: %w: too short", path, ErrDecrypt)
	}
	if ct[0] != formatVersion {
		return 0, fmt.Errorf("barrier: entry %q: %w: unknown format version %d", path, ErrDecrypt, ct[0])
	}
	return binary.BigEndian.Uint32(ct[1:headerSize]), nil
}

// decrypt opens ct, which it owns: the plaintext overwrites the ciphertext.
func decrypt(a cipher.AEAD, path string, ct []byte, pool *sync.Pool) ([]byte, error) {
	body := ct[headerSize+nonceSize:]
	ad := aad(pool, ct[:headerSize], path)
	pt, err := a.Open(body[:0], ct[headerSize:headerSize+nonceSize], body, *ad)
	putAAD(pool, ad)
	if err != nil {
		return nil, fmt.Errorf("barrier: entry %q: %w: authentication failed", path, ErrDecrypt)
	}
	return pt, nil
}

// Initialized reports whether a keyring has been stored.
func (b *Barrier) Initialized(ctx context.Context) (bool, error) {
	_, err := b.backend.Get(ctx, KeyringPath)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("barrier: read keyring: %w", err)
}

// Initialize creates the keyring with its first term, encrypted by rootKey.
// The barrier stays sealed.
func (b *Barrier) Initialize(ctx context.Context, rootKey []byte) error {
	if len(rootKey) != keySize {
		return fmt.Errorf("barrier: root key must be %d bytes", keySize)
	}
	b.rotateMu.Lock()
	defer b.rotateMu.Unlock()
	ok, err := b.Initialized(ctx)
	if err != nil {
		return err
	}
	if ok {
		return ErrAlreadyInitialized
	}
	f := keyringFile{ActiveTerm: 1, Keys: []termKey{{Term: 1, Key: secret.RandomBytes(keySize), InstallTime: b.clk.Now().UTC()}}}
	defer secret.Zero(f.Keys[0].Key)
	return b.storeKeyring(ctx, rootKey, f)
}

func (b *Barrier) storeKeyring(ctx context.Context, rootKey []byte, f keyringFile) error {
	raw, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("barrier: encode keyring: %w", err)
	}
	defer secret.Zero(raw)
	a, err := newAEAD(rootKey)
	if err != nil {
		return err
	}
	if err := b.backend.Put(ctx, KeyringPath, encrypt(a, keyringTerm, KeyringPath, raw, nil)); err != nil {
		return fmt.Errorf("barrier: store keyring: %w", err)
	}
	return nil
}

// Unseal opens the keyring with rootKey.
func (b *Barrier) Unseal(ctx context.Context, rootKey []byte) error {
	b.rotateMu.Lock()
	defer b.rotateMu.Unlock()
	if b.ring.Load() != nil {
		return nil
	}
	r, err := b.openKeyring(ctx, rootKey)
	if err != nil {
		return err
	}
	b.rootKey = append([]byte(nil), rootKey...)
	b.encryptions.Store(0)
	b.ring.Store(r)
	return nil
}

// openKeyring reads the stored keyring and decrypts it with rootKey.
func (b *Barrier) openKeyring(ctx context.Context, rootKey []byte) (*keyring, error) {
	ct, err := b.backend.Get(ctx, KeyringPath)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, fmt.Errorf("barrier: read keyring: %w", err)
	}
	if len(rootKey) != keySize {
		return nil, ErrBadRootKey
	}
	a, err := newAEAD(rootKey)
	if err != nil {
		return nil, err
	}
	term, err := termOf(KeyringPath, ct)
	if err != nil {
		return nil, err
	}
	if term != keyringTerm {
		return nil, fmt.Errorf("barrier: keyring: %w: wrong header", ErrDecrypt)
	}
	raw, err := decrypt(a, KeyringPath, ct, nil)
	if err != nil {
		return nil, ErrBadRootKey
	}
	defer secret.Zero(raw)
	var f keyringFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("barrier: decode keyring: %w", err)
	}
	return buildKeyring(f)
}

// Reload reads the keyring again with the root key the barrier was
// unsealed with: an HA standby that becomes active learns the terms the
// previous active added. On failure the barrier keeps its keyring.
// Callers keep other users of the barrier out while it runs.
func (b *Barrier) Reload(ctx context.Context) error {
	b.rotateMu.Lock()
	defer b.rotateMu.Unlock()
	if b.ring.Load() == nil {
		return ErrSealed
	}
	r, err := b.openKeyring(ctx, b.rootKey)
	if err != nil {
		return err
	}
	if old := b.ring.Swap(r); old != nil {
		old.zero()
	}
	return nil
}

// Seal forgets the keys (zeroing what it can) and refuses every further
// access until Unseal.
func (b *Barrier) Seal() {
	b.rotateMu.Lock()
	defer b.rotateMu.Unlock()
	if r := b.ring.Swap(nil); r != nil {
		r.zero()
	}
	secret.Zero(b.rootKey)
	b.rootKey = nil
}

// DeriveKey returns a 32-byte key derived from the root key for purpose
// (HKDF-SHA256), the same on every node that shares the root key. It fails
// while sealed.
func (b *Barrier) DeriveKey(purpose string) ([]byte, error) {
	b.rotateMu.Lock()
	defer b.rotateMu.Unlock()
	if len(b.rootKey) == 0 {
		return nil, ErrSealed
	}
	return hkdf.Key(sha256.New, b.rootKey, nil, "vigil "+purpose, keySize)
}

// Sealed reports whether the barrier is sealed.
func (b *Barrier) Sealed() bool { return b.ring.Load() == nil }

// Rotate adds a new term to the keyring, stores it, and makes it the term
// new writes use. It returns the new term.
func (b *Barrier) Rotate(ctx context.Context) (uint32, error) {
	b.rotateMu.Lock()
	defer b.rotateMu.Unlock()
	old := b.ring.Load()
	if old == nil {
		return 0, ErrSealed
	}
	var maxTerm uint32
	keys := make([]termKey, 0, len(old.file.Keys)+1)
	for _, k := range old.file.Keys {
		maxTerm = max(maxTerm, k.Term)
		keys = append(keys, termKey{Term: k.Term, Key: append([]byte(nil), k.Key...), InstallTime: k.InstallTime})
	}
	next := maxTerm + 1
	keys = append(keys, termKey{Term: next, Key: secret.RandomBytes(keySize), InstallTime: b.clk.Now().UTC()})
	f := keyringFile{ActiveTerm: next, Keys: keys}
	r, err := buildKeyring(f)
	if err != nil {
		return 0, err
	}
	if err := b.storeKeyring(ctx, b.rootKey, f); err != nil {
		r.zero()
		return 0, err
	}
	b.ring.Store(r)
	b.encryptions.Store(0)
	old.zero()
	return next, nil
}

// KeyStatus reports the active term.
func (b *Barrier) KeyStatus() (KeyStatus, error) {
	r := b.ring.Load()
	if r == nil {
		return KeyStatus{}, ErrSealed
	}
	k := r.activeKey()
	return KeyStatus{Term: k.Term, InstallTime: k.InstallTime, Encryptions: b.encryptions.Load()}, nil
}

func checkPath(key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return fmt.Errorf("barrier: %w: %q", err, key)
	}
	for _, r := range reserved {
		if key == r {
			return fmt.Errorf("%w: %q", ErrReservedPath, key)
		}
	}
	return nil
}

func (b *Barrier) seal(key string, value []byte) ([]byte, error) {
	r := b.ring.Load()
	if r == nil {
		return nil, ErrSealed
	}
	b.encryptions.Add(1)
	return encrypt(r.aeads[r.active], r.active, key, value, &b.aads), nil
}

// Get returns the decrypted value at key, or logical.ErrNotFound.
func (b *Barrier) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkPath(key); err != nil {
		return nil, err
	}
	r := b.ring.Load()
	if r == nil {
		return nil, ErrSealed
	}
	ct, err := b.backend.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		// Unwrapped: a miss is a common answer, not a failure, and the
		// caller knows which key it asked for.
		return nil, logical.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("barrier: read %q: %w", key, err)
	}
	term, err := termOf(key, ct)
	if err != nil {
		return nil, err
	}
	a := r.aeads[term]
	if a == nil {
		return nil, fmt.Errorf("barrier: entry %q: %w: unknown key term %d", key, ErrDecrypt, term)
	}
	return decrypt(a, key, ct, &b.aads)
}

// Put encrypts value and stores it at key.
func (b *Barrier) Put(ctx context.Context, key string, value []byte) error {
	if err := checkPath(key); err != nil {
		return err
	}
	ct, err := b.seal(key, value)
	if err != nil {
		return err
	}
	if err := b.backend.Put(ctx, key, ct); err != nil {
		return fmt.Errorf("barrier: write %q: %w", key, err)
	}
	return nil
}

// Delete removes key.
func (b *Barrier) Delete(ctx context.Context, key string) error {
	if err := checkPath(key); err != nil {
		return err
	}
	if b.Sealed() {
		return ErrSealed
	}
	if err := b.backend.Delete(ctx, key); err != nil {
		return fmt.Errorf("barrier: delete %q: %w", key, err)
	}
	return nil
}

// List returns the children of prefix.
func (b *Barrier) List(ctx context.Context, prefix string) ([]string, error) {
	if b.Sealed() {
		return nil, ErrSealed
	}
	if strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("barrier: %w: %q", storage.ErrInvalidKey, prefix)
	}
	keys, err := b.backend.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("barrier: list %q: %w", prefix, err)
	}
	return keys, nil
}

// Transaction encrypts and applies ops atomically when the backend supports
// transactions, and one by one, in order, otherwise.
func (b *Barrier) Transaction(ctx context.Context, ops []logical.StorageOp) error {
	phys := make([]storage.Op, len(ops))
	for i, op := range ops {
		if err := checkPath(op.Key); err != nil {
			return err
		}
		phys[i] = storage.Op{Key: op.Key, Delete: op.Delete}
		if !op.Delete {
			ct, err := b.seal(op.Key, op.Value)
			if err != nil {
				return err
			}
			phys[i].Value = ct
		} else if b.Sealed() {
			return ErrSealed
		}
	}
	if tb, ok := b.backend.(storage.Transactional); ok {
		if err := tb.Transaction(ctx, phys); err != nil {
			return fmt.Errorf("barrier: transaction: %w", err)
		}
		return nil
	}
	for _, op := range phys {
		var err error
		if op.Delete {
			err = b.backend.Delete(ctx, op.Key)
		} else {
			err = b.backend.Put(ctx, op.Key, op.Value)
		}
		if err != nil {
			return fmt.Errorf("barrier: write %q: %w", op.Key, err)
		}
	}
	return nil
}

// View returns the storage seen by one mount: every key is prefixed with
// prefix, which must end in '/'. A view cannot reach outside its prefix.
func (b *Barrier) View(prefix string) logical.TransactionalStorage {
	return &view{b: b, prefix: prefix}
}

type view struct {
	b      *Barrier
	prefix string
}

func (v *view) Get(ctx context.Context, key string) ([]byte, error) {
	return v.b.Get(ctx, v.prefix+key)
}

func (v *view) Put(ctx context.Context, key string, value []byte) error {
	return v.b.Put(ctx, v.prefix+key, value)
}

func (v *view) Delete(ctx context.Context, key string) error {
	return v.b.Delete(ctx, v.prefix+key)
}

func (v *view) List(ctx context.Context, prefix string) ([]string, error) {
	return v.b.List(ctx, v.prefix+prefix)
}

func (v *view) Transaction(ctx context.Context, ops []logical.StorageOp) error {
	prefixed := make([]logical.StorageOp, len(ops))
	for i, op := range ops {
		prefixed[i] = logical.StorageOp{Key: v.prefix + op.Key, Value: op.Value, Delete: op.Delete}
	}
	return v.b.Transaction(ctx, prefixed)
}
