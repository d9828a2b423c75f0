//go:build unix

package bolt_test

import (
	"runtime"
	"syscall"
)

// cpuTime is the user and system CPU time of the process so far, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
