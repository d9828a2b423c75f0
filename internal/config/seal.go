package config

import (
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
)

// Seal is the seal block: how the root key is protected. Without one the
// seal is Shamir's (unseal key shares held by people).
//
//	seal "static" {
//	  current_key_id = "2026-11"
//	  current_key    = "file:///etc/vigil/unseal-2026-11.key"
//	}
//
//	seal "pkcs11" {
//	  lib          = "/usr/lib/softhsm/libsofthsm2.so"
//	  token_label  = "vigil"
//	  key_label    = "vigil-root-key"
//	  generate_key = true
//	}
type Seal struct {
	// Type is "shamir", "static" or "pkcs11".
	Type   string
	Static *StaticSeal
	PKCS11 *PKCS11Seal
	Line   int
}

// StaticSeal is a seal "static" block. The keys are sources, never key
// material: "file:///path" or "env://NAME", read when the server starts.
type StaticSeal struct {
	CurrentKeyID  string
	CurrentKey    string
	PreviousKeyID string
	PreviousKey   string
}

// MechanismAESGCM is the PKCS#11 mechanism of the pkcs11 seal (CKM_AES_GCM,
// 0x1087).
const MechanismAESGCM = "CKM_AES_GCM"

// PKCS11Seal is a seal "pkcs11" block.
type PKCS11Seal struct {
	// Lib is the path of the PKCS#11 module (shared library).
	Lib string
	// Slot selects the token by slot number (HasSlot), or TokenLabel by
	// its label.
	Slot       uint
	HasSlot    bool
	TokenLabel string
	// PIN logs in as the token's user; the environment (VIGIL_HSM_PIN)
	// overrides it, so that it need not be written here.
	PIN string
	// KeyLabel is the CKA_LABEL of the AES key.
	KeyLabel string
	// Mechanism is always MechanismAESGCM.
	Mechanism string
	// GenerateKey creates the key in the token when it is absent.
	GenerateKey bool
}

// sealTypes are the seal types a config may declare.
var sealTypes = []string{"shamir", "static", "pkcs11"}

func (p *parser) seal(b block) (Seal, error) {
	s := Seal{Type: b.label, Line: b.pos.Line}
	switch b.label {
	case "shamir":
		if len(b.body.Items) > 0 {
			it := b.body.Items[0]
			return Seal{}, p.errorf(it.Pos(), "unknown key %q in seal %q: it takes none", keyName(it.Keys[0]), b.label)
		}
		return s, nil
	case "static":
		st, err := p.staticSeal(b)
		s.Static = st
		return s, err
	case "pkcs11":
		ps, err := p.pkcs11Seal(b)
		s.PKCS11 = ps
		return s, err
	}
	return Seal{}, p.errorf(b.pos, "unsupported seal type %q: want %s", b.label, strings.Join(sealTypes, ", "))
}

func (p *parser) staticSeal(b block) (*StaticSeal, error) {
	st := &StaticSeal{}
	err := p.eachKey(b, func(key string, item *ast.ObjectItem) (err error) {
		switch key {
		case "current_key_id":
			st.CurrentKeyID, err = p.str(item)
		case "current_key", "previous_key":
			var v string
			if v, err = p.str(item); err == nil && !strings.HasPrefix(v, "file://") && !strings.HasPrefix(v, "env://") {
				// Never echo the value: it may be the key itself.
				err = p.errorf(item.Pos(), `%s must be "file:///path" or "env://NAME": the key itself does not belong in the configuration file`, key)
			}
			if key == "current_key" {
				st.CurrentKey = v
			} else {
				st.PreviousKey = v
			}
		case "previous_key_id":
			st.PreviousKeyID, err = p.str(item)
		default:
			err = p.errorf(item.Pos(), "unknown key %q in seal %q", key, b.label)
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case st.CurrentKeyID == "" || st.CurrentKey == "":
		return nil, p.errorf(b.pos, `seal "static" needs current_key_id and current_key`)
	case (st.PreviousKeyID == "") != (st.PreviousKey == ""):
		return nil, p.errorf(b.pos, `seal "static": previous_key_id and previous_key must be set together`)
	case st.PreviousKeyID != "" && st.PreviousKeyID == st.CurrentKeyID:
		return nil, p.errorf(b.pos, `seal "static": previous_key_id must differ from current_key_id`)
	}
	return st, nil
}

func (p *parser) pkcs11Seal(b block) (*PKCS11Seal, error) {
	ps := &PKCS11Seal{Mechanism: MechanismAESGCM}
	err := p.eachKey(b, func(key string, item *ast.ObjectItem) (err error) {
		switch key {
		case "lib":
			ps.Lib, err = p.str(item)
		case "slot":
			var n int64
			if n, err = p.integer(item); err == nil && (n < 0 || n > 1<<32-1) {
				err = p.errorf(item.Pos(), "slot must be a slot number, not %d", n)
			}
			ps.Slot, ps.HasSlot = uint(n), true
		case "token_label":
			ps.TokenLabel, err = p.str(item)
		case "pin":
			ps.PIN, err = p.str(item)
		case "key_label":
			ps.KeyLabel, err = p.str(item)
		case "mechanism":
			var m string
			if m, err = p.literalText(item); err == nil {
				if !aesGCM(m) {
					err = p.errorf(item.Pos(), "unsupported mechanism %q: the pkcs11 seal uses CKM_AES_GCM (0x1087)", m)
				}
			}
		case "generate_key":
			ps.GenerateKey, err = p.boolean(item)
		default:
			err = p.errorf(item.Pos(), "unknown key %q in seal %q", key, b.label)
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case ps.Lib == "":
		return nil, p.errorf(b.pos, `seal "pkcs11" needs lib, the path of the PKCS#11 library`)
	case ps.HasSlot == (ps.TokenLabel != ""):
		return nil, p.errorf(b.pos, `seal "pkcs11" needs one of slot and token_label`)
	case ps.KeyLabel == "":
		return nil, p.errorf(b.pos, `seal "pkcs11" needs key_label`)
	}
	return ps, nil
}

// eachKey calls f with each item of the block and its key, up to the
// first error.
func (p *parser) eachKey(b block, f func(key string, item *ast.ObjectItem) error) error {
	for _, item := range b.body.Items {
		if err := f(keyName(item.Keys[0]), item); err != nil {
			return err
		}
	}
	return nil
}

// aesGCM reports whether m names CKM_AES_GCM: by name, or by number as
// Vault's configurations write it ("0x1087", "4231").
func aesGCM(m string) bool {
	m = strings.TrimSpace(m)
	if strings.EqualFold(m, MechanismAESGCM) || strings.EqualFold(m, "AES-GCM") || strings.EqualFold(m, "AES_GCM") {
		return true
	}
	n, err := strconv.ParseUint(m, 0, 32)
	return err == nil && n == 0x1087
}

// literalText returns a string or number literal's text.
func (p *parser) literalText(item *ast.ObjectItem) (string, error) {
	tok, err := p.literal(item, "a string or a number")
	if err != nil {
		return "", err
	}
	if tok.Type == token.STRING || tok.Type == token.HEREDOC {
		return tok.Value().(string), nil
	}
	return tok.Text, nil
}
