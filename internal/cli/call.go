package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
)

// tokenFileName is the token helper file in the user's home directory.
const tokenFileName = ".vigil-token"

// globals are the flags every command accepts.
type globals struct {
	address    string
	caCert     string
	caPath     string
	clientCert string
	clientKey  string
	serverName string
	skipVerify bool
	format     string
	field      string
	// wrapTTL is -wrap-ttl, on the commands that take it (wrapFlag).
	wrapTTL wrapTTLFlag
}

// wrapTTLFlag is -wrap-ttl: a duration, or integer seconds.
type wrapTTLFlag time.Duration

func (f *wrapTTLFlag) String() string { return time.Duration(*f).String() }

func (f *wrapTTLFlag) Set(v string) error {
	d, err := api.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration such as 5m or 300")
	}
	*f = wrapTTLFlag(d)
	return nil
}

// wrapFlag declares -wrap-ttl: the command's request asks for its
// response wrapped, and prints the wrapping token instead.
func (c *call) wrapFlag() {
	c.fs.Var(&c.g.wrapTTL, "wrap-ttl", "Ask for the response wrapped in a single-use wrapping token that lives this `duration` (5m, 300); unwrap it with \"vigil unwrap\".")
}

// call is one run of a leaf command: its flags, its arguments after
// parsing, and helpers to reach the server and print.
type call struct {
	*env
	cmd  *command
	name string // the full command, "vigil kv get"
	fs   *flag.FlagSet
	raw  []string
	args []string // positional arguments, after parse
	g    globals
	fmt  output.Format
}

func newCall(e *env, c *command, name string, args []string) *call {
	cl := &call{env: e, cmd: c, name: name, raw: args}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&cl.g.address, "address", "", "Address of the server (`URL`); overrides VIGIL_ADDR.")
	fs.StringVar(&cl.g.caCert, "ca-cert", "", "PEM `file` of CA certificates to trust; overrides VIGIL_CACERT.")
	fs.StringVar(&cl.g.caPath, "ca-path", "", "`dir`ectory of PEM CA certificates to trust; overrides VIGIL_CAPATH.")
	fs.StringVar(&cl.g.clientCert, "client-cert", "", "PEM `file` of a client certificate to present; overrides VIGIL_CLIENT_CERT.")
	fs.StringVar(&cl.g.clientKey, "client-key", "", "PEM `file` of the client certificate's key; overrides VIGIL_CLIENT_KEY.")
	fs.StringVar(&cl.g.serverName, "tls-server-name", "", "`Name` to check the server's certificate against; overrides VIGIL_TLS_SERVER_NAME.")
	fs.BoolVar(&cl.g.skipVerify, "tls-skip-verify", false, "Do not verify the server's TLS certificate (insecure); overrides VIGIL_SKIP_VERIFY.")
	fs.StringVar(&cl.g.format, "format", "", "Output `format`: table, json or yaml (default from VIGIL_FORMAT, else table).")
	fs.StringVar(&cl.g.field, "field", "", "Print only this `field`'s raw value, with no trailing newline.")
	cl.fs = fs
	return cl
}

// parse parses the flags. When done is true the command must return code
// (help was printed, or the flags were wrong).
func (c *call) parse() (code int, done bool) {
	err := c.fs.Parse(c.raw)
	if errors.Is(err, flag.ErrHelp) {
		c.printUsage(c.stdout)
		return exitOK, true
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "Error: %v\n", err)
		fmt.Fprintf(c.stderr, "Run %q for usage.\n", c.name+" -h")
		return exitUsage, true
	}
	c.args = c.fs.Args()
	fv := c.g.format
	if fv == "" {
		fv = c.envValue("VIGIL_FORMAT")
	}
	f, err := output.ParseFormat(fv)
	if err != nil {
		return c.usageError("%v", err), true
	}
	c.fmt = f
	return 0, false
}

