//go:build !windows && !plan9

package syslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/syslog"
	"strings"
	"sync"

	"github.com/vigil-secrets/vigil/internal/audit"
)

var _ audit.Sink = (*Sink)(nil)

// facilities are the facility names Vault accepts.
var facilities = map[string]syslog.Priority{
	"KERN": syslog.LOG_KERN, "USER": syslog.LOG_USER, "MAIL": syslog.LOG_MAIL,
	"DAEMON": syslog.LOG_DAEMON, "AUTH": syslog.LOG_AUTH, "SYSLOG": syslog.LOG_SYSLOG,
	"LPR": syslog.LOG_LPR, "NEWS": syslog.LOG_NEWS, "UUCP": syslog.LOG_UUCP,
	"CRON": syslog.LOG_CRON, "AUTHPRIV": syslog.LOG_AUTHPRIV, "FTP": syslog.LOG_FTP,
	"LOCAL0": syslog.LOG_LOCAL0, "LOCAL1": syslog.LOG_LOCAL1, "LOCAL2": syslog.LOG_LOCAL2,
	"LOCAL3": syslog.LOG_LOCAL3, "LOCAL4": syslog.LOG_LOCAL4, "LOCAL5": syslog.LOG_LOCAL5,
	"LOCAL6": syslog.LOG_LOCAL6, "LOCAL7": syslog.LOG_LOCAL7,
}

// errClosed is returned by a Sink used after Close.
var errClosed = errors.New("audit syslog: sink is closed")

// Sink writes to syslog. It is safe for concurrent use, though the device
// calls it from one goroutine at a time.
type Sink struct {
	network, address, tag string
	priority              syslog.Priority

	mu     sync.Mutex
	w      *syslog.Writer // nil after a failed write or dial
	closed bool
}

// New is the [audit.Factory] of the syslog sink. Its options are facility
// (default "AUTH"), tag (default "vigil"), and network ("udp", "tcp",
// "unixgram" or "unix"; empty, the default, for the local daemon) with
// address (required with network). It connects at once and fails if it
// cannot.
func New(ctx context.Context, conf audit.SinkConfig) (audit.Sink, error) {
	opts := conf.Options
	facility := opts.String("facility", "AUTH")
	tag := opts.String("tag", "vigil")
	network := opts.String("network", "")
	address := opts.String("address", "")
	f, ok := facilities[strings.ToUpper(facility)]
	if !ok {
		return nil, fmt.Errorf("%w: facility must be a syslog facility such as AUTH or LOCAL0, got %q", audit.ErrBadOption, facility)
	}
	switch network {
	case "":
		if address != "" {
			return nil, fmt.Errorf("%w: address needs network", audit.ErrBadOption)
		}
	case "udp", "tcp", "unixgram", "unix":
		if address == "" {
			return nil, fmt.Errorf("%w: address is required with network %q", audit.ErrBadOption, network)
		}
	default:
		return nil, fmt.Errorf("%w: network must be udp, tcp, unixgram or unix, got %q", audit.ErrBadOption, network)
	}
	s := &Sink{network: network, address: address, tag: tag, priority: f | syslog.LOG_INFO}
	if err := s.dial(); err != nil {
		return nil, err
	}
	return s, nil
}

// dial connects; s.mu is held (or s is not shared yet).
func (s *Sink) dial() error {
	w, err := syslog.Dial(s.network, s.address, s.priority, s.tag)
	if err != nil {
		return fmt.Errorf("audit syslog: %w", err)
	}
	s.w = w
	return nil
}

// drop closes the connection, if any; s.mu is held.
func (s *Sink) drop() error {
	if s.w == nil {
		return nil
	}
	err := s.w.Close()
	s.w = nil
	return err
}

// Write sends each line of p as one message, without its newline,
// connecting first if the last write failed.
func (s *Sink) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.w == nil {
		if err := s.dial(); err != nil {
			return err
		}
	}
	for len(p) > 0 {
		line, rest, _ := bytes.Cut(p, []byte{'\n'})
		if _, err := s.w.Write(line); err != nil {
			s.drop()
			return fmt.Errorf("audit syslog: %w", err)
		}
		p = rest
	}
	return nil
}

// Reopen closes the connection and connects again.
func (s *Sink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.drop()
	return s.dial()
}

// Close closes the connection.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if err := s.drop(); err != nil {
		return fmt.Errorf("audit syslog: close: %w", err)
	}
	return nil
}
