package socket

import (
	"bufio"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/audit"
)

func newSink(t *testing.T, opts map[string]string) audit.Sink {
	t.Helper()
	s, err := New(t.Context(), audit.SinkConfig{Path: "socket/", Options: audit.NewOptions(opts)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// listen starts a stream listener whose accepted connections arrive on
// the returned channel; all are closed when the test ends.
func listen(t *testing.T, network, address string) (net.Listener, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 100)
	done := make(chan struct{})
	var accepted []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted = append(accepted, c)
			conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range accepted {
			c.Close()
		}
	})
	return ln, conns
}

func accept(t *testing.T, conns <-chan net.Conn) *bufio.Reader {
	t.Helper()
	select {
	case c := <-conns:
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		return bufio.NewReader(c)
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func readLines(t *testing.T, r *bufio.Reader, want ...string) {
	t.Helper()
	for _, w := range want {
		got, err := r.ReadString('\n')
		if err != nil || got != w {
			t.Fatalf("read %q, %v; want %q", got, err, w)
		}
	}
}

func TestStream(t *testing.T) {
	tests := []struct {
		network string
		address func(t *testing.T) string
	}{
		{"tcp", func(*testing.T) string { return "127.0.0.1:0" }},
		{"unix", func(t *testing.T) string { return filepath.Join(t.TempDir(), "audit.sock") }},
	}
	for _, tt := range tests {
		t.Run(tt.network, func(t *testing.T) {
			t.Parallel()
			ln, conns := listen(t, tt.network, tt.address(t))
			s := newSink(t, map[string]string{"address": ln.Addr().String(), "socket_type": tt.network})
			r := accept(t, conns)
			if err := s.Write([]byte("one\ntwo\n")); err != nil {
				t.Fatal(err)
			}
			if err := s.Write([]byte("three\n")); err != nil {
				t.Fatal(err)
			}
			readLines(t, r, "one\n", "two\n", "three\n")

			if err := s.Reopen(); err != nil {
				t.Fatalf("Reopen: %v", err)
			}
			r = accept(t, conns)
			if err := s.Write([]byte("four\n")); err != nil {
				t.Fatal(err)
			}
			readLines(t, r, "four\n")
		})
	}
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := newSink(t, map[string]string{"address": pc.LocalAddr().String(), "socket_type": "udp"})
	if err := s.Write([]byte("one\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]byte("three\n")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	for _, want := range []string{"one\n", "two\n", "three\n"} {
		n, _, err := pc.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("datagram %q, %v; want %q", buf[:n], err, want)
		}
	}
}

func TestReconnect(t *testing.T) {
	ln, conns := listen(t, "tcp", "127.0.0.1:0")
	s := newSink(t, map[string]string{"address": ln.Addr().String()})
	c := <-conns // the server drops the first connection at once
	c.Close()

	// The first writes may still succeed into the dead connection; once
	// one fails, the next dials again.
	failed := false
	var r *bufio.Reader
	for i := 0; r == nil; i++ {
		if i == 200 {
			t.Fatal("the sink never reconnected")
		}
		if err := s.Write([]byte("line\n")); err != nil {
			failed = true
		}
		select {
		case c := <-conns:
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			r = bufio.NewReader(c)
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !failed {
		t.Error("reconnected without a failed write")
	}
	readLines(t, r, "line\n")
	if err := s.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "after\n" {
			break
		}
	}
}

func TestNewErrors(t *testing.T) {
	// A port nobody listens on: listen, then close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name   string
		opts   map[string]string
		badOpt bool // the error wraps audit.ErrBadOption
	}{
		{"missing address", map[string]string{}, true},
		{"bad socket_type", map[string]string{"address": closed, "socket_type": "sctp"}, true},
		{"bad write_timeout", map[string]string{"address": closed, "write_timeout": "soon"}, true},
		{"closed port", map[string]string{"address": closed}, false},
		{"missing unix socket", map[string]string{"address": filepath.Join(t.TempDir(), "none.sock"), "socket_type": "unix"}, false},
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

func TestClose(t *testing.T) {
	ln, conns := listen(t, "tcp", "127.0.0.1:0")
	s := newSink(t, map[string]string{"address": ln.Addr().String()})
	r := accept(t, conns)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Error("the connection is still open after Close")
	}
	if err := s.Write([]byte("late\n")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := s.Reopen(); err == nil {
		t.Error("Reopen after Close succeeded")
	}
}
