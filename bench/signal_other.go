//go:build !unix

package main

import (
	"errors"
	"os"
)

// freeze would stop p with SIGSTOP, which this system does not have.
func freeze(*os.Process) error {
	return errors.New("freezing a process needs SIGSTOP, which this system does not have")
}

// thaw has nothing to resume: freeze never stops a process here.
func thaw(*os.Process) error { return nil }
