package config

import (
	"strings"
	"testing"
)

const sealBase = "storage \"inmem\" {}\nlistener \"tcp\" {}\n"

func TestSealBlocks(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		check     func(t *testing.T, s Seal)
	}{
		{"none is shamir", "", func(t *testing.T, s Seal) {
			if s.Type != "shamir" || s.Static != nil || s.PKCS11 != nil {
				t.Fatalf("%+v", s)
			}
		}},
		{"explicit shamir", "seal \"shamir\" {}\n", func(t *testing.T, s Seal) {
			if s.Type != "shamir" || s.Line != 3 {
				t.Fatalf("%+v", s)
			}
		}},
		{"static", `seal "static" {
  current_key_id  = "2026-11"
  current_key     = "file:///etc/vigil/unseal-2026-11.key"
  previous_key_id = "2026-05"
  previous_key    = "env://OLD_UNSEAL_KEY"
}
`, func(t *testing.T, s Seal) {
			want := StaticSeal{CurrentKeyID: "2026-11", CurrentKey: "file:///etc/vigil/unseal-2026-11.key", PreviousKeyID: "2026-05", PreviousKey: "env://OLD_UNSEAL_KEY"}
			if s.Type != "static" || s.Static == nil || *s.Static != want || s.Line != 3 {
				t.Fatalf("%+v %+v", s, s.Static)
			}
		}},
		{"pkcs11 by token label", `seal "pkcs11" {
  lib          = "/usr/lib/softhsm/libsofthsm2.so"
  token_label  = "vigil"
  pin          = "1234"
  key_label    = "vigil-root-key"
  mechanism    = "0x1087"
  generate_key = "true"
}
`, func(t *testing.T, s Seal) {
			want := PKCS11Seal{Lib: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "vigil", PIN: "1234", KeyLabel: "vigil-root-key", Mechanism: MechanismAESGCM, GenerateKey: true}
			if s.Type != "pkcs11" || s.PKCS11 == nil || *s.PKCS11 != want {
				t.Fatalf("%+v %+v", s, s.PKCS11)
			}
		}},
		{"pkcs11 by slot", "seal \"pkcs11\" {\n lib = \"/l.so\"\n slot = \"0\"\n key_label = \"k\"\n mechanism = 4231\n}\n", func(t *testing.T, s Seal) {
			if p := s.PKCS11; p == nil || !p.HasSlot || p.Slot != 0 || p.TokenLabel != "" || p.GenerateKey || p.Mechanism != MechanismAESGCM {
				t.Fatalf("%+v", s.PKCS11)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("vigil.hcl", []byte(sealBase+tc.src))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg.Seal)
		})
	}
	cfg, err := Parse("c.json", []byte(`{"storage": {"inmem": {}}, "listener": {"tcp": {}}, "seal": {"static": {"current_key_id": "k", "current_key": "env://K"}}}`))
	if err != nil || cfg.Seal.Type != "static" || cfg.Seal.Static.CurrentKey != "env://K" {
		t.Fatalf("JSON seal: %+v %v", cfg, err)
	}
	if Dev("").Seal.Type != "shamir" {
		t.Fatal("dev mode is not shamir")
	}
}

func TestSealErrorsNameTheLine(t *testing.T) {
	const key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	for _, tc := range []struct {
		name, src string
		line      int
		text      string
	}{
		{"unknown type", "seal \"awskms\" {}\n", 3, `unsupported seal type "awskms"`},
		{"two seals", "seal \"shamir\" {}\nseal \"static\" {\n}\n", 4, "only one seal block"},
		{"shamir takes no keys", "seal \"shamir\" {\n  disabled = true\n}\n", 4, `unknown key "disabled"`},
		{"static unknown key", "seal \"static\" {\n  current_key_id = \"a\"\n  current_key = \"env://A\"\n  key = \"x\"\n}\n", 6, `unknown key "key" in seal "static"`},
		{"static inline key", "seal \"static\" {\n  current_key_id = \"a\"\n  current_key = \"" + key + "\"\n}\n", 5, "does not belong in the configuration"},
		{"static inline previous key", "seal \"static\" {\n  current_key_id = \"a\"\n  current_key = \"env://A\"\n  previous_key_id = \"b\"\n  previous_key = \"" + key + "\"\n}\n", 7, "does not belong"},
		{"static without key", "seal \"static\" {\n  current_key_id = \"a\"\n}\n", 3, "needs current_key_id and current_key"},
		{"static previous half", "seal \"static\" {\n  current_key_id = \"a\"\n  current_key = \"env://A\"\n  previous_key_id = \"b\"\n}\n", 3, "set together"},
		{"static same ids", "seal \"static\" {\n  current_key_id = \"a\"\n  current_key = \"env://A\"\n  previous_key_id = \"a\"\n  previous_key = \"env://B\"\n}\n", 3, "must differ"},
		{"pkcs11 without lib", "seal \"pkcs11\" {\n  slot = 0\n  key_label = \"k\"\n}\n", 3, "needs lib"},
		{"pkcs11 without token", "seal \"pkcs11\" {\n  lib = \"/l.so\"\n  key_label = \"k\"\n}\n", 3, "one of slot and token_label"},
		{"pkcs11 slot and label", "seal \"pkcs11\" {\n  lib = \"/l.so\"\n  slot = 1\n  token_label = \"t\"\n  key_label = \"k\"\n}\n", 3, "one of slot and token_label"},
		{"pkcs11 without key label", "seal \"pkcs11\" {\n  lib = \"/l.so\"\n  slot = 1\n}\n", 3, "needs key_label"},
		{"pkcs11 bad mechanism", "seal \"pkcs11\" {\n  lib = \"/l.so\"\n  slot = 1\n  key_label = \"k\"\n  mechanism = \"CKM_RSA_PKCS_OAEP\"\n}\n", 7, "unsupported mechanism"},
		{"pkcs11 negative slot", "seal \"pkcs11\" {\n  lib = \"/l.so\"\n  slot = -1\n  key_label = \"k\"\n}\n", 5, "slot must be a slot number"},
		{"pkcs11 unknown key", "seal \"pkcs11\" {\n  lib = \"/l.so\"\n  slot = 1\n  key_label = \"k\"\n  hmac_key_label = \"h\"\n}\n", 7, `unknown key "hmac_key_label"`},
		{"pkcs11 bad generate_key", "seal \"pkcs11\" {\n  lib = \"/l.so\"\n  slot = 1\n  key_label = \"k\"\n  generate_key = \"perhaps\"\n}\n", 7, "generate_key must be true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := wantParseError(t, sealBase+tc.src, tc.line, tc.text); strings.Contains(err.Error(), key) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}
