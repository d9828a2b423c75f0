package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/auth"
	"github.com/vigil-secrets/vigil/internal/agent/child"
	"github.com/vigil-secrets/vigil/internal/agent/envexec"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/agent/watch"
	"github.com/vigil-secrets/vigil/internal/logging"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Defaults of `vigil run`.
const (
	runDefaultPoll       = 30 * time.Second
	runDefaultRetries    = 12 // Vault Agent's template retries
	runDefaultMaxBackoff = time.Minute
)

func runCommand() *command {
	return &command{
		name:     "run",
		synopsis: "Run a command with secrets in its environment",
		usage:    "[flags] [KEY=VALUE...] -- COMMAND [ARGS...]",
		help: `Reads secrets and runs COMMAND with them added to its environment (and to
nothing else: they are never printed or written to disk). -env NAME=PATH#KEY
sets NAME to one key of a secret; -path PATH sets every key of the secret,
upper-cased, with characters other than letters, digits and _ turned into _
(api-key → API_KEY); -env-file FILE holds NAME=PATH#KEY lines. A name set
twice is an error. PATH is written as for "vigil kv get" (secret/app on a
KV v2 mount), or as the API path (secret/data/app, database/creds/role,
database/static-creds/role).

The token is VIGIL_TOKEN or the one "vigil login" stored, or -method logs in
with the KEY=VALUE arguments, as "vigil login -method" does; VALUE @file is
read again at each login (projected tokens rotate):

  $ vigil run -env OPENAI_API_KEY=secret/ml/openai#api_key -- python train.py
  $ vigil run -method=approle role_id=@role-id secret_id=@secret-id -path secret/ml/db -- ./serve
  $ vigil run -method=jwt role=ci jwt=@/var/run/secrets/tokens/vigil -env-file vars.env -- make eval

vigil run forwards the signals it gets (INT, TERM, HUP, QUIT, USR1, USR2) to
COMMAND and exits with its status (128+N when signal N killed it). It renews
its token and the leases of dynamic credentials (database/creds/...) while
COMMAND runs, and revokes them when it exits: the leases (when the token's
policy allows sys/leases/revoke) and a token it logged in with, which takes
its leases with it; a token it was given is left alone. With -watch it
restarts COMMAND gracefully (-signal, then SIGKILL
after -grace) when a secret it uses changes: a new KV version with new
values, rotated static credentials, or dynamic credentials whose lease
could not be kept. It subscribes to the server's change events, which
tell it of a change at once when the token's policy allows read on
sys/events/subscribe/*, and it also reads the secrets again every -poll,
the fallback that catches whatever the events did not tell (and all of it
when the token may not subscribe).

When the server cannot be reached, COMMAND keeps running with the values
it has, and vigil run retries with backoff and resumes by itself;
-exit-on-retry-failure stops COMMAND and exits 1 after -retries failures
in a row instead.`,
		run: runRun,
	}
}

// runFlags are the flags of `vigil run`.
type runFlags struct {
	paths, envs, envFiles listFlag
	method, authPath      string
	watch                 bool
	grace, poll           time.Duration
	stopSignal            string
	exitOnRetryFailure    bool
	retries               int
	minBackoff            time.Duration
	maxBackoff            time.Duration
	logLevel              string
}

