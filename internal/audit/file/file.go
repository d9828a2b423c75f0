// Package file is the "file" audit sink: it appends audit lines to a file,
// to standard output ("stdout") or nowhere ("discard"), and reopens the
// file after log rotation. It only moves bytes; formatting, hashing and
// retries belong to package audit.
//
// A write that fails after writing part of its lines truncates the file
// back to where it was, so that the device's retry does not leave a torn
// line in the middle of the log.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/vigil-secrets/vigil/internal/audit"
)

var (
	_ audit.Sink   = (*Sink)(nil)
	_ audit.Tailer = (*Sink)(nil)
)

// errClosed is returned by a Sink used after Close.
var errClosed = errors.New("audit file: sink is closed")

// defaultMode is the mode of a new audit file, as in Vault.
const defaultMode fs.FileMode = 0o600

// Sink appends to a file. It is safe for concurrent use, though the
// device calls it from one goroutine at a time.
type Sink struct {
	path  string
	mode  fs.FileMode // 0: leave the mode of an existing file alone
	fsync bool
	log   *slog.Logger

	mu     sync.Mutex
	f      *os.File // nil after a failed open
	closed bool
}

// New is the [audit.Factory] of the file sink. Its options are file_path
// (required; "stdout" and "discard" are special), mode (octal, default
// "0600"; "0000" leaves the file's mode as it is) and fsync (sync after
// every write). It opens the file, creating it and its directory if need
// be, and fails if it cannot.
func New(ctx context.Context, conf audit.SinkConfig) (audit.Sink, error) {
	opts := conf.Options
	path := opts.String("file_path", "")
	modeStr := opts.String("mode", "0600")
	fsync, err := opts.Bool("fsync", false)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("%w: file_path is required", audit.ErrBadOption)
	}
	m, err := strconv.ParseUint(modeStr, 8, 32)
	if err != nil || m > 0o777 {
		return nil, fmt.Errorf("%w: mode must be an octal file mode such as 0600, got %q", audit.ErrBadOption, modeStr)
	}
	switch path {
	case "stdout":
		return stdout{}, nil
	case "discard":
		return discard{}, nil
	}
	log := conf.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{path: path, mode: fs.FileMode(m), fsync: fsync, log: log}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// open opens the file at s.path for appending; s.mu is held (or s is not
// shared yet).
func (s *Sink) open() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("audit file: create directory: %w", err)
	}
	perm := s.mode
	if perm == 0 {
		perm = defaultMode // only used if the file does not exist yet
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
	if err != nil {
		return fmt.Errorf("audit file: open: %w", err)
	}
	// The file may have existed with another mode (or the umask narrowed
	// it). Devices such as /dev/null are left alone.
	if s.mode != 0 {
		fi, err := f.Stat()
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() != s.mode {
			err = f.Chmod(s.mode)
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("audit file: set mode: %w", err)
		}
	}
	s.f = f
	return nil
}

// Write appends p in one write call (and syncs it with fsync). On failure
// it truncates away what it wrote of p, best effort.
func (s *Sink) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(p)
	if err == nil && s.fsync {
		err = s.f.Sync()
	}
	if err == nil {
		return nil
	}
	if n > 0 {
		s.unwrite(int64(n))
	}
	return fmt.Errorf("audit file: write: %w", err)
}

// unwrite truncates the last n bytes of the file, which the failed write
// appended. Another process appending at the same time would defeat it;
// nothing should.
func (s *Sink) unwrite(n int64) {
	fi, err := s.f.Stat()
	if err == nil && fi.Mode().IsRegular() && fi.Size() >= n {
		err = s.f.Truncate(fi.Size() - n)
	}
	if err != nil {
		s.log.Warn("audit file may hold a partial line", "error", err)
	}
}

// WritesBounded reports whether a write returns promptly: yes for a
// local file without fsync (it lands in the page cache), no with fsync,
// whose flush may wait on the disk. A file on a network filesystem that
// hangs holds the request writing to it; give such a device fsync or use
// a socket.
func (s *Sink) WritesBounded() bool { return !s.fsync }

// Reopen closes the file and opens its path again: after log rotation
// renamed it away, this creates the new file. If the open fails, the next
// Write tries again.
func (s *Sink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	var cerr error
	if s.f != nil {
		cerr = s.f.Close()
		s.f = nil
	}
	if err := s.open(); err != nil {
		return err
	}
	if cerr != nil {
		s.log.Warn("audit file close failed on reopen", "error", cerr)
	}
	return nil
}

// Tail returns the last min(size, max) bytes of the file at the path, or
// nil if there is no regular file there.
func (s *Sink) Tail(max int) ([]byte, error) {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return nil, nil // not a FIFO or device: opening one could block
	}
	if err != nil {
		return nil, fmt.Errorf("audit file: tail: %w", err)
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("audit file: tail: %w", err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("audit file: tail: %w", err)
	}
	n := min(fi.Size(), int64(max))
	buf := make([]byte, n)
	k, err := f.ReadAt(buf, fi.Size()-n)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("audit file: tail: %w", err)
	}
	return buf[:k], nil
}

// Close closes the file.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("audit file: close: %w", err)
	}
	return nil
}

// stdout writes to the process's standard output, which it never closes.
type stdout struct{}

func (stdout) Write(p []byte) error {
	if _, err := os.Stdout.Write(p); err != nil {
		return fmt.Errorf("audit file: write stdout: %w", err)
	}
	return nil
}

func (stdout) Reopen() error { return nil }
func (stdout) Close() error  { return nil }

// discard drops everything.
type discard struct{}

func (discard) Write([]byte) error  { return nil }
func (discard) WritesBounded() bool { return true }
func (discard) Reopen() error       { return nil }
func (discard) Close() error        { return nil }
