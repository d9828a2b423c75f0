// Package testlog is a test helper: a [Buffer] that collects what several
// goroutines (a logger, a child process's output) write, for a test to
// read while they run. Only _test.go files import it.
package testlog

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is an io.Writer safe for concurrent use whose content can be
// read at any time. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count returns how many times sub was written (non-overlapping).
func (b *Buffer) Count(sub string) int { return strings.Count(b.String(), sub) }
