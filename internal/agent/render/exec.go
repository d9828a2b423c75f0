package render

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/child"
	"github.com/vigil-secrets/vigil/internal/config"
)

// execConfig is the exec block, checked.
type execConfig struct {
	command            []string
	restart            bool // restart_on_secret_changes = "always"
	stopSignal         os.Signal
	stdoutFile, stderr string
}

func newExecConfig(e *config.Exec) (*execConfig, error) {
	if len(e.Command) == 0 || e.Command[0] == "" {
		return nil, fmt.Errorf("render: exec at line %d of the configuration needs a command", e.Line)
	}
	ec := &execConfig{command: argv(e.Command), stdoutFile: e.ChildProcessStdout, stderr: e.ChildProcessStderr}
	switch e.RestartOnSecretChanges {
	case "", "always":
		ec.restart = true
	case "never":
	default:
		return nil, fmt.Errorf("render: exec at line %d of the configuration: invalid restart_on_secret_changes %q: want always or never", e.Line, e.RestartOnSecretChanges)
	}
	name := e.RestartStopSignal
	if name == "" {
		name = "SIGTERM"
	}
	sig, ok := child.ParseSignal(name)
	if !ok {
		return nil, fmt.Errorf("render: exec at line %d of the configuration: unknown restart_stop_signal %q", e.Line, e.RestartStopSignal)
	}
	ec.stopSignal = sig
	return ec, nil
}

// childOutputMode is the mode of child_process_stdout and _stderr files
// the agent creates.
const childOutputMode = 0o640

// openOutput opens a child output file for appending.
func openOutput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, childOutputMode)
	if err != nil {
		return nil, fmt.Errorf("render: opening the child's output file: %w", err)
	}
	return f, nil
}

// supervisor is the exec child's state. It is driven by the loop: its
// methods are called from the loop's goroutine only.
type supervisor struct {
	cfg            *execConfig
	grace          time.Duration
	after          func(time.Duration) (<-chan struct{}, func() bool)
	stdin          io.Reader
	stdout, stderr io.Writer

	c *child.Child
	// sum is the hash of the environment the child was started with.
	sum [sha256.Size]byte
	// restarting: stopping to start again with new variables; stopping:
	// stopping for good (a terminating signal, ctx, a fatal error).
	restarting, stopping bool
	graceUp              <-chan struct{}
	stopGrace            func() bool
}

// running reports whether a child was started and has not been reaped.
func (s *supervisor) running() bool { return s.c != nil }

// done is the running child's exit channel; nil when none runs.
func (s *supervisor) done() <-chan struct{} {
	if s.c == nil {
		return nil
	}
	return s.c.Done()
}

// start starts a child with env (the whole environment) and its hash.
func (s *supervisor) start(env []string, sum [sha256.Size]byte) error {
	c, err := child.Start(child.Config{Command: s.cfg.command, Env: env, Stdin: s.stdin, Stdout: s.stdout, Stderr: s.stderr})
	if err != nil {
		return err
	}
	s.c, s.sum = c, sum
	s.restarting = false
	if s.stopGrace != nil {
		s.stopGrace()
	}
	s.graceUp, s.stopGrace = nil, nil
	return nil
}

// signalStop sends the stop signal and arms the grace period.
func (s *supervisor) signalStop() error {
	err := s.c.Signal(s.cfg.stopSignal)
	if s.graceUp == nil {
		s.graceUp, s.stopGrace = s.after(s.grace)
	}
	return err
}

// reaped forgets a child that has exited and returns its status.
func (s *supervisor) reaped() int {
	code := s.c.ExitCode()
	s.c = nil
	if s.stopGrace != nil {
		s.stopGrace()
	}
	s.graceUp, s.stopGrace = nil, nil
	return code
}

// envSum hashes an environment, in order.
func envSum(vars []string) [sha256.Size]byte {
	h := sha256.New()
	for _, v := range vars {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// startCode is Run's status for a child that could not be started.
func startCode(err error) int {
	var se *child.StartError
	if errors.As(err, &se) {
		return se.Code
	}
	return 1
}

// signalNumber is N in the 128+N status of a signal.
func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return 0
}

// sortedVars returns NAME=value for every variable, sorted: the one place
// values are revealed, for the child's environment.
func sortedVars(units []*unit) []string {
	out := make([]string, 0, len(units))
	for _, u := range units {
		if u.env {
			out = append(out, u.name+"="+u.value.Reveal())
		}
	}
	slices.Sort(out)
	return out
}
