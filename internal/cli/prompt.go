package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// maxLine bounds a line read from stdin (a token or an unseal key).
const maxLine = 64 << 10

// readSecretLine reads one line from stdin without echoing it when stdin is
// a terminal, after writing prompt to stderr (only on a terminal, so pipes
// stay quiet). The line ending and surrounding spaces are removed.
func (e *env) readSecretLine(ctx context.Context, prompt string) (secret.String, error) {
	if f, ok := e.stdin.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(e.stderr, prompt)
		if restore := noEcho(ctx, f); restore != nil {
			defer restore()
		}
		defer fmt.Fprintln(e.stderr)
	}
	line, err := readLine(e.stdin)
	if err != nil {
		return secret.String{}, err
	}
	return secret.NewString(string(bytes.TrimSpace(line))), nil
}

// readLine reads up to a newline one byte at a time, so nothing after the
// line is consumed.
func readLine(r io.Reader) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	var line []byte
	b := make([]byte, 1)
	for len(line) < maxLine {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				return line, nil
			}
			line = append(line, b[0])
		}
		if errors.Is(err, io.EOF) {
			return line, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
	}
	return nil, errors.New("read stdin: line too long")
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// noEcho turns terminal echo off with stty and returns the function that
// turns it back on, or nil when that is not possible (then the input is
// echoed; the standard library has no portable way to stop it).
func noEcho(ctx context.Context, f *os.File) func() {
	// Restoring echo must happen even after an interrupt cancelled ctx.
	ctx = context.WithoutCancel(ctx)
	stty := func(arg string) error {
		cmd := exec.CommandContext(ctx, "stty", arg)
		cmd.Stdin = f
		return cmd.Run()
	}
	if err := stty("-echo"); err != nil {
		return nil
	}
	return func() { _ = stty("echo") }
}
