//go:build unix

package bolt

import "syscall"

// CPUTime is the user and system CPU time of the process so far, in ns,
// for the benchmarks (exported for those of package bolt_test).
func CPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
