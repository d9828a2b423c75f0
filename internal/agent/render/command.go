package render

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// cmdResult is the end of a template's command.
type cmdResult struct {
	u   *unit
	err error
}

// commandWaitDelay bounds how long a command's output may be held open
// (by a process it left behind) once it has exited or been killed.
const commandWaitDelay = time.Second

// runCommand runs the template's command in the background after its file
// changed. One run at a time per template: a change during a run makes
// one more run once it ends.
func (l *loop) runCommand(u *unit) {
	if u.cmdRunning {
		u.cmdAgain = true
		return
	}
	u.cmdRunning = true
	argv, timeout := u.command, u.cmdTimeout
	env := l.baseEnv()
	stdout, stderr := l.o.Stdout, l.o.Stderr
	// Killed when Run ends, like everything Run started.
	l.goroutine(func() {
		ctx, cancel := context.WithTimeout(l.ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.WaitDelay = commandWaitDelay
		err := cmd.Run()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && err != nil {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		l.cmdDone <- cmdResult{u, err}
	})
}

// commandEnded logs a command's outcome (a failure is not fatal) and runs
// it again if the file changed meanwhile.
func (l *loop) commandEnded(ctx context.Context, res cmdResult) {
	u := res.u
	u.cmdRunning = false
	var exitErr *exec.ExitError
	switch {
	case res.err == nil:
		l.log.Info("template command ran", "template", u.name)
	case errors.As(res.err, &exitErr):
		l.log.Warn("template command failed", "template", u.name, "status", exitErr.ExitCode(), "error", res.err)
	default:
		l.log.Warn("template command failed", "template", u.name, "error", res.err)
	}
	if u.cmdAgain {
		u.cmdAgain = false
		if ctx.Err() == nil {
			l.runCommand(u)
		}
	}
}
