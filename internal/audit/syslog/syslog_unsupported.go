//go:build windows || plan9

package syslog

import (
	"context"
	"errors"

	"github.com/vigil-secrets/vigil/internal/audit"
)

// New fails: there is no syslog here.
func New(ctx context.Context, conf audit.SinkConfig) (audit.Sink, error) {
	return nil, errors.New("audit syslog: syslog is not supported on this system")
}
