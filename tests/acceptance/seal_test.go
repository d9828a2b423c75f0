//go:build !e2e

package acceptance

import (
	"context"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

func staticSeal(t *testing.T, key seal.Key) seal.Wrapper {
	t.Helper()
	w, err := seal.NewStatic(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestAutoUnsealWithTheVaultClient: init of a server with a static seal
// through Vault's Go client returns recovery keys and leaves it unsealed;
// sys/seal-status says it is a recovery seal; a restart over the same
// storage unseals by itself.
func TestAutoUnsealWithTheVaultClient(t *testing.T) {
	dir := t.TempDir()
	key := seal.Key{ID: "2026-11", Material: secret.RandomBytes(seal.KeySize)}
	s := testcluster.New(t, testcluster.Options{Dir: dir, Uninitialized: true, Seal: staticSeal(t, key)})
	c := vaultClientAt(t, s.URL, "")
	st, err := c.Sys().SealStatus()
	if err != nil || st.Type != "static" || !st.RecoverySeal || st.RecoverySealType != "shamir" || st.Initialized {
		t.Fatalf("seal status before init: %+v %v", st, err)
	}
	// The unseal key parameters are not applicable to an auto seal.
	if _, err := c.Sys().Init(&vault.InitRequest{SecretShares: 5, SecretThreshold: 3}); err == nil ||
		!strings.Contains(err.Error(), "parameters secret_shares,secret_threshold not applicable to seal type static") {
		t.Fatalf("init with secret shares: %v", err)
	}
	init, err := c.Sys().Init(&vault.InitRequest{RecoveryShares: 5, RecoveryThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(init.Keys) != 0 || len(init.KeysB64) != 0 || len(init.RecoveryKeys) != 5 || len(init.RecoveryKeysB64) != 5 || init.RootToken == "" {
		t.Fatalf("init: %d keys, %d recovery keys", len(init.Keys), len(init.RecoveryKeys))
	}
	st, err = c.Sys().SealStatus()
	if err != nil || st.Sealed || !st.Initialized || st.T != 3 || st.N != 5 || !st.RecoverySeal || st.Type != "static" {
		t.Fatalf("seal status after init: %+v %v", st, err)
	}
	c.SetToken(init.RootToken)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(context.Background(), "ml/openai", map[string]any{"api_key": "sk-auto"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := testcluster.New(t, testcluster.Options{Dir: dir, Reopen: true, Seal: staticSeal(t, key)})
	c2 := vaultClientAt(t, s2.URL, init.RootToken)
	if h, err := c2.Sys().Health(); err != nil || h.Sealed || !h.Initialized {
		t.Fatalf("health after restart: %+v %v", h, err)
	}
	sec, err := c2.KVv2("secret").Get(context.Background(), "ml/openai")
	if err != nil || sec.Data["api_key"] != "sk-auto" {
		t.Fatalf("read after restart: %v %v", sec, err)
	}
	// sys/seal keeps it sealed; recovery keys unseal it (as in Vault).
	if err := c2.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	for i, k := range init.RecoveryKeysB64[:3] {
		st, err := c2.Sys().Unseal(k)
		if err != nil || st.Sealed != (i < 2) {
			t.Fatalf("recovery key %d: %+v %v", i, st, err)
		}
	}
}
