package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/auditlog"
	"github.com/vigil-secrets/vigil/internal/cli/output"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// The audit commands follow `vault audit enable|disable|list`: the same
// flags, requests (sys/audit/<path>), success lines and list columns.
// export-key, verify and search are Vigil's own: they read the hash-chained
// log Vigil's devices write (see internal/auditlog), with the chain key
// from sys/audit-chain and hashes from sys/audit-hash.
//
// The chain key and the -value of search are secrets: they are written
// only to stdout or to a 0600 file, and never appear in a message.

func auditCommands() []*command {
	return []*command{
		auditEnableCommand(),
		auditDisableCommand(),
		auditListCommand(),
		auditExportKeyCommand(),
		auditVerifyCommand(),
		auditSearchCommand(),
	}
}

// auditPathArg normalizes an audit device PATH, or returns a usage error
// when nothing is left of it.
func auditPathArg(arg string) (string, error) {
	p := strings.Trim(strings.TrimSpace(arg), "/")
	if p == "" {
		return "", usageErr("the audit device path is empty")
	}
	return p, nil
}

// exitTampered is the exit code of verify for a log that was tampered
// with.
const exitTampered = 2

// deviceUsage documents -device.
const deviceUsage = "Audit device `path` (default: the only device enabled)."

func auditEnableCommand() *command {
	return &command{
		name:     "enable",
		synopsis: "Enable an audit device",
		usage:    "[flags] TYPE [KEY=VALUE...]",
		help: `Enables an audit device of TYPE (file, socket or syslog) at -path, which
defaults to the type. KEY=VALUE arguments are the device's options
(file_path, prefix, hmac_accessor, log_raw...); KEY=@file reads a value
from a file. Once a device is enabled, every request and response is
logged to it, and requests fail when no device can log them. Needs a root
token.

  $ vigil audit enable file file_path=/var/log/vigil/audit.log
  $ vigil audit enable -path=stdout -description="to the journal" file file_path=stdout`,
		run: func(ctx context.Context, c *call) int {
			path := c.fs.String("path", "", "Where to enable the device (`path`; default: the type).")
			desc := c.fs.String("description", "", "Human-friendly `text` describing the device.")
			local := c.fs.Bool("local", false, "Do not replicate the device.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, -1); !ok {
				return code
			}
			typ := strings.TrimSpace(c.args[0])
			if typ == "" {
				return c.fail("enabling the audit device", usageErr("the audit device type is empty"))
			}
			opts, err := auditOptions(c.stdin, c.args[1:])
			if err != nil {
				return c.fail("parsing the options", err)
			}
			mount := strings.Trim(*path, "/")
			if mount == "" {
				mount = strings.Trim(typ, "/")
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			in := api.EnableAuditInput{Type: typ, Description: *desc, Options: opts, Local: *local}
			if err := cl.Sys().EnableAudit(ctx, mount, in); err != nil {
				return c.fail("enabling audit device", err)
			}
			return c.success("Enabled the %s audit device at: %s/", typ, mount)
		},
	}
}

// auditOptions parses the KEY=VALUE options of enable, as parseData does;
// each option must have one scalar value.
func auditOptions(stdin io.Reader, args []string) (map[string]string, error) {
	data, err := parseData(stdin, args)
	if err != nil {
		return nil, err
	}
	opts := make(map[string]string, len(data))
	for k, v := range data {
		switch v.(type) {
		case string, json.Number, bool:
			opts[k] = output.Raw(v)
		default:
			return nil, usageErr("the option %q must have a single string value", k)
		}
	}
	return opts, nil
}

func auditDisableCommand() *command {
	return &command{
		name:     "disable",
		synopsis: "Disable an audit device",
		usage:    "[flags] PATH",
		help: `Disables the audit device at PATH (the path, not the type). Its log stays
where it is; nothing more is written to it. Needs a root token.

  $ vigil audit disable file/`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			path, err := auditPathArg(c.args[0])
			if err != nil {
				return c.fail("disabling the audit device", err)
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			if err := cl.Sys().DisableAudit(ctx, path); err != nil {
				return c.fail("disabling audit device", err)
			}
			return c.success("Disabled audit device (if it was enabled) at: %s/", path)
		},
	}
}

func auditListCommand() *command {
	return &command{
		name:     "list",
		synopsis: "List the enabled audit devices",
		usage:    "[flags]",
		help: `Lists the enabled audit devices. -detailed adds their replication and
options. -format=json prints the server's map of path to device ({} when
none is enabled); the table form exits 2 when none is, as Vault's does.

  $ vigil audit list -detailed`,
		run: func(ctx context.Context, c *call) int {
			detailed := c.fs.Bool("detailed", false, "Show the replication and options of each device.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(0, 0); !ok {
				return code
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			devs, err := cl.Sys().ListAudit(ctx)
			if err != nil {
				return c.fail("listing audits", err)
			}
			if c.fmt != output.Table {
				if err := c.printer().Structured(devs); err != nil {
					return c.fail("printing the result", err)
				}
				return exitOK
			}
			if len(devs) == 0 {
				// Exit 2, as Vault's CLI does.
				fmt.Fprintln(c.stderr, "No audit devices are enabled.")
				return exitUsage
			}
			header := []string{"Path", "Type", "Description"}
			if *detailed {
				header = append(header, "Replication", "Options")
			}
			var rows [][]string
			for _, p := range sortedKeys(devs) {
				d := devs[p]
				if d == nil {
					d = &api.Audit{}
				}
				row := []string{p, output.Cell(d.Type), output.Cell(d.Description)}
				if *detailed {
					repl := "replicated"
					if d.Local {
						repl = "local"
					}
					opts := make([]string, 0, len(d.Options))
					for _, k := range sortedKeys(d.Options) {
						opts = append(opts, k+"="+d.Options[k])
					}
					row = append(row, repl, output.Cell(strings.Join(opts, " ")))
				}
				rows = append(rows, row)
			}
			if err := output.WriteTable(c.stdout, header, rows); err != nil {
				return c.fail("printing the result", err)
			}
			return exitOK
		},
	}
}

// auditDevice returns the path of the audit device to use: name when it is
// given, else the only device enabled. None or several enabled is a usage
// error naming them.
func auditDevice(ctx context.Context, sys *api.Sys, name string) (string, error) {
	if p := strings.Trim(strings.TrimSpace(name), "/"); p != "" {
		return p, nil
	}
	devs, err := sys.ListAudit(ctx)
	if err != nil {
		return "", fmt.Errorf("listing the audit devices: %w", err)
	}
	paths := sortedKeys(devs)
	switch len(paths) {
	case 0:
		return "", usageErr("no audit device is enabled")
	case 1:
		return strings.Trim(paths[0], "/"), nil
	}
	return "", usageErr("%d audit devices are enabled (%s): choose one with -device", len(paths), strings.Join(paths, ", "))
}

func auditExportKeyCommand() *command {
	return &command{
		name:     "export-key",
		synopsis: "Export an audit device's chain key and checkpoint",
		usage:    "[flags]",
		help: `Prints the chain key of an audit device and the server's checkpoint of its
log (the seq and chain of the last entry written) as JSON, for
"vigil audit verify -key-file" to check the log later without a server.
-output writes it to a new file of mode 0600 instead. The key can also
forge a chain: keep the file away from the log it protects. Needs a root
token.

  $ vigil audit export-key -device=file -output=audit-key.json`,
		run: func(ctx context.Context, c *call) int {
			device := c.fs.String("device", "", deviceUsage)
			out := c.fs.String("output", "", "Write to this `file` (created with mode 0600) instead of stdout.")
			force := c.fs.Bool("force", false, "Replace the -output file if it exists.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(0, 0); !ok {
				return code
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			dev, err := auditDevice(ctx, cl.Sys(), *device)
			if err != nil {
				return c.fail("choosing the audit device", err)
			}
			ch, err := cl.Sys().AuditChain(ctx, dev)
			if err != nil {
				return c.fail("reading the chain key of audit device "+dev+"/", err)
			}
			b, err := json.MarshalIndent(ch, "", "  ")
			if err != nil {
				return c.fail("encoding the chain key", err)
			}
			b = append(b, '\n')
			if *out == "" {
				if _, err := c.stdout.Write(b); err != nil {
					return c.fail("writing the chain key", err)
				}
				return exitOK
			}
			if err := writePrivateFile(*out, b, *force); err != nil {
				return c.fail("writing "+*out, err)
			}
			return c.success("Exported the chain key of audit device %s/ to: %s", dev, *out)
		},
	}
}

// writePrivateFile writes b to the file name with mode 0600. It refuses to
// replace an existing file unless force is set.
func writePrivateFile(name string, b []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(name, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return errors.New("the file exists (use -force to replace it)")
	}
	if err != nil {
		return pathErrCause(err)
	}
	// A replaced file keeps its mode: narrow it before writing the key.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return pathErrCause(err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return pathErrCause(err)
	}
	return pathErrCause(f.Close())
}

// readKeyFile reads a file written by export-key. Its errors never quote
// the file's content.
func readKeyFile(name string) (*api.AuditChain, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, pathErrCause(err)
	}
	var ch api.AuditChain
	if err := json.Unmarshal(b, &ch); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("invalid JSON at offset %d", se.Offset)
		}
		return nil, errors.New("not a key file written by vigil audit export-key")
	}
	if len(ch.Key) != auditlog.KeySize {
		return nil, fmt.Errorf("the key must be %d bytes", auditlog.KeySize)
	}
	if _, err := (auditlog.Checkpoint{Seq: ch.Seq, Chain: ch.Chain}).Head(); err != nil {
		return nil, errors.New("the checkpoint chain must be 64 hex digits")
	}
	return &ch, nil
}