func runRun(ctx context.Context, c *call) int {
	var f runFlags
	c.fs.Var(&f.paths, "path", "Set every key of the secret at `PATH` as a variable (repeatable).")
	c.fs.Var(&f.envs, "env", "Set `NAME=PATH#KEY`: one key of a secret (repeatable).")
	c.fs.Var(&f.envFiles, "env-file", "Read NAME=PATH#KEY lines from `FILE` (repeatable).")
	c.fs.StringVar(&f.method, "method", "token", "Auth `method`: token (VIGIL_TOKEN or ~/.vigil-token), approle, jwt, kubernetes...; logins take KEY=VALUE arguments.")
	c.fs.StringVar(&f.authPath, "auth-path", "", "Mount `path` of the auth method (default: the method's name).")
	c.fs.BoolVar(&f.watch, "watch", false, "Restart the command when a secret it uses changes.")
	c.fs.DurationVar(&f.grace, "grace", envexec.DefaultGrace, "How long the command may take to stop before SIGKILL.")
	c.fs.StringVar(&f.stopSignal, "signal", "SIGTERM", "The `signal` that asks the command to stop before a restart.")
	c.fs.DurationVar(&f.poll, "poll", runDefaultPoll, "With -watch, how often to read the secrets again, besides the change events.")
	c.fs.BoolVar(&f.exitOnRetryFailure, "exit-on-retry-failure", false, "Stop the command and exit 1 once -retries attempts in a row have failed.")
	c.fs.IntVar(&f.retries, "retries", runDefaultRetries, "Failures in a row that end the run with -exit-on-retry-failure.")
	c.fs.DurationVar(&f.minBackoff, "min-backoff", lifetime.DefaultMinBackoff, "First wait after a failure; it doubles with each failure.")
	c.fs.DurationVar(&f.maxBackoff, "max-backoff", runDefaultMaxBackoff, "Longest wait between retries.")
	c.fs.StringVar(&f.logLevel, "log-level", "info", "vigil's messages on stderr: trace, debug, info, warn or error.")

	loginArgs, command, code, ok := c.parseRun()
	if !ok {
		return code
	}
	if len(command) == 0 {
		return c.usageError("no command to run: vigil run [flags] -- COMMAND [ARGS...]")
	}
	specs, err := runSpecs(f)
	if err != nil {
		return c.fail("reading the variables to set", usageErr("%v", err))
	}
	stopSig, ok := child.ParseSignal(f.stopSignal)
	if !ok {
		return c.usageError("unknown signal %q for -signal", f.stopSignal)
	}
	switch {
	case f.grace <= 0:
		return c.usageError("-grace must be positive")
	case f.watch && f.poll <= 0:
		return c.usageError("-poll must be positive")
	case f.exitOnRetryFailure && f.retries <= 0:
		return c.usageError("-retries must be positive with -exit-on-retry-failure")
	}
	log, _, err := logging.New(logging.Options{Level: f.logLevel, Output: c.stderr})
	if err != nil {
		return c.usageError("%v", err)
	}
	log = log.With("component", "vigil run")

	cfg, err := c.config()
	if err != nil {
		return c.fail("configuring the client", err)
	}
	cl, err := api.NewClient(cfg)
	if err != nil {
		return c.fail("configuring the client", err)
	}
	method, err := c.runMethod(f, loginArgs, cfg.Token)
	if err != nil {
		return c.fail("setting up the login", err)
	}
	retries := 0
	if f.exitOnRetryFailure {
		retries = f.retries
	}
	backoff := lifetime.Backoff{Min: f.minBackoff, Max: f.maxBackoff}
	mgr := auth.NewManager(auth.ManagerOptions{
		Method:  method,
		Client:  cl,
		Logger:  log,
		Retry:   lifetime.RetryOptions{Backoff: backoff, Retries: retries},
		OnToken: func(t auth.Token) { cl.SetToken(t.Value.Reveal()) },
	})
	set, err := secretenv.New(specs, secretenv.Options{Client: cl, Logger: log})
	if err != nil {
		return c.fail("reading the variables to set", usageErr("%v", err))
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, child.Forwarded()...)
	defer signal.Stop(sigs)

	code, err = envexec.Run(ctx, envexec.Config{
		Command:    command,
		BaseEnv:    c.baseEnv(),
		Stdin:      c.stdin,
		Stdout:     c.stdout,
		Stderr:     c.stderr,
		Auth:       mgr,
		Secrets:    set,
		Watch:      f.watch,
		Watchers:   runWatchers(f, cl, backoff, log),
		StopSignal: stopSig,
		Grace:      f.grace,
		Signals:    sigs,
		Backoff:    backoff,
		Retries:    retries,
		Logger:     log,
	})
	if err != nil {
		fmt.Fprintf(c.stderr, "Error running %s: %v\n", command[0], err)
		if h := hint(err, c.address()); h != "" {
			fmt.Fprintf(c.stderr, "\n%s\n", h)
		}
		if errors.Is(err, lifetime.ErrRetriesExhausted) && code == 0 {
			code = exitError
		}
	}
	return code
}

