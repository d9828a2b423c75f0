//go:build !e2e

package acceptance

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// generateRootWithVault runs a root token generation with Vault's Go
// client, as `vault operator generate-root` does: an OTP of otp_length
// base62 characters, then one key per update. It returns the decoded token.
func generateRootWithVault(t *testing.T, c *vault.Client, keys []string) string {
	t.Helper()
	st, err := c.Sys().GenerateRootStatus()
	if err != nil || st.Started || st.OTPLength != 28 || st.Required != len(keys) {
		t.Fatalf("status: %+v %v", st, err)
	}
	otp := secret.RandomBase62(st.OTPLength)
	st, err = c.Sys().GenerateRootInit(otp, "")
	if err != nil || !st.Started || st.Nonce == "" {
		t.Fatalf("init: %+v %v", st, err)
	}
	if _, err := c.Sys().GenerateRootUpdate(keys[0], "not-the-nonce"); err == nil || !strings.Contains(err.Error(), "incorrect nonce supplied") {
		t.Fatalf("wrong nonce: %v", err)
	}
	for i, k := range keys {
		st, err = c.Sys().GenerateRootUpdate(k, st.Nonce)
		if err != nil || st.Progress != i+1 || st.Complete != (i == len(keys)-1) {
			t.Fatalf("key %d: %+v %v", i, st, err)
		}
	}
	if st.EncodedToken == "" || st.EncodedRootToken != st.EncodedToken {
		t.Fatalf("final: %+v", st)
	}
	tok, err := api.DecodeRootToken(st.EncodedToken, otp)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func checkRootToken(t *testing.T, url, tok string) {
	t.Helper()
	c := vaultClientAt(t, url, tok)
	sec, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := sec.TokenPolicies(); len(p) != 1 || p[0] != "root" {
		t.Fatalf("generated token policies %v", p)
	}
}

func TestGenerateRootWithTheVaultClient(t *testing.T) {
	t.Run("unseal keys", func(t *testing.T) {
		s := testcluster.New(t, testcluster.Options{InMemory: true, Shares: 5, Threshold: 3})
		c := vaultClientAt(t, s.URL, "")
		checkRootToken(t, s.URL, generateRootWithVault(t, c, s.Keys[1:4]))
	})
	t.Run("recovery keys", func(t *testing.T) {
		s := testcluster.New(t, testcluster.Options{InMemory: true, Shares: 5, Threshold: 3,
			Seal: staticSeal(t, seal.Key{ID: "k", Material: secret.RandomBytes(seal.KeySize)})})
		c := vaultClientAt(t, s.URL, "")
		checkRootToken(t, s.URL, generateRootWithVault(t, c, s.RecoveryKeys[:3]))
		// Cancel, and the started attempt is gone.
		if _, err := c.Sys().GenerateRootInit("", ""); err != nil {
			t.Fatal(err)
		}
		if err := c.Sys().GenerateRootCancel(); err != nil {
			t.Fatal(err)
		}
		if st, err := c.Sys().GenerateRootStatus(); err != nil || st.Started {
			t.Fatalf("after cancel: %+v %v", st, err)
		}
	})
}

// cliRunner runs vigil commands in-process against url.
type cliRunner struct {
	t   *testing.T
	env map[string]string
}

func (r *cliRunner) run(stdin string, args ...string) string {
	r.t.Helper()
	var out, errOut strings.Builder
	code := cli.Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return r.env[k] })
	if code != 0 {
		r.t.Fatalf("vigil %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

// TestGenerateRootWithTheCLI: init of an auto-sealed server with the
// vigil CLI prints recovery keys, and `vigil operator generate-root` makes
// a root token from three of them, each submitted a different way.
func TestGenerateRootWithTheCLI(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{InMemory: true, Uninitialized: true,
		Seal: staticSeal(t, seal.Key{ID: "k", Material: secret.RandomBytes(seal.KeySize)})})
	r := &cliRunner{t: t, env: map[string]string{"VIGIL_ADDR": s.URL, "HOME": t.TempDir()}}
	out := r.run("", "operator", "init")
	recovery := regexp.MustCompile(`(?m)^Recovery Key \d: (\S+)$`).FindAllStringSubmatch(out, -1)
	root := regexp.MustCompile(`(?m)^Initial Root Token: (\S+)$`).FindStringSubmatch(out)
	if len(recovery) != 5 || root == nil || strings.Contains(out, "Unseal Key") || !strings.Contains(out, "unsealed itself") {
		t.Fatalf("init output:\n%s", out)
	}
	status := r.run("", "status")
	for _, want := range []string{"static", "Recovery Seal Type       shamir", "Sealed                   false", "Total Recovery Shares    5", "Threshold                3"} {
		if !strings.Contains(status, want) {
			t.Fatalf("status lacks %q:\n%s", want, status)
		}
	}

	otp := strings.TrimSpace(r.run("", "operator", "generate-root", "-generate-otp"))
	if len(otp) != 28 {
		t.Fatalf("otp %q", otp)
	}
	var st vault.GenerateRootStatusResponse
	if err := json.Unmarshal([]byte(r.run("", "operator", "generate-root", "-init", "-otp="+otp, "-format=json")), &st); err != nil || !st.Started {
		t.Fatalf("init: %+v %v", st, err)
	}
	if got := r.run("", "operator", "generate-root", "-status"); !regexp.MustCompile(`Progress\s+0/3`).MatchString(got) || !strings.Contains(got, st.Nonce) {
		t.Fatalf("status:\n%s", got)
	}
	r.run("", "operator", "generate-root", "-nonce="+st.Nonce, recovery[0][1]) // KEY
	r.run(recovery[1][1]+"\n", "operator", "generate-root", "-nonce="+st.Nonce, "-")
	last := r.run(recovery[2][1]+"\n", "operator", "generate-root") // as typed at the prompt
	m := regexp.MustCompile(`(?m)^Encoded Token\s+(\S+)$`).FindStringSubmatch(last)
	if m == nil || !regexp.MustCompile(`Complete\s+true`).MatchString(last) {
		t.Fatalf("last key:\n%s", last)
	}
	tok := strings.TrimSpace(r.run("", "operator", "generate-root", "-decode="+m[1], "-otp="+otp))
	checkRootToken(t, s.URL, tok)
	if tok == root[1] {
		t.Fatal("the generated token is the initial one")
	}

	// -init alone: the server makes the OTP and prints it once.
	if got := r.run("", "operator", "generate-root", "-init"); !regexp.MustCompile(`(?m)^OTP\s+\S{28}$`).MatchString(got) {
		t.Fatalf("init without otp:\n%s", got)
	}
	r.run("", "operator", "generate-root", "-cancel")
	if got := r.run("", "operator", "generate-root", "-status"); !regexp.MustCompile(`Started\s+false`).MatchString(got) {
		t.Fatalf("after cancel:\n%s", got)
	}
}