// openLogs opens the log files named, "-" meaning stdin; closeAll closes
// them.
func (c *call) openLogs(names []string) (srcs []auditlog.Source, closeAll func(), err error) {
	var files []*os.File
	closeAll = func() {
		for _, f := range files {
			f.Close()
		}
	}
	stdin := false
	for _, n := range names {
		if n == "-" {
			if stdin {
				closeAll()
				return nil, nil, usageErr("stdin (\"-\") can be read only once")
			}
			stdin = true
			r := c.stdin
			if r == nil {
				r = strings.NewReader("")
			}
			srcs = append(srcs, auditlog.Source{Name: "stdin", R: r})
			continue
		}
		f, err := os.Open(n)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		files = append(files, f)
		srcs = append(srcs, auditlog.Source{Name: n, R: f})
	}
	return srcs, closeAll, nil
}

func auditVerifyCommand() *command {
	return &command{
		name:     "verify",
		synopsis: "Check that an audit log was not tampered with",
		usage:    "[flags] FILE...",
		help: `Checks the hash chain of an audit device's log, given as its FILEs oldest
first ("-" reads stdin): an entry edited, inserted, removed or moved breaks
the chain. The chain key and the server's checkpoint come from the server
(-device; needs a root token) or from a file written by export-key
(-key-file; no server needed). A log that ends before the checkpoint was
cut short. -partial accepts a log whose first entries were rotated away,
taking its first entry on trust; -no-checkpoint skips the check of the end,
to verify old rotated files on their own.

Prints "OK: ..." and exits 0 for an intact log; prints "TAMPERED: FILE:LINE:
..." and exits 2 at the first sign of tampering; exits 1 when a file or the
server cannot be read.

  $ vigil audit verify /var/log/vigil/audit.log.1 /var/log/vigil/audit.log
  $ vigil audit verify -key-file=audit-key.json -partial -no-checkpoint audit.log.3`,
		run: func(ctx context.Context, c *call) int {
			device := c.fs.String("device", "", deviceUsage)
			keyFile := c.fs.String("key-file", "", "Read the key and checkpoint from this `file` (written by export-key) instead of the server.")
			partial := c.fs.Bool("partial", false, "Accept a log that starts after seq 1; its first entry is taken on trust.")
			noCheckpoint := c.fs.Bool("no-checkpoint", false, "Do not check that the log reaches the server's checkpoint.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, -1); !ok {
				return code
			}
			if *device != "" && *keyFile != "" {
				return c.usageError("-device and -key-file cannot be used together")
			}
			srcs, closeAll, err := c.openLogs(c.args)
			if err != nil {
				return c.fail("opening the log", err)
			}
			defer closeAll()

			var ch *api.AuditChain
			if *keyFile != "" {
				if ch, err = readKeyFile(*keyFile); err != nil {
					return c.fail("reading key file "+*keyFile, err)
				}
			} else {
				cl, code, ok := c.client()
				if !ok {
					return code
				}
				dev, err := auditDevice(ctx, cl.Sys(), *device)
				if err != nil {
					return c.fail("choosing the audit device", err)
				}
				if ch, err = cl.Sys().AuditChain(ctx, dev); err != nil {
					return c.fail("reading the chain key of audit device "+dev+"/", err)
				}
			}
			opts := auditlog.VerifyOptions{Key: ch.Key, Partial: *partial}
			if !*noCheckpoint {
				opts.Checkpoint = &auditlog.Checkpoint{Seq: ch.Seq, Chain: ch.Chain, Time: ch.CheckpointTime}
			}
			rep, err := auditlog.Verify(opts, srcs...)
			if err != nil {
				return c.fail("verifying the log", err)
			}
			if rep.Problem != nil {
				fmt.Fprintf(c.stdout, "TAMPERED: %s\n", rep.Problem.Error())
				return exitTampered
			}
			if rep.Entries == 0 {
				fmt.Fprintln(c.stdout, "OK: no entries")
			} else {
				fmt.Fprintf(c.stdout, "OK: %s, seq %d to %d, chain intact\n", plural(rep.Entries, "entry", "entries"), rep.FirstSeq, rep.LastSeq)
			}
			if cp := opts.Checkpoint; cp != nil && cp.Seq > 0 {
				fmt.Fprintf(c.stdout, "checkpoint seq %d (%s) reached\n", cp.Seq, cp.Time.UTC().Format(time.RFC3339))
			}
			if rep.Anchored {
				fmt.Fprintf(c.stdout, "note: the log starts at seq %d; that first entry was taken on trust (-partial)\n", rep.FirstSeq)
			}
			return exitOK
		},
	}
}