// runWatchers are -watch's watchers: the poll every -poll, the fallback,
// and the server's change events, subscribed to with cl, whose token
// follows the auth manager's.
func runWatchers(f runFlags, cl *api.Client, backoff lifetime.Backoff, log *slog.Logger) []secretenv.Watcher {
	return []secretenv.Watcher{
		secretenv.Poller{Interval: f.poll},
		watch.Events{Client: cl, Backoff: backoff, Logger: log.With("watcher", "events")},
	}
}

// parseRun parses `vigil run`'s arguments: flags and KEY=VALUE login
// arguments (in any order), then the command after "--". Without "--",
// the command starts at the first argument that is neither.
func (c *call) parseRun() (login, command []string, code int, ok bool) {
	before := c.raw
	dashes := slices.Index(c.raw, "--")
	if dashes >= 0 {
		before, command = c.raw[:dashes], c.raw[dashes+1:]
	}
	c.raw = before
	if code, done := c.parse(); done {
		return nil, nil, code, false
	}
	rest := c.args
	for len(rest) > 0 {
		a := rest[0]
		if strings.Contains(a, "=") && !strings.HasPrefix(a, "-") {
			login = append(login, a)
			rest = rest[1:]
			continue
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			err := c.fs.Parse(rest)
			if errors.Is(err, flag.ErrHelp) {
				c.printUsage(c.stdout)
				return nil, nil, exitOK, false
			}
			if err != nil {
				return nil, nil, c.usageError("%v", err), false
			}
			rest = c.fs.Args()
			continue
		}
		if dashes >= 0 {
			return nil, nil, c.usageError("unexpected argument %q before --: login arguments are KEY=VALUE", a), false
		}
		command = rest
		break
	}
	return login, command, 0, true
}

// runSpecs gathers the -path, -env and -env-file specs.
func runSpecs(f runFlags) ([]secretenv.Spec, error) {
	var specs []secretenv.Spec
	for _, p := range f.paths {
		s, err := secretenv.ParsePath(p, "-path")
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	for _, e := range f.envs {
		s, err := secretenv.ParseEnv(e, "-env")
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	for _, name := range f.envFiles {
		file, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("-env-file: %w", err)
		}
		fs, err := secretenv.ParseFile(file, name)
		file.Close()
		if err != nil {
			return nil, err
		}
		specs = append(specs, fs...)
	}
	if len(specs) == 0 {
		return nil, errors.New("nothing to set: give -env NAME=PATH#KEY, -path PATH or -env-file FILE")
	}
	return specs, nil
}

// runMethod builds the auth method from -method and the KEY=VALUE
// arguments: VALUE @file is read at each login, other values are used as
// given. The default method uses the client's token.
func (c *call) runMethod(f runFlags, args []string, token string) (auth.Method, error) {
	fields := map[string]*auth.Credential{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch {
		case k == "":
			return nil, usageErr("invalid key/value pair %q: the format is key=value", a)
		case v == "-":
			return nil, usageErr("%s=-: stdin is the command's; use %s=@FILE", k, k)
		case strings.HasPrefix(v, `\@`):
			fields[k] = auth.ValueCredential(secret.NewString(v[1:]))
		case strings.HasPrefix(v, "@"):
			fields[k] = auth.FileCredential(v[1:])
		default:
			fields[k] = auth.ValueCredential(secret.NewString(v))
		}
	}
	switch f.method {
	case "token":
		if tf, ok := fields["token"]; ok && len(fields) == 1 {
			return auth.NewToken(tf), nil
		}
		if len(fields) > 0 {
			return nil, usageErr("-method=token takes no KEY=VALUE arguments but token=@FILE")
		}
		if token == "" {
			return nil, usageErr("no token: set VIGIL_TOKEN, run \"vigil login\", or log in with -method (approle, jwt, kubernetes)")
		}
		return auth.NewToken(auth.ValueCredential(secret.NewString(token))), nil
	case "kubernetes":
		if _, ok := fields["jwt"]; !ok {
			fields["jwt"] = auth.FileCredential(auth.DefaultKubernetesTokenPath)
		}
	}
	m, err := auth.NewLogin(f.method, f.authPath, fields)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return m, nil
}

// baseEnv is the environment the command's variables are added to.
func (c *call) baseEnv() []string {
	if c.environ == nil {
		return os.Environ()
	}
	return c.environ()
}
