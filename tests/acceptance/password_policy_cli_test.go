//go:build !e2e

package acceptance

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestPasswordPolicyWithTheCLI manages a password policy with Vigil's
// generic commands, as Vault's documentation does with vault's: write
// from a file (policy=@file), read it back, generate, list, delete; a bad
// policy fails with the server's message.
func TestPasswordPolicyWithTheCLI(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{InMemory: true})
	file := filepath.Join(t.TempDir(), "alnum.hcl")
	if err := os.WriteFile(file, []byte(alnumPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	out := vigilCLI(t, s.URL, s.RootToken, "write", "sys/policies/password/alnum", "policy=@"+file)
	if !strings.Contains(out, "Success! Data written to: sys/policies/password/alnum") {
		t.Errorf("write answered %q", out)
	}
	if got := vigilCLI(t, s.URL, s.RootToken, "read", "-field=policy", "sys/policies/password/alnum"); got != alnumPolicy && got != alnumPolicy+"\n" {
		t.Errorf("read -field=policy answered %q", got)
	}
	var gen struct {
		Data struct{ Password string }
	}
	if err := json.Unmarshal([]byte(vigilCLI(t, s.URL, s.RootToken, "read", "-format=json", "sys/policies/password/alnum/generate")), &gen); err != nil {
		t.Fatal(err)
	}
	if problem := policyProblem(alnumPolicy, gen.Data.Password); problem != "" {
		t.Errorf("generate answered %q: %s", gen.Data.Password, problem)
	}
	pw := strings.TrimSpace(vigilCLI(t, s.URL, s.RootToken, "read", "-field=password", "sys/policies/password/alnum/generate"))
	if problem := policyProblem(alnumPolicy, pw); problem != "" || pw == gen.Data.Password {
		t.Errorf("generate -field=password answered %q (%s)", pw, problem)
	}
	if out := vigilCLI(t, s.URL, s.RootToken, "list", "sys/policies/password"); !strings.Contains(out, "alnum") {
		t.Errorf("list answered %q", out)
	}

	var stdout, stderr strings.Builder
	env := map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}
	code := cli.Run(context.Background(), []string{"write", "sys/policies/password/short", "policy=length = 2\nrule \"charset\" { charset = \"ab\" }"},
		strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	if code == 0 || !strings.Contains(stderr.String(), "length must be from 4 to 100, not 2") {
		t.Errorf("a bad policy: exit %d, %q", code, stderr.String())
	}

	vigilCLI(t, s.URL, s.RootToken, "delete", "sys/policies/password/alnum")
	stdout.Reset()
	stderr.Reset()
	code = cli.Run(context.Background(), []string{"read", "sys/policies/password/alnum/generate"},
		strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	if code == 0 || !strings.Contains(stderr.String()+stdout.String(), "No value found") {
		t.Errorf("generate from a deleted policy: exit %d, %q %q", code, stdout.String(), stderr.String())
	}
}
