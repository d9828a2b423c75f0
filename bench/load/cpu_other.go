//go:build !unix

package load

import "time"

// processCPU reports that this platform does not tell the process's
// processor time.
func processCPU() (time.Duration, bool) { return 0, false }