func (c *call) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n\n", c.name, c.cmd.usage)
	if c.cmd.help != "" {
		fmt.Fprintln(w, indent(strings.TrimSpace(c.cmd.help), "  "))
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Flags:")
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// nargs checks the number of positional arguments; max < 0 means no limit.
func (c *call) nargs(minN, maxN int) (int, bool) {
	n := len(c.args)
	switch {
	case n < minN:
		return c.usageError("Not enough arguments (expected %d, got %d)", minN, n), false
	case maxN >= 0 && n > maxN:
		return c.usageError("Too many arguments (expected %d, got %d)", maxN, n), false
	}
	return 0, true
}

// usageError prints a usage error and returns the usage exit code.
func (c *call) usageError(format string, a ...any) int {
	fmt.Fprintf(c.stderr, "Error: %s\n", fmt.Sprintf(format, a...))
	fmt.Fprintf(c.stderr, "Run %q for usage.\n", c.name+" -h")
	return exitUsage
}

// isSet reports whether the named flag was given.
func (c *call) isSet(name string) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// envValue reads a VIGIL_ variable, falling back to the VAULT_ name.
func (c *call) envValue(name string) string {
	if v := c.getenv(name); v != "" {
		return v
	}
	return c.getenv("VAULT_" + strings.TrimPrefix(name, "VIGIL_"))
}

// config builds the client configuration: environment, then flags, then
// the token file when no token is in the environment.
func (c *call) config() (api.Config, error) {
	cfg, err := api.ConfigFromEnv(c.getenv)
	if err != nil {
		return cfg, err
	}
	if c.g.address != "" {
		cfg.Address = c.g.address
	}
	if c.g.caCert != "" {
		cfg.CACert = c.g.caCert
	}
	if c.g.caPath != "" {
		cfg.CAPath = c.g.caPath
	}
	if c.g.clientCert != "" {
		cfg.ClientCert = c.g.clientCert
	}
	if c.g.clientKey != "" {
		cfg.ClientKey = c.g.clientKey
	}
	if c.g.serverName != "" {
		cfg.TLSServerName = c.g.serverName
	}
	if c.isSet("tls-skip-verify") {
		cfg.TLSSkipVerify = c.g.skipVerify
	}
	cfg.WrapTTL = time.Duration(c.g.wrapTTL)
	if cfg.Token == "" {
		tok, err := c.readTokenFile()
		if err != nil {
			return cfg, err
		}
		cfg.Token = tok
	}
	return cfg, nil
}

// client returns a client for the server, or prints the error and returns
// false.
func (c *call) client() (*api.Client, int, bool) {
	cfg, err := c.config()
	if err != nil {
		return nil, c.fail("configuring the client", err), false
	}
	cl, err := api.NewClient(cfg)
	if err != nil {
		return nil, c.fail("configuring the client", err), false
	}
	return cl, 0, true
}

// address is the server address the command uses, for hints.
func (c *call) address() string {
	if c.g.address != "" {
		return c.g.address
	}
	return api.DefaultConfig(c.getenv).Address
}

func (c *call) tokenPath() (string, error) {
	if c.home == "" {
		return "", errors.New("HOME is not set, so there is no token file")
	}
	return filepath.Join(c.home, tokenFileName), nil
}

// readTokenFile returns the stored token, or "" when there is none.
func (c *call) readTokenFile() (string, error) {
	p, err := c.tokenPath()
	if err != nil {
		return "", nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// printer returns the printer for the chosen format.
func (c *call) printer() *output.Printer {
	return &output.Printer{Out: c.stdout, Err: c.stderr, Format: c.fmt}
}

// printField prints one field's raw value, without a trailing newline, as
// Vault does. It returns the exit code.
func (c *call) printField(fields map[string]any, name string) int {
	v, ok := fields[name]
	if !ok {
		fmt.Fprintf(c.stderr, "Field %q not present in secret\n", name)
		return exitError
	}
	fmt.Fprint(c.stdout, output.Raw(v))
	return exitOK
}

// secretFields is every field -field can select in a secret: the table
// rows (lease, auth, wrapping) and the data keys.
func secretFields(s *api.Secret) map[string]any {
	m := map[string]any{}
	for _, r := range output.SecretRows(s) {
		m[strings.TrimSuffix(r.Key, ":")] = r.Value
	}
	if s != nil && s.Auth != nil {
		// Raw values rather than their table renderings.
		m["token_duration"] = s.Auth.LeaseDuration
	}
	return m
}

// printSecret prints a secret honouring -field and -format.
func (c *call) printSecret(s *api.Secret) int {
	if c.g.field != "" {
		return c.printField(secretFields(s), c.g.field)
	}
	if err := c.printer().Secret(s); err != nil {
		return c.fail("printing the result", err)
	}
	return exitOK
}

// success prints a "Success! ..." line in table format; other formats
// print nothing, as in Vault.
func (c *call) success(format string, a ...any) int {
	if c.fmt == output.Table && c.g.field == "" {
		fmt.Fprintf(c.stdout, "Success! "+format+"\n", a...)
	}
	return exitOK
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// structured handles -field and the json/yaml formats for a result v that
// is not a secret: -field selects one of v's JSON fields. handled is false
// for table output, which the caller prints itself.
func (c *call) structured(v any) (code int, handled bool) {
	if c.g.field != "" {
		g := map[string]any{}
		if err := reencode(v, &g); err != nil {
			return c.fail("printing the result", err), true
		}
		return c.printField(g, c.g.field), true
	}
	if c.fmt != output.Table {
		if err := c.printer().Structured(v); err != nil {
			return c.fail("printing the result", err), true
		}
		return exitOK, true
	}
	return 0, false
}

// reencode converts v into out through JSON, keeping numbers exact.
func reencode(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
