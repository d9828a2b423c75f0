//go:build cgo

package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	p11 "github.com/miekg/pkcs11"

	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Wrapper is the HSM seal: one logged-in session on the token and the
// handle of its AES key. It is safe for concurrent use (calls are
// serialized: a PKCS#11 session runs one operation at a time).
type Wrapper struct {
	label string

	mu      sync.Mutex
	ctx     *p11.Ctx
	owns    bool // this Wrapper initialized the module
	session p11.SessionHandle
	opened  bool // session is open
	key     p11.ObjectHandle
	closed  bool
}

var _ seal.Wrapper = (*Wrapper)(nil)

// Open loads the module, logs in to the token and finds (or, with
// GenerateKey, creates) the AES key. Close releases them.
func Open(cfg Config) (*Wrapper, error) {
	switch {
	case cfg.Lib == "":
		return nil, fmt.Errorf("%w: no PKCS#11 library", seal.ErrConfig)
	case cfg.KeyLabel == "":
		return nil, fmt.Errorf("%w: no key label", seal.ErrConfig)
	case cfg.PIN.IsEmpty():
		return nil, fmt.Errorf("%w: no PIN for the token (set pin, or VIGIL_HSM_PIN in the environment)", seal.ErrConfig)
	}
	ctx := p11.New(cfg.Lib)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11: cannot load %s as a PKCS#11 module", cfg.Lib)
	}
	w := &Wrapper{label: cfg.KeyLabel, ctx: ctx, owns: true}
	if err := ctx.Initialize(); err != nil {
		if !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			ctx.Destroy()
			return nil, fmt.Errorf("pkcs11: initialize %s: %w", cfg.Lib, err)
		}
		w.owns = false
	}
	if err := w.open(cfg); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *Wrapper) open(cfg Config) error {
	slot, err := w.findSlot(cfg)
	if err != nil {
		return err
	}
	w.session, err = w.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("pkcs11: open a session on slot %d: %w", slot, err)
	}
	w.opened = true
	if err := w.ctx.Login(w.session, p11.CKU_USER, cfg.PIN.Reveal()); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
		return fmt.Errorf("pkcs11: log in to the token on slot %d: %w", slot, err)
	}
	w.key, err = w.findKey()
	if errors.Is(err, ErrNoKey) && cfg.GenerateKey {
		w.key, err = w.generateKey()
	}
	return err
}

// findSlot returns the slot chosen by number or by its token's label.
func (w *Wrapper) findSlot(cfg Config) (uint, error) {
	slots, err := w.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: list slots: %w", err)
	}
	if cfg.HasSlot {
		if !slices.Contains(slots, cfg.Slot) {
			return 0, fmt.Errorf("pkcs11: no token in slot %d (slots with a token: %v)", cfg.Slot, slots)
		}
		return cfg.Slot, nil
	}
	var labels []string
	for _, s := range slots {
		info, err := w.ctx.GetTokenInfo(s)
		if err != nil {
			return 0, fmt.Errorf("pkcs11: token info of slot %d: %w", s, err)
		}
		if info.Label == cfg.TokenLabel {
			return s, nil
		}
		labels = append(labels, info.Label)
	}
	return 0, fmt.Errorf("pkcs11: no token labelled %q (tokens: %q)", cfg.TokenLabel, labels)
}

func (w *Wrapper) keyTemplate() []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_LABEL, w.label),
	}
}

func (w *Wrapper) findKey() (p11.ObjectHandle, error) {
	if err := w.ctx.FindObjectsInit(w.session, w.keyTemplate()); err != nil {
		return 0, fmt.Errorf("pkcs11: find key %q: %w", w.label, err)
	}
	objs, _, err := w.ctx.FindObjects(w.session, 2)
	if ferr := w.ctx.FindObjectsFinal(w.session); err == nil && ferr != nil {
		err = ferr
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("pkcs11: find key %q: %w", w.label, err)
	case len(objs) == 0:
		return 0, fmt.Errorf("%w: %q (set generate_key = true to create it)", ErrNoKey, w.label)
	case len(objs) > 1:
		return 0, fmt.Errorf("pkcs11: several AES keys are labelled %q: the seal needs one", w.label)
	}
	return objs[0], nil
}

