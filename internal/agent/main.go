package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vigil-secrets/vigil/internal/agent/child"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/logging"
)

// Exit codes of `vigil agent` besides the exec child's.
const (
	exitError = 1
	exitUsage = 2
)

const usage = `Usage: vigil agent -config FILE [flags]

Runs beside a workload: logs in with auto_auth, keeps the token renewed and
writes it to its sinks, renders templates to files (or into the environment
of an exec child it supervises) and renders them again when a secret
changes, and serves the Vault API on its listeners with the token added.
FILE is a Vault Agent configuration (HCL or JSON), read as is; a vigil { }
block may stand for vault { }. VIGIL_ADDR (or VAULT_ADDR) and the other
client variables override the vault block.

Signals: INT and TERM stop the agent (with an exec child, they are passed to
it and the agent exits with its status); other signals go to the child.

Flags:
`

// Signals are the signals `vigil agent` wants: the ones it passes to an
// exec child, INT and TERM among them.
func Signals() []os.Signal { return child.Forwarded() }

// Main is `vigil agent ARGS`: it parses the flags, loads the
// configuration, and runs the agent until it ends. It returns the exit
// code. signals are the signals the process receives ([Signals]).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, signals <-chan os.Signal) int {
	fs := flag.NewFlagSet("vigil agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		configs                      []string
		logLevel, logFormat, logFile string
		exitAfterAuth                bool
	)
	fs.Func("config", "The configuration `FILE` (Vault Agent's format, HCL or JSON).", func(s string) error {
		configs = append(configs, s)
		return nil
	})
	fs.StringVar(&logLevel, "log-level", "", "trace, debug, info, warn or error (overrides log_level; default info).")
	fs.StringVar(&logFormat, "log-format", "", "standard or json (overrides log_format).")
	fs.StringVar(&logFile, "log-file", "", "Also append the log to this `file` (overrides log_file).")
	fs.BoolVar(&exitAfterAuth, "exit-after-auth", false, "Exit after the first login and the first rendering of the templates (init containers).")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return 0
		}
		return usageError(stderr, "%v", err)
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, "unexpected arguments %q: vigil agent takes only flags", fs.Args())
	case len(configs) == 0:
		return usageError(stderr, "no configuration: vigil agent -config FILE")
	case len(configs) > 1:
		return usageError(stderr, "one -config file, please: vigil agent does not merge several")
	}
	cfg, err := config.LoadAgent(configs[0])
	if err != nil {
		fmt.Fprintf(stderr, "Error loading the configuration: %v\n", err)
		return exitError
	}
	if exitAfterAuth {
		cfg.ExitAfterAuth = true
	}
	for _, o := range []struct{ flag, cfg *string }{{&logLevel, &cfg.LogLevel}, {&logFormat, &cfg.LogFormat}, {&logFile, &cfg.LogFile}} {
		if *o.flag != "" {
			*o.cfg = *o.flag
		}
	}
	out := stderr
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "Error opening the log file: %v\n", err)
			return exitError
		}
		defer f.Close()
		out = io.MultiWriter(stderr, f)
	}
	base, _, err := logging.New(logging.Options{Level: cfg.LogLevel, Format: cfg.LogFormat, Output: out})
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	log := base.With("component", "agent")
	log.Info("vigil agent starting", "config", configs[0])

	code, err := Run(ctx, Options{
		Config:  cfg,
		Getenv:  getenv,
		BaseEnv: os.Environ(),
		Stdin:   stdin,
		Stdout:  stdout,
		Stderr:  stderr,
		Signals: signals,
		Logger:  base,
	})
	if err != nil {
		log.Error("vigil agent stopped", "error", err)
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return max(code, exitError)
	}
	log.Info("vigil agent stopped", "code", code)
	return code
}

func usageError(w io.Writer, format string, a ...any) int {
	fmt.Fprintf(w, "Error: %s\nRun \"vigil agent -h\" for usage.\n", fmt.Sprintf(format, a...))
	return exitUsage
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usage)
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  -%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "\n      %s\n", strings.ReplaceAll(text, "\n", "\n      "))
	})
}
