//go:build unix

package envexec

import (
	"os"
	"syscall"
)

func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return 0
}