// generateKey creates an AES-256 key that stays in the token: sensitive,
// not extractable, usable only to encrypt and decrypt.
func (w *Wrapper) generateKey() (p11.ObjectHandle, error) {
	tmpl := append(w.keyTemplate(),
		p11.NewAttribute(p11.CKA_VALUE_LEN, seal.KeySize),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_ENCRYPT, true),
		p11.NewAttribute(p11.CKA_DECRYPT, true),
		p11.NewAttribute(p11.CKA_WRAP, false),
		p11.NewAttribute(p11.CKA_UNWRAP, false),
	)
	h, err := w.ctx.GenerateKey(w.session, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, tmpl)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: generate key %q: %w", w.label, err)
	}
	return h, nil
}

// Type implements seal.Wrapper.
func (w *Wrapper) Type() string { return seal.TypePKCS11 }

// KeyID implements seal.Wrapper: the key's label.
func (w *Wrapper) KeyID() string { return w.label }

// Encrypt implements seal.Wrapper.
func (w *Wrapper) Encrypt(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("pkcs11: the seal is closed")
	}
	params := p11.NewGCMParams(secret.RandomBytes(gcmIVSize), aad, gcmTagBits)
	defer params.Free()
	if err := w.ctx.EncryptInit(w.session, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, w.key); err != nil {
		return nil, fmt.Errorf("pkcs11: encrypt with key %q: %w", w.label, err)
	}
	ct, err := w.ctx.Encrypt(w.session, plaintext)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: encrypt with key %q: %w", w.label, err)
	}
	// Some HSMs choose the IV themselves; read back the one used.
	iv := params.IV()
	if len(iv) != gcmIVSize {
		return nil, fmt.Errorf("pkcs11: the HSM used a %d-byte GCM IV, want %d", len(iv), gcmIVSize)
	}
	return append(iv, ct...), nil
}

// Decrypt implements seal.Wrapper.
func (w *Wrapper) Decrypt(_ context.Context, keyID string, ciphertext, aad []byte) (secret.Bytes, error) {
	if keyID != w.label {
		return nil, fmt.Errorf("%w: key label %q is not key_label %q", seal.ErrUnknownKey, keyID, w.label)
	}
	if len(ciphertext) < gcmIVSize+gcmTagBits/8 {
		return nil, fmt.Errorf("%w (key %q): ciphertext too short", seal.ErrUnwrap, keyID)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("pkcs11: the seal is closed")
	}
	params := p11.NewGCMParams(append([]byte(nil), ciphertext[:gcmIVSize]...), aad, gcmTagBits)
	defer params.Free()
	if err := w.ctx.DecryptInit(w.session, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, w.key); err != nil {
		return nil, fmt.Errorf("pkcs11: decrypt with key %q: %w", w.label, err)
	}
	pt, err := w.ctx.Decrypt(w.session, ciphertext[gcmIVSize:])
	if err != nil {
		// A wrong key, an altered ciphertext or other additional data
		// all fail the GCM tag check.
		return nil, fmt.Errorf("%w (key %q): %v", seal.ErrUnwrap, keyID, err)
	}
	return pt, nil
}

// Close ends the session and, when this Wrapper initialized the module,
// finalizes it.
func (w *Wrapper) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.ctx == nil {
		return nil
	}
	w.closed = true
	var errs []error
	if w.opened {
		if err := w.ctx.CloseSession(w.session); err != nil {
			errs = append(errs, fmt.Errorf("pkcs11: close session: %w", err))
		}
	}
	if w.owns {
		if err := w.ctx.Finalize(); err != nil {
			errs = append(errs, fmt.Errorf("pkcs11: finalize: %w", err))
		}
	}
	w.ctx.Destroy()
	return errors.Join(errs...)
}
