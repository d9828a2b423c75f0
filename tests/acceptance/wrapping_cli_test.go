//go:build !e2e

package acceptance

import (
	"context"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestCLIResponseWrapping: -wrap-ttl on write, read and token create
// prints the wrapping token; vigil unwrap trades it once, with the
// wrapping token in the argument (a caller's token present or not) or
// as the caller's token.
func TestCLIResponseWrapping(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{InMemory: true})
	root := s.RootToken
	vigilCLI(t, s.URL, root, "secrets", "enable", "-path=secret", "-version=2", "kv")
	vigilCLI(t, s.URL, root, "kv", "put", "secret/ml/hf", "token=hf_cli_value")
	vigilCLI(t, s.URL, root, "auth", "enable", "approle")
	vigilCLI(t, s.URL, root, "write", "auth/approle/role/ft", "token_policies=default")

	table := vigilCLI(t, s.URL, root, "write", "-wrap-ttl=5m", "-f", "auth/approle/role/ft/secret-id")
	for _, want := range []string{"wrapping_token:", "wrapping_accessor:", "wrapping_token_ttl:", "5m", "auth/approle/role/ft/secret-id"} {
		if !strings.Contains(table, want) {
			t.Fatalf("wrapped write lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "secret_id ") {
		t.Fatalf("the secret ID was printed:\n%s", table)
	}

	// Unwrapped by a caller with a token of its own, the wrapping token
	// as the argument.
	wrapped := vigilCLI(t, s.URL, root, "read", "-wrap-ttl=120", "-field=wrapping_token", "secret/data/ml/hf")
	if out := vigilCLI(t, s.URL, root, "unwrap", "-format=json", wrapped); !strings.Contains(out, "hf_cli_value") {
		t.Fatalf("unwrap:\n%s", out)
	}
	// Spent.
	var stdout, stderr strings.Builder
	env := map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": root, "HOME": t.TempDir()}
	code := cli.Run(context.Background(), []string{"unwrap", wrapped}, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	if code != 1 || !strings.Contains(stderr.String(), "wrapping token is not valid or does not exist") {
		t.Fatalf("second unwrap: exit %d: %s", code, stderr.String())
	}

	// A wrapped token creation, unwrapped with no token of one's own.
	wrapped = vigilCLI(t, s.URL, root, "token", "create", "-policy=default", "-wrap-ttl=1m", "-field=wrapping_token")
	if out := vigilCLI(t, s.URL, "", "unwrap", "-field=token", wrapped); !strings.HasPrefix(out, "hvs.") {
		t.Fatalf("unwrapped token: %q", out)
	}
	// kv get: the mount lookup is not wrapped, the read is.
	wrapped = vigilCLI(t, s.URL, root, "kv", "get", "-wrap-ttl=1m", "-field=wrapping_token", "secret/ml/hf")
	if out := vigilCLI(t, s.URL, root, "unwrap", "-format=json", wrapped); !strings.Contains(out, "hf_cli_value") {
		t.Fatalf("unwrap of a kv get:\n%s", out)
	}
	// The wrapping token as the caller's token.
	wrapped = vigilCLI(t, s.URL, root, "read", "-wrap-ttl=1m", "-field=wrapping_token", "secret/data/ml/hf")
	if out := vigilCLI(t, s.URL, wrapped, "unwrap", "-format=json"); !strings.Contains(out, "hf_cli_value") {
		t.Fatalf("unwrap as the caller:\n%s", out)
	}
}
