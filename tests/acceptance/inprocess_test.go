//go:build !e2e

package acceptance

import (
	"testing"

	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestInProcess runs the suite against in-process servers on real bolt
// files.
func TestInProcess(t *testing.T) {
	runSuite(t, func(t *testing.T) *target {
		dir := t.TempDir()
		s := testcluster.New(t, testcluster.Options{Dir: dir, Shares: 5, Threshold: 3})
		tg := &target{URL: s.URL, RootToken: s.RootToken, Keys: s.Keys[:3]}
		tg.Restart = func(t *testing.T) {
			s.Close()
			// The new server listens on a new port; point the target at it.
			s2 := testcluster.New(t, testcluster.Options{Dir: dir, Sealed: true, Reopen: true})
			tg.URL = s2.URL
		}
		return tg
	})
}
