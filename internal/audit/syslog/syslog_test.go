//go:build !windows && !plan9

package syslog

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/audit"
)

// listen binds a unixgram socket at path, as a syslog daemon does.
func listen(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

func newSink(t *testing.T, opts map[string]string) audit.Sink {
	t.Helper()
	s, err := New(t.Context(), audit.SinkConfig{Path: "syslog/", Options: audit.NewOptions(opts)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// receive reads one message and checks its priority, tag and text.
func receive(t *testing.T, c *net.UnixConn, prefix, tag, text string) {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	msg := string(buf[:n])
	if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, " "+tag+"[") || !strings.HasSuffix(msg, ": "+text+"\n") {
		t.Errorf("message %q, want priority %s, tag %s and text %q", msg, prefix, tag, text)
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		opts   map[string]string
		prefix string // <facility*8 + INFO>
		tag    string
	}{
		{"defaults", nil, "<38>", "vigil"},
		{"local3 lowercase", map[string]string{"facility": "local3", "tag": "audit"}, "<158>", "audit"},
		{"authpriv", map[string]string{"facility": "AUTHPRIV"}, "<86>", "vigil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "log.sock")
			c := listen(t, path)
			opts := map[string]string{"network": "unixgram", "address": path}
			for k, v := range tt.opts {
				opts[k] = v
			}
			s := newSink(t, opts)
			if err := s.Write([]byte(`{"n":1}` + "\n" + `{"n":2}` + "\n")); err != nil {
				t.Fatal(err)
			}
			receive(t, c, tt.prefix, tt.tag, `{"n":1}`)
			receive(t, c, tt.prefix, tt.tag, `{"n":2}`)
		})
	}
}

func TestReconnect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	c := listen(t, path)
	s := newSink(t, map[string]string{"network": "unixgram", "address": path})
	if err := s.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	receive(t, c, "<38>", "vigil", "one")

	c.Close() // the daemon goes away
	if err := s.Write([]byte("lost\n")); err == nil {
		t.Fatal("Write succeeded with no daemon")
	}
	c = listen(t, path) // and comes back
	if err := s.Write([]byte("two\n")); err != nil {
		t.Fatalf("Write after the daemon came back: %v", err)
	}
	receive(t, c, "<38>", "vigil", "two")

	if err := s.Reopen(); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	if err := s.Write([]byte("three\n")); err != nil {
		t.Fatal(err)
	}
	receive(t, c, "<38>", "vigil", "three")

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Write([]byte("late\n")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestNewErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		name   string
		opts   map[string]string
		badOpt bool // the error wraps audit.ErrBadOption
	}{
		{"bad facility", map[string]string{"facility": "LOCAL8", "network": "unixgram", "address": missing}, true},
		{"network without address", map[string]string{"network": "unixgram"}, true},
		{"address without network", map[string]string{"address": missing}, true},
		{"bad network", map[string]string{"network": "sctp", "address": missing}, true},
		{"no daemon", map[string]string{"network": "unixgram", "address": missing}, false},
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
}
