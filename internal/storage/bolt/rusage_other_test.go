//go:build !unix

package bolt_test

import "runtime"

// cpuTime is not measured on this system.
func cpuTime() int64 { return 0 }

func testingProcs() int { return runtime.GOMAXPROCS(0) }
