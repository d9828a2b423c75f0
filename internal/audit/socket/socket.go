// Package socket is the "socket" audit sink: it sends audit lines over a
// TCP, UDP or Unix stream connection. Over UDP each line is one datagram.
// It only moves bytes; formatting, hashing and retries belong to package
// audit.
//
// A failed write closes the connection, and the next write dials again. A
// stream can take part of a write before failing, and what the peer got
// cannot be taken back: a collector may see a torn line followed by the
// whole line written again.
package socket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/audit"
)

var _ audit.Sink = (*Sink)(nil)

// defaultTimeout bounds a dial and a write, as the device's own
// write_timeout does by default.
const defaultTimeout = 2 * time.Second

// errClosed is returned by a Sink used after Close.
var errClosed = errors.New("audit socket: sink is closed")

// Sink writes to a socket. It is safe for concurrent use, though the
// device calls it from one goroutine at a time.
type Sink struct {
	network, address string
	timeout          time.Duration

	mu     sync.Mutex
	conn   net.Conn // nil after a failed write or dial
	closed bool
}

// New is the [audit.Factory] of the socket sink. Its options are address
// (required), socket_type ("tcp", the default, "udp" or "unix") and
// write_timeout (default 2s), which bounds the dial and each write. It
// dials at once and fails if it cannot connect.
func New(ctx context.Context, conf audit.SinkConfig) (audit.Sink, error) {
	opts := conf.Options
	address := opts.String("address", "")
	network := opts.String("socket_type", "tcp")
	timeout, err := opts.Duration("write_timeout", defaultTimeout)
	if err != nil {
		return nil, err
	}
	if address == "" {
		return nil, fmt.Errorf("%w: address is required", audit.ErrBadOption)
	}
	switch network {
	case "tcp", "udp", "unix":
	default:
		return nil, fmt.Errorf("%w: socket_type must be tcp, udp or unix, got %q", audit.ErrBadOption, network)
	}
	s := &Sink{network: network, address: address, timeout: timeout}
	if err := s.dial(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// dial connects; s.mu is held (or s is not shared yet).
func (s *Sink) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: s.timeout}
	conn, err := d.DialContext(ctx, s.network, s.address)
	if err != nil {
		return fmt.Errorf("audit socket: %w", err)
	}
	s.conn = conn
	return nil
}

// drop closes the connection, if any; s.mu is held.
func (s *Sink) drop() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// Write sends p, dialing first if the last write failed. Over UDP it
// sends one datagram per line.
func (s *Sink) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.conn == nil {
		if err := s.dial(context.Background()); err != nil {
			return err
		}
	}
	if err := s.write(p); err != nil {
		s.drop()
		return fmt.Errorf("audit socket: %w", err)
	}
	return nil
}

func (s *Sink) write(p []byte) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		return err
	}
	if s.network != "udp" {
		_, err := s.conn.Write(p)
		return err
	}
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line = p[:i+1]
		}
		if _, err := s.conn.Write(line); err != nil {
			return err
		}
		p = p[len(line):]
	}
	return nil
}

// WritesBounded reports that a write is bounded (write_timeout for a
// redial, and again for the write): requests may write to a socket
// themselves.
func (s *Sink) WritesBounded() bool { return true }

// Reopen closes the connection and dials again.
func (s *Sink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.drop()
	return s.dial(context.Background())
}

// Close closes the connection.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if err := s.drop(); err != nil {
		return fmt.Errorf("audit socket: close: %w", err)
	}
	return nil
}
