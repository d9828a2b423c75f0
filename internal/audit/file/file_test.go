package file

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-secrets/vigil/internal/audit"
)

func newSink(t *testing.T, opts map[string]string) audit.Sink {
	t.Helper()
	s, err := New(t.Context(), audit.SinkConfig{Path: "file/", Options: audit.NewOptions(opts)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func write(t *testing.T, s audit.Sink, line string) {
	t.Helper()
	if err := s.Write([]byte(line)); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteMode(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]string
		want fs.FileMode
	}{
		{"default", nil, 0o600},
		{"custom", map[string]string{"mode": "0640"}, 0o640},
		{"fsync", map[string]string{"fsync": "true"}, 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "sub", "dir", "audit.log")
			opts := map[string]string{"file_path": path}
			for k, v := range tt.opts {
				opts[k] = v
			}
			s := newSink(t, opts)
			write(t, s, "one\n")
			write(t, s, "two\nthree\n")
			if got := readFile(t, path); got != "one\ntwo\nthree\n" {
				t.Errorf("file holds %q", got)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.want {
				t.Errorf("mode %o, want %o", fi.Mode().Perm(), tt.want)
			}
			di, err := os.Stat(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if di.Mode().Perm() != 0o700 {
				t.Errorf("directory mode %o, want 700", di.Mode().Perm())
			}
		})
	}
}

func TestExistingFileMode(t *testing.T) {
	tests := []struct {
		name string
		mode string
		want fs.FileMode
	}{
		{"chmod to default", "", 0o600},
		{"chmod to custom", "0640", 0o640},
		{"0000 leaves it", "0000", 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil { // past the umask
				t.Fatal(err)
			}
			opts := map[string]string{"file_path": path}
			if tt.mode != "" {
				opts["mode"] = tt.mode
			}
			s := newSink(t, opts)
			write(t, s, "new\n")
			if got := readFile(t, path); got != "old\nnew\n" {
				t.Errorf("file holds %q", got)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.want {
				t.Errorf("mode %o, want %o", fi.Mode().Perm(), tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		opts   map[string]string
		badOpt bool // the error wraps audit.ErrBadOption
	}{
		{"missing file_path", map[string]string{}, true},
		{"bad mode", map[string]string{"file_path": filepath.Join(dir, "a.log"), "mode": "rw-------"}, true},
		{"mode not octal", map[string]string{"file_path": filepath.Join(dir, "a.log"), "mode": "0800"}, true},
		{"mode too large", map[string]string{"file_path": filepath.Join(dir, "a.log"), "mode": "10000"}, true},
		{"bad fsync", map[string]string{"file_path": filepath.Join(dir, "a.log"), "fsync": "often"}, true},
		{"under a regular file", map[string]string{"file_path": filepath.Join(regular, "audit.log")}, false},
		{"a directory", map[string]string{"file_path": dir}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(t.Context(), audit.SinkConfig{Options: audit.NewOptions(tt.opts)})
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if got := errors.Is(err, audit.ErrBadOption); got != tt.badOpt {
				t.Errorf("errors.Is(%v, ErrBadOption) = %v, want %v", err, got, tt.badOpt)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "a.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a sink with bad options created its file: %v", err)
	}
}

func TestDiscard(t *testing.T) {
	s := newSink(t, map[string]string{"file_path": "discard"})
	write(t, s, "dropped\n")
	if err := s.Reopen(); err != nil {
		t.Errorf("Reopen: %v", err)
	}
	if tl, ok := s.(audit.Tailer); ok {
		t.Errorf("discard sink is a Tailer: %T", tl)
	}
	if _, err := os.Stat("discard"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("discard created a file: %v", err)
	}
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	rotated := filepath.Join(dir, "audit.log.1")
	s := newSink(t, map[string]string{"file_path": path})
	write(t, s, "before\n")
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	write(t, s, "between\n") // still goes to the renamed file
	if err := s.Reopen(); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	write(t, s, "after\n")
	if got := readFile(t, rotated); got != "before\nbetween\n" {
		t.Errorf("rotated file holds %q", got)
	}
	if got := readFile(t, path); got != "after\n" {
		t.Errorf("new file holds %q", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %o, want 600", fi.Mode().Perm())
	}
}

func TestWriteAfterFailedReopen(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	path := filepath.Join(sub, "audit.log")
	s := newSink(t, map[string]string{"file_path": path})
	write(t, s, "one\n")
	// Put a regular file where the directory was: Reopen cannot open.
	if err := os.Rename(sub, filepath.Join(dir, "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sub, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(); err == nil {
		t.Fatal("Reopen succeeded with a file in place of the directory")
	}
	if err := s.Write([]byte("lost\n")); err == nil {
		t.Fatal("Write succeeded with no file")
	}
	// The directory is back: the next Write opens the file again.
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	write(t, s, "two\n")
	if got := readFile(t, path); got != "two\n" {
		t.Errorf("file holds %q", got)
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	s := newSink(t, map[string]string{"file_path": path})
	tl := s.(audit.Tailer)
	if got, err := tl.Tail(100); err != nil || len(got) != 0 {
		t.Errorf("Tail of an empty file = %q, %v", got, err)
	}
	write(t, s, "first\nsecond\n")
	tests := []struct {
		max  int
		want string
	}{
		{100, "first\nsecond\n"},
		{13, "first\nsecond\n"},
		{7, "second\n"},
		{3, "nd\n"},
		{0, ""},
	}
	for _, tt := range tests {
		got, err := tl.Tail(tt.max)
		if err != nil || string(got) != tt.want {
			t.Errorf("Tail(%d) = %q, %v; want %q", tt.max, got, err, tt.want)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got, err := tl.Tail(100); err != nil || got != nil {
		t.Errorf("Tail of a missing file = %q, %v; want nil, nil", got, err)
	}
}

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	s := newSink(t, map[string]string{"file_path": path})
	write(t, s, "one\n")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Write([]byte("late\n")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if got := readFile(t, path); got != "one\n" {
		t.Errorf("file holds %q", got)
	}
}

func TestUnwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	s := newSink(t, map[string]string{"file_path": path}).(*Sink)
	write(t, s, "whole\n")
	write(t, s, "torn li")
	s.unwrite(int64(len("torn li")))
	write(t, s, "next\n")
	if got := readFile(t, path); got != "whole\nnext\n" {
		t.Errorf("file holds %q", got)
	}
}

func TestDevice(t *testing.T) {
	const dev = "/dev/full" // accepts opens, fails every write
	if _, err := os.Stat(dev); err != nil {
		t.Skip(err)
	}
	s := newSink(t, map[string]string{"file_path": dev})
	if err := s.Write([]byte("line\n")); err == nil {
		t.Error("Write to /dev/full succeeded")
	}
	if got, err := s.(audit.Tailer).Tail(100); err != nil || got != nil {
		t.Errorf("Tail of a device = %q, %v; want nil, nil", got, err)
	}
	if err := s.Reopen(); err != nil {
		t.Errorf("Reopen: %v", err)
	}
}
