//go:build unix

package child

import (
	"os"
	"syscall"
)

// Forwarded are the signals a supervisor passes on to its child.
func Forwarded() []os.Signal {
	return []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}
}

// Terminating reports whether sig asks a process to end (after it, a
// supervisor starts no new child).
func Terminating(sig os.Signal) bool {
	return sig == syscall.SIGINT || sig == syscall.SIGTERM || sig == syscall.SIGQUIT
}

// ParseSignal parses a signal name: "SIGTERM", "TERM", "term"...
func ParseSignal(s string) (os.Signal, bool) {
	sig, ok := signalNames[normalize(s)]
	return sig, ok
}

// signalNames is a lookup table, never written.
var signalNames = map[string]os.Signal{
	"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT, "SIGKILL": syscall.SIGKILL,
	"SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2, "SIGTERM": syscall.SIGTERM,
}
