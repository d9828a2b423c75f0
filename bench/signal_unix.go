//go:build unix

package main

import (
	"os"
	"syscall"
)

// freeze stops p as a debugger, or a machine that hangs, would
// (SIGSTOP): its connections stay open, and it answers nothing until
// thaw.
func freeze(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }

// thaw resumes a process that freeze stopped (SIGCONT); a process that is
// not stopped carries on as it was.
func thaw(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
