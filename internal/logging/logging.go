// Package logging builds the server's structured logger (log/slog) from the
// configured level and format. The level lives in a *slog.LevelVar so a
// SIGHUP can change it without rebuilding the logger.
//
// Nothing secret is ever a log attribute: values that could be are typed
// (package secret) and render as "[redacted]".
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// LevelTrace is below debug, as Vault's "trace".
const LevelTrace = slog.LevelDebug - 4

// Options configures New.
type Options struct {
	// Level is trace, debug, info, warn (or warning) or error; "" is info.
	Level string
	// Format is "standard" or "text" (or "") for key=value lines, or "json".
	Format string
	Output io.Writer
}

// ParseLevel parses a level name.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace, nil
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "err":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want trace, debug, info, warn or error)", s)
}

// ValidFormat reports whether s is a known format name.
func ValidFormat(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "standard", "text", "json":
		return true
	}
	return false
}

// New returns a logger and the variable that holds its level.
func New(o Options) (*slog.Logger, *slog.LevelVar, error) {
	lvl, err := ParseLevel(o.Level)
	if err != nil {
		return nil, nil, err
	}
	if !ValidFormat(o.Format) {
		return nil, nil, fmt.Errorf("unknown log format %q (want standard, text or json)", o.Format)
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	levelVar := new(slog.LevelVar)
	levelVar.Set(lvl)
	hopts := &slog.HandlerOptions{Level: levelVar, ReplaceAttr: renameTrace}
	var h slog.Handler
	if strings.EqualFold(strings.TrimSpace(o.Format), "json") {
		h = slog.NewJSONHandler(o.Output, hopts)
	} else {
		h = slog.NewTextHandler(o.Output, hopts)
	}
	return slog.New(h), levelVar, nil
}

// renameTrace prints LevelTrace as "TRACE" instead of "DEBUG-4".
func renameTrace(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && l <= LevelTrace {
			a.Value = slog.StringValue("TRACE")
		}
	}
	return a
}
