package cli

import (
	"strings"
	"testing"
)

// The flags a generate-root run cannot combine, and -decode, which needs
// no server: the encoding is Vault's (see api.DecodeRootToken).
func TestOperatorGenerateRootLocal(t *testing.T) {
	t.Parallel()
	const encoded, otp = "PzVHSRMXERYIFCl9IhIMKwUoMz8OJBEgXAIIdQ", "WC4gXgKrEUZIRDxHRNTiiUIf9GO8"
	r := mustRun(t, nil, 0, "operator", "generate-root", "-decode="+encoded, "-otp="+otp)
	if r.stdout != "hvs.KpZdMAs4pVtcWfgVgqXFeEGM\n" {
		t.Fatalf("decode: %q", r.stdout)
	}
	r = mustRun(t, nil, 0, "operator", "generate-root", "-format=json", "-decode="+encoded, "-otp="+otp)
	if !strings.Contains(r.stdout, `"token": "hvs.KpZdMAs4pVtcWfgVgqXFeEGM"`) {
		t.Fatalf("decode json: %q", r.stdout)
	}
	for _, args := range [][]string{
		{"-decode=" + encoded},                          // no otp
		{"-decode=" + encoded, "-otp=short"},            // wrong length
		{"-init", "-cancel"},                            // two modes
		{"-init", "-pgp-key=key.asc"},                   // PGP
		{"-status", "abcd"},                             // a key with a mode
		{"-decode=" + encoded, "-otp=" + otp, "a", "b"}, // too many arguments
	} {
		r := run(t, nil, runOpts{}, append([]string{"operator", "generate-root"}, args...)...)
		if r.code != 2 || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}
