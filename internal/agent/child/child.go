// Package child runs the command that `vigil run` (and the agent's
// process supervision) wraps: started with an environment of its own,
// sent the signals its parent receives, stopped gracefully (a signal, a
// grace period, then SIGKILL), and its exit status reported as a shell
// does (128+N for a child killed by signal N; 127 when the command is not
// found, 126 when it cannot be run).
//
// The package knows nothing of secrets: it is given the environment and
// never prints or logs it.
package child

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Exit codes for a command that could not be started, as shells use them.
const (
	ExitNotFound      = 127
	ExitCannotExecute = 126
)

// Config is what to run.
type Config struct {
	// Command is the program and its arguments; the program is looked up
	// in PATH when it has no slash.
	Command []string
	// Env is the whole environment of the child.
	Env []string
	// Stdin, Stdout and Stderr are the child's streams (an *os.File is
	// passed through as is); nil means /dev/null.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// StartError is a command that could not be started; Code is 127 (not
// found) or 126 (not executable, or another failure), as in shells.
type StartError struct {
	Command string
	Code    int
	Err     error
}

func (e *StartError) Error() string { return fmt.Sprintf("starting %s: %v", e.Command, e.Err) }
func (e *StartError) Unwrap() error { return e.Err }

// Child is one run of the command.
type Child struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	state *os.ProcessState
	err   error
}

// Start starts the command.
func Start(cfg Config) (*Child, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("child: no command")
	}
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	if cmd.Err != nil {
		code := ExitCannotExecute
		if errors.Is(cmd.Err, exec.ErrNotFound) || errors.Is(cmd.Err, fs.ErrNotExist) {
			code = ExitNotFound
		}
		return nil, &StartError{Command: cfg.Command[0], Code: code, Err: cmd.Err}
	}
	cmd.Env = cfg.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	// Output the child leaves to a grandchild must not hold Wait forever.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		code := ExitCannotExecute
		if errors.Is(err, fs.ErrNotExist) {
			code = ExitNotFound
		}
		return nil, &StartError{Command: cfg.Command[0], Code: code, Err: err}
	}
	c := &Child{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		c.state, c.err = cmd.ProcessState, err
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Done is closed once the child has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// Signal sends sig to the child; a child that has exited is not an error.
func (c *Child) Signal(sig os.Signal) error {
	err := c.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// Kill kills the child (SIGKILL).
func (c *Child) Kill() error { return c.Signal(os.Kill) }

// ExitCode returns the child's exit status once it is done: its code, or
// 128+N when signal N killed it. It is -1 while the child runs.
func (c *Child) ExitCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return exitCode(c.state)
}

// exitCode maps a process state to a shell's $?.
func exitCode(st *os.ProcessState) int {
	if st == nil {
		return -1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// Stop stops the child gracefully: sig, then SIGKILL if it is still
// running after grace (or once ctx ends). It returns once the child has
// exited.
func (c *Child) Stop(ctx context.Context, sig os.Signal, grace time.Duration) {
	_ = c.Signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	_ = c.Kill()
	<-c.done
}

// Environ returns base with vars (NAME=value each) added, replacing any
// variable of base with the same name.
func Environ(base, vars []string) []string {
	names := make(map[string]bool, len(vars))
	for _, v := range vars {
		names[name(v)] = true
	}
	out := make([]string, 0, len(base)+len(vars))
	for _, b := range base {
		if !names[name(b)] {
			out = append(out, b)
		}
	}
	return append(out, vars...)
}

func name(kv string) string {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i]
		}
	}
	return kv
}
