package pgtest

import "syscall"

// sysProcAttr runs the postmaster as cred (nil: the current user) and has
// the kernel stop it (SIGQUIT, PostgreSQL's immediate shutdown) if the
// test binary dies without stopping it: a panic, a test timeout, a kill.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}
