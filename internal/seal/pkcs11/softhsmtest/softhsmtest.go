// Package softhsmtest makes SoftHSM2 tokens for tests of the pkcs11 seal:
// each in its own temporary directory, named by a SOFTHSM2_CONF file. It is
// imported only from _test.go files (the dependency test checks this).
//
// SoftHSM2 is Debian's softhsm2 package (scripts/test installs it). A test
// that needs it and cannot find its library or softhsm2-util is skipped
// with a message that says so.
package softhsmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// LibEnv names a variable that points at libsofthsm2.so when it is
// somewhere the search does not look.
const LibEnv = "VIGIL_TEST_SOFTHSM2_LIB"

// libPaths are where distributions install the SoftHSM2 module.
var libPaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/lib/pkcs11/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

// Lib returns the path of the SoftHSM2 module, or "" when none is found.
func Lib() string {
	if p := os.Getenv(LibEnv); p != "" {
		return p
	}
	for _, p := range libPaths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Token is an initialized SoftHSM2 token.
type Token struct {
	// Lib is the module, Conf the SOFTHSM2_CONF file naming the token's
	// directory.
	Lib, Conf string
	// Label, PIN and SOPIN are the token's.
	Label, PIN, SOPIN string
}

// Env is the environment entry that makes SoftHSM2 use this token's
// directory, for a child process.
func (tk *Token) Env() string { return "SOFTHSM2_CONF=" + tk.Conf }

// Use points this process's SoftHSM2 at the token (t.Setenv, so the test
// must not be parallel). SoftHSM2 reads the variable when the module is
// initialized.
func (tk *Token) Use(t testing.TB) { t.Setenv("SOFTHSM2_CONF", tk.Conf) }

// New initializes a token labelled label in a new temporary directory, or
// skips the test when SoftHSM2 is not installed or the build has no cgo.
func New(t testing.TB, label string) *Token {
	t.Helper()
	if !cgoEnabled {
		t.Skip("built without cgo: the PKCS#11 seal needs it (CGO_ENABLED=1 and a C compiler)")
	}
	lib := Lib()
	if lib == "" {
		t.Skipf("SoftHSM2 is not installed (no libsofthsm2.so in %v, and %s is not set): install the softhsm2 package (scripts/test does) to run the PKCS#11 seal tests", libPaths, LibEnv)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Skipf("SoftHSM2's library is at %s but softhsm2-util is not on PATH: install the softhsm2 package to run the PKCS#11 seal tests", lib)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	tk := &Token{Lib: lib, Conf: conf, Label: label, PIN: "4321-user", SOPIN: "8765-so"}
	tk.initToken(t, util)
	return tk
}

// Add initializes another token, labelled label, beside tk (same
// directory, same PINs).
func (tk *Token) Add(t testing.TB, label string) *Token {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Fatal(err)
	}
	other := *tk
	other.Label = label
	other.initToken(t, util)
	return &other
}

func (tk *Token) initToken(t testing.TB, util string) {
	t.Helper()
	cmd := exec.Command(util, "--init-token", "--free", "--label", tk.Label, "--pin", tk.PIN, "--so-pin", tk.SOPIN)
	cmd.Env = append(os.Environ(), tk.Env())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
}
