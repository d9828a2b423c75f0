//go:build unix

package load

import (
	"syscall"
	"time"
)

// processCPU returns the processor time this process has used so far, in
// user and system mode, over all its threads (the kernel's io_uring
// workers among them), and whether the platform tells.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