// plural formats n with the singular or plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// hashPrefix starts every value an audit device HMACs.
const hashPrefix = "hmac-sha256:"

// auditFilter is the conjunction of the search flags; a zero field does
// not filter.
type auditFilter struct {
	path         *regexp.Regexp
	op, typ      string
	remote       netip.Prefix
	since, until time.Time
	// accessors are the forms of -accessor an entry may hold: as given,
	// and as the device hashes it.
	accessors []string
	// hashed is -value as the device hashes it.
	hashed string
	// header is the lower-case name of -header; headerValues the forms
	// of its value an entry may hold (as given, and as the device hashes
	// it), nil to match any value.
	header       string
	headerValues []string
}

// match reports whether the entry e, decoded from obj, passes the filter.
func (f *auditFilter) match(e *auditlog.Entry, obj []byte) bool {
	req := e.Request
	if req == nil {
		req = &auditlog.Request{}
	}
	if f.typ != "" && e.Type != f.typ ||
		f.op != "" && !strings.EqualFold(req.Operation, f.op) ||
		f.path != nil && !f.path.MatchString(req.Path) ||
		f.remote.IsValid() && !prefixContains(f.remote, req.RemoteAddress) ||
		!f.inTime(e.Time) ||
		f.accessors != nil && !f.hasAccessor(e, req) ||
		f.header != "" && !f.hasHeader(req) {
		return false
	}
	if f.hashed == "" {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	var v any
	return dec.Decode(&v) == nil && containsString(v, f.hashed)
}

// inTime reports whether the entry time s is within -since and -until.
func (f *auditFilter) inTime(s string) bool {
	if f.since.IsZero() && f.until.IsZero() {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return false
	}
	return (f.since.IsZero() || !t.Before(f.since)) && (f.until.IsZero() || !t.After(f.until))
}

// hasAccessor reports whether the entry concerns a token with one of the
// accessors: the request's token, or the token a login issued.
func (f *auditFilter) hasAccessor(e *auditlog.Entry, req *auditlog.Request) bool {
	got := []string{req.ClientTokenAccessor}
	if e.Auth != nil {
		got = append(got, e.Auth.Accessor)
	}
	if e.Response != nil && e.Response.Auth != nil {
		got = append(got, e.Response.Auth.Accessor)
	}
	for _, g := range got {
		for _, a := range f.accessors {
			if g != "" && g == a {
				return true
			}
		}
	}
	return false
}

// hasHeader reports whether the request carried the -header, with one of
// its values if one was given.
func (f *auditFilter) hasHeader(req *auditlog.Request) bool {
	vs := req.Headers[f.header]
	if f.headerValues == nil {
		return len(vs) > 0
	}
	for _, v := range vs {
		if slices.Contains(f.headerValues, v) {
			return true
		}
	}
	return false
}

// prefixContains reports whether the address addr is in p.
func prefixContains(p netip.Prefix, addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && p.Contains(a.WithZone("").Unmap())
}

// containsString reports whether s is one of the strings anywhere in the
// decoded JSON value v.
func containsString(v any, s string) bool {
	switch t := v.(type) {
	case string:
		return t == s
	case map[string]any:
		for _, x := range t {
			if containsString(x, s) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if containsString(x, s) {
				return true
			}
		}
	}
	return false
}

// globRegexp compiles a -path glob: "*" matches any run of characters,
// "/" included, and "?" one character.
func globRegexp(glob string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, r := range glob {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// parseRemote parses -remote: an IP address or a CIDR prefix.
func parseRemote(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, usageErr("invalid -remote %q: want an IP address or a CIDR such as 10.0.0.0/8", s)
	}
	a = a.WithZone("").Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseTimeFlag parses -since or -until: an RFC 3339 time, or a duration
// meaning that long before now.
func parseTimeFlag(name, v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := api.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, usageErr("invalid -%s %q: want an RFC 3339 time (2024-05-01T10:00:00Z) or a duration ago (2h)", name, v)
	}
	return now.Add(-d), nil
}

// deviceHasher returns a function that hashes values as the audit device
// does (sys/audit-hash), choosing the device as export-key does.
func (c *call) deviceHasher(ctx context.Context, device string) (func(string) (string, error), error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	cl, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	dev, err := auditDevice(ctx, cl.Sys(), device)
	if err != nil {
		return nil, err
	}
	return func(v string) (string, error) { return cl.Sys().AuditHash(ctx, dev, v) }, nil
}

// maxSkipWarnings is how many unreadable lines search names per file.
const maxSkipWarnings = 3

func auditSearchCommand() *command {
	return &command{
		name:     "search",
		synopsis: "Find entries in an audit log",
		usage:    "[flags] FILE...",
		help: `Prints the entries of the audit log FILEs ("-" reads stdin) that pass
every filter given. -path is a glob on the request path where "*" matches
any characters, "/" included. -since and -until take an RFC 3339 time or a
duration ago (2h). The log holds token accessors and request values HMAC'd:
-accessor matches the accessor as given or as the device hashes it
(sys/audit-hash, when a server is reachable), and -value matches entries
holding the device's hash of the value anywhere; the value itself is never
printed ("-value=-" reads it from stdin). -header matches the request
headers the server records (sys/config/auditing/request-headers): NAME
alone any entry that carries it, NAME=VALUE one with that value, in clear
or as the device hashes it. The device is -device, or the only one enabled.

Entries print as they are in the log, one JSON object per line, or as a
table with -format=table. The number of matches goes to stderr; the exit
code is 0 even when nothing matches. Lines that are not audit entries are
skipped with a warning.

  $ vigil audit search -path='secret/data/app/*' -op=update -since=24h /var/log/vigil/audit.log
  $ vigil audit search -accessor=Jq1hR4x9ZbTn0cVdWe2fGh3k -format=table audit.log
  $ vigil audit search -header=X-Pipeline-Run=train-42 audit.log`,
		run: func(ctx context.Context, c *call) int {
			device := c.fs.String("device", "", "Audit device `path` hashing -accessor and -value (default: the only device enabled).")
			glob := c.fs.String("path", "", "Request path `glob`: * matches any characters, / included; ? matches one.")
			accessor := c.fs.String("accessor", "", "Token `accessor`, plain or hmac-sha256:...")
			remote := c.fs.String("remote", "", "Client `address`: an IP or a CIDR.")
			since := c.fs.String("since", "", "Entries at or after this `time` (RFC 3339, or a duration ago such as 2h).")
			until := c.fs.String("until", "", "Entries at or before this `time` (RFC 3339, or a duration ago).")
			op := c.fs.String("op", "", "Request `operation`: read, create, update, delete, list...")
			typ := c.fs.String("type", "", "Entry `type`: request or response.")
			value := c.fs.String("value", "", "Entries holding this `value` HMAC'd anywhere; - reads it from stdin.")
			header := c.fs.String("header", "", "Request header `NAME[=VALUE]` recorded in the entry (in clear or HMAC'd).")
			c.fs.Lookup("format").Usage = "Output `format`: json (default) or table."
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, -1); !ok {
				return code
			}
			format := output.JSON
			if c.isSet("format") {
				format = c.fmt
			}
			if format == output.YAML {
				return c.usageError("search prints -format=json or -format=table")
			}
			f := auditFilter{op: *op, typ: *typ}
			if f.typ != "" && f.typ != auditlog.TypeRequest && f.typ != auditlog.TypeResponse {
				return c.usageError("invalid -type %q: want request or response", f.typ)
			}
			if *glob != "" {
				f.path = globRegexp(*glob)
			}
			if *header != "" {
				name, v, hasValue := strings.Cut(*header, "=")
				if name == "" {
					return c.usageError("invalid -header %q: want NAME or NAME=VALUE", *header)
				}
				f.header = strings.ToLower(name)
				if hasValue {
					f.headerValues = []string{v}
				}
			}
			var err error
			if *remote != "" {
				if f.remote, err = parseRemote(*remote); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			now := time.Now()
			if *since != "" {
				if f.since, err = parseTimeFlag("since", *since, now); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			if *until != "" {
				if f.until, err = parseTimeFlag("until", *until, now); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			// -value is kept redacted until it is sent to be hashed.
			val := secret.NewString(*value)
			if val.Reveal() == "-" {
				for _, a := range c.args {
					if a == "-" {
						return c.usageError("stdin cannot hold both -value and a log")
					}
				}
				if val, err = c.readSecretLine(ctx, "Value (will be hidden): "); err != nil {
					return c.fail("reading -value", err)
				}
				if val.IsEmpty() {
					return c.usageError("-value is empty")
				}
			}

			srcs, closeAll, err := c.openLogs(c.args)
			if err != nil {
				return c.fail("opening the log", err)
			}
			defer closeAll()

			if code, ok := c.searchHashes(ctx, &f, *device, *accessor, val); !ok {
				return code
			}
			return c.search(&f, format, srcs)
		},
	}
}

// searchHashes fills the filter's accessors, header values and value
// hash. A -value that cannot be hashed is an error; an accessor or a
// header value that cannot be hashed is matched as given, with a warning.
func (c *call) searchHashes(ctx context.Context, f *auditFilter, device, accessor string, val secret.String) (int, bool) {
	if accessor != "" {
		f.accessors = []string{accessor}
	}
	needAccessor := accessor != "" && !strings.HasPrefix(accessor, hashPrefix)
	needHeader := len(f.headerValues) == 1 && !strings.HasPrefix(f.headerValues[0], hashPrefix)
	if !needAccessor && !needHeader && val.IsEmpty() {
		return 0, true
	}
	hash, hashErr := c.deviceHasher(ctx, device)
	if hashErr != nil && !val.IsEmpty() {
		return c.fail("reaching the audit device to hash -value", hashErr), false
	}
	// hashed returns v as the device hashes it, or warns that what
	// (a flag) is matched only as given.
	hashed := func(what, v string) (string, bool) {
		h, err := "", hashErr
		if err == nil {
			h, err = hash(v)
		}
		if err != nil {
			fmt.Fprintf(c.stderr, "Warning: %s is matched only as given: it could not be hashed with the audit device: %v\n", what, err)
			return "", false
		}
		return h, true
	}
	if needAccessor {
		if h, ok := hashed("-accessor", accessor); ok {
			f.accessors = append(f.accessors, h)
		}
	}
	if needHeader {
		if h, ok := hashed("the -header value", f.headerValues[0]); ok {
			f.headerValues = append(f.headerValues, h)
		}
	}
	if !val.IsEmpty() {
		h, err := hash(val.Reveal())
		if err != nil {
			return c.fail("hashing -value with the audit device", err), false
		}
		f.hashed = h
	}
	return 0, true
}

// search prints the entries of srcs that pass f, and their count to stderr.
func (c *call) search(f *auditFilter, format output.Format, srcs []auditlog.Source) int {
	out := bufio.NewWriter(c.stdout)
	var rows [][]string
	n := 0
	for _, src := range srcs {
		br := bufio.NewReaderSize(src.R, 64<<10)
		skipped := 0
		for lineNo := 1; ; lineNo++ {
			line, err := br.ReadBytes('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				out.Flush()
				return c.fail("reading "+src.Name, err)
			}
			if line = bytes.TrimRight(line, "\r\n"); len(line) > 0 {
				obj, e := parseEntry(line)
				switch {
				case e == nil:
					if skipped++; skipped <= maxSkipWarnings {
						fmt.Fprintf(c.stderr, "Warning: %s:%d: not an audit entry; skipped\n", src.Name, lineNo)
					}
				case f.match(e, obj):
					n++
					if format == output.Table {
						rows = append(rows, entryRow(e))
					} else {
						_, _ = out.Write(obj) // a write error sticks: Flush returns it
						_ = out.WriteByte('\n')
					}
				}
			}
			if err != nil { // io.EOF
				break
			}
		}
		if skipped > maxSkipWarnings {
			fmt.Fprintf(c.stderr, "Warning: %s: %d more lines that are not audit entries were skipped\n", src.Name, skipped-maxSkipWarnings)
		}
	}
	if format == output.Table && n > 0 {
		if err := output.WriteTable(out, []string{"TIME", "TYPE", "OP", "PATH", "REMOTE", "ERROR"}, rows); err != nil {
			return c.fail("printing the result", err)
		}
	}
	if err := out.Flush(); err != nil {
		return c.fail("printing the result", err)
	}
	fmt.Fprintf(c.stderr, "%s\n", plural(n, "matching entry", "matching entries"))
	return exitOK
}

// parseEntry returns the JSON object of a log line, without its prefix,
// and the entry it holds; the entry is nil when the line holds none.
func parseEntry(line []byte) ([]byte, *auditlog.Entry) {
	var obj []byte
	if l, err := auditlog.ParseLine(line); err == nil {
		obj = l.JSON
	} else if i := bytes.IndexByte(line, '{'); i >= 0 {
		obj = line[i:] // an entry without a chain
	}
	var e auditlog.Entry
	if obj == nil || json.Unmarshal(obj, &e) != nil || e.Type == "" {
		return nil, nil
	}
	return obj, &e
}

// entryRow is the table row of an entry.
func entryRow(e *auditlog.Entry) []string {
	req := e.Request
	if req == nil {
		req = &auditlog.Request{}
	}
	return []string{
		output.Cell(e.Time), output.Cell(e.Type), output.Cell(req.Operation),
		output.Cell(req.Path), output.Cell(req.RemoteAddress), output.Cell(e.Error),
	}
}
