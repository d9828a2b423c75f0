//go:build !unix

package child

import (
	"os"
	"syscall"
)

// Forwarded are the signals a supervisor passes on to its child.
func Forwarded() []os.Signal { return []os.Signal{os.Interrupt, syscall.SIGTERM} }

// Terminating reports whether sig asks a process to end.
func Terminating(sig os.Signal) bool { return sig == os.Interrupt || sig == syscall.SIGTERM }

// ParseSignal parses a signal name.
func ParseSignal(s string) (os.Signal, bool) {
	switch normalize(s) {
	case "SIGINT":
		return os.Interrupt, true
	case "SIGTERM":
		return syscall.SIGTERM, true
	case "SIGKILL":
		return os.Kill, true
	}
	return nil, false
}
