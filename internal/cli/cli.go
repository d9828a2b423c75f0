// Package cli implements every `vigil` command except `vigil server`: kv,
// read/write/list/delete/patch, login, status, secrets, auth, policy, token,
// lease, audit, operator.
// The commands have the shapes of the Vault CLI (single-dash flags before the
// positional arguments, -format=table|json|yaml, -field=NAME) and make the
// same HTTP calls, so scripts written for `vault` work with `vigil`.
//
// The package reaches the server only over HTTP through the public api
// client; it never imports server code. It holds no package-level mutable
// state: [Run] builds the command tree on each call and passes an env value
// (streams, environment, home directory) down to every command.
//
// Output rules: results go to stdout; errors, hints, prompts and server
// warnings go to stderr. Secret values (data, tokens, unseal keys) are only
// written to stdout, and only when the user asked for them.
//
// Exit codes: 0 success, 1 error, 2 usage error or "not found" (as in
// Vault: `kv get` of a missing key exits 2, and `status` exits 2 when the
// server is sealed).
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// env is what every command gets from its caller: the streams, the
// environment and the home directory.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// environ is the whole environment, for the commands `vigil run`
	// starts.
	environ func() []string
	home    string
	// pollInterval is the wait between polls of long operations
	// (secrets move).
	pollInterval time.Duration
}

// command is a node of the command tree: a group with subcommands, or a
// leaf with a run function.
type command struct {
	name     string
	synopsis string
	// usage is the argument part of the usage line ("[flags] KEY"), help
	// a paragraph describing the command; both are for leaves.
	usage string
	help  string
	run   func(ctx context.Context, c *call) int
	subs  []*command
}

// Run runs the command named by args (without the program name) and
// returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = os.Getenv
	}
	e := &env{
		stdin:        stdin,
		stdout:       stdout,
		stderr:       stderr,
		getenv:       getenv,
		environ:      os.Environ,
		home:         getenv("HOME"),
		pollInterval: time.Second,
	}
	return e.run(ctx, args)
}

func (e *env) run(ctx context.Context, args []string) int {
	root := &command{name: "vigil", subs: commands()}
	if len(args) == 1 && (args[0] == "-v" || args[0] == "-version" || args[0] == "--version") {
		args = []string{"version"}
	}
	if len(args) > 0 && args[0] == "help" {
		if len(args) == 1 {
			printGroupHelp(e.stdout, root, "vigil")
			return exitOK
		}
		args = append(append([]string(nil), args[1:]...), "-h")
	}
	return e.dispatch(ctx, root, "vigil", args)
}

// commands builds the command tree.
func commands() []*command {
	return []*command{
		readCommand(),
		writeCommand(),
		unwrapCommand(),
		deleteCommand(),
		listCommand(),
		patchCommand(),
		loginCommand(),
		statusCommand(),
		{name: "kv", synopsis: "Interact with the key/value secrets engine", subs: kvCommands()},
		{name: "secrets", synopsis: "Enable, list, tune, move and disable secrets engines", subs: secretsCommands()},
		{name: "auth", synopsis: "Enable, list, tune and disable auth methods", subs: authCommands()},
		{name: "audit", synopsis: "Enable, list and disable audit devices; verify and search their logs", subs: auditCommands()},
		{name: "policy", synopsis: "Write, read, list, delete and format ACL policies", subs: policyCommands()},
		{name: "token", synopsis: "Create, look up, renew and revoke tokens; check their capabilities", subs: tokenCommands()},
		{name: "lease", synopsis: "Look up, renew and revoke leases", subs: leaseCommands()},
		{name: "events", synopsis: "Subscribe to change events", subs: eventsCommands()},
		{name: "operator", synopsis: "Initialize, unseal, seal and rotate the server; generate a root token; snapshots and migration", subs: operatorCommands()},
		runCommand(),
		versionCommand(),
	}
}

func (e *env) dispatch(ctx context.Context, c *command, path string, args []string) int {
	if c.run != nil {
		return c.run(ctx, newCall(e, c, path, args))
	}
	if len(args) == 0 {
		printGroupHelp(e.stderr, c, path)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printGroupHelp(e.stdout, c, path)
		return exitOK
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(e.stderr, "Error: %s needs a subcommand before its flags (got %s).\n\n", path, args[0])
		printGroupHelp(e.stderr, c, path)
		return exitUsage
	}
	for _, s := range c.subs {
		if s.name == args[0] {
			return e.dispatch(ctx, s, path+" "+s.name, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "Unknown command: %s %s\n", path, args[0])
	if s := suggest(args[0], c.subs); s != "" {
		fmt.Fprintf(e.stderr, "Did you mean %q?\n", path+" "+s)
	}
	fmt.Fprintf(e.stderr, "Run %q for the list of commands.\n", path+" -h")
	return exitUsage
}

func printGroupHelp(w io.Writer, c *command, path string) {
	fmt.Fprintf(w, "Usage: %s <command> [flags] [args]\n\n", path)
	if path == "vigil" {
		fmt.Fprintln(w, "Vigil is a secrets manager that speaks the Vault HTTP API.")
		fmt.Fprintln(w, "`vigil server` starts a server; every other command talks to one at")
		fmt.Fprintln(w, "VIGIL_ADDR (default http://127.0.0.1:8200) with the token in VIGIL_TOKEN")
		fmt.Fprintln(w, "or ~/.vigil-token (written by `vigil login`).")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Commands:")
	width := 0
	for _, s := range c.subs {
		width = max(width, len(s.name))
	}
	subs := append([]*command(nil), c.subs...)
	if path == "vigil" {
		subs = append(subs, &command{name: "server", synopsis: "Start a Vigil server"},
			&command{name: "agent", synopsis: "Run beside a workload: auto-auth, templates, API proxy (Vault Agent's config)"})
		width = max(width, len("server"))
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
	for _, s := range subs {
		fmt.Fprintf(w, "    %-*s    %s\n", width, s.name, s.synopsis)
	}
	fmt.Fprintf(w, "\nRun \"%s <command> -h\" for a command's flags.\n", path)
}

// suggest returns the subcommand name closest to name, or "" when none is
// close enough.
func suggest(name string, subs []*command) string {
	best, bestD := "", 3
	for _, s := range subs {
		if strings.HasPrefix(s.name, name) && len(name) >= 2 {
			return s.name
		}
		if d := editDistance(name, s.name); d < bestD {
			best, bestD = s.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
