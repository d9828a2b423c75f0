package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// The token commands follow `vault token create|lookup|renew|revoke|
// capabilities`: the same flags, requests, error prefixes and success
// lines. Tokens stay out of URLs and error messages. A TOKEN argument of
// "-" is read from stdin (not echoed on a terminal), which keeps it out of
// the shell history.
//
// Only `token create` prints a token in its table, since handing it over
// is its purpose. The tables of lookup and renew leave out the row that
// holds the token (`id`, `token`), which Vault shows: the caller already
// has it, and a table is for eyes and screens. -format=json|yaml print the
// server's whole answer, as Vault does, and -field=id or -field=token
// still print it when asked for by name.

func tokenCommands() []*command {
	return []*command{
		tokenCreateCommand(),
		tokenLookupCommand(),
		tokenRenewCommand(),
		tokenRevokeCommand(),
		tokenCapabilitiesCommand(),
	}
}

// tokenArg returns a TOKEN argument (or the ACCESSOR or PATH that takes
// its place; what names it), read from stdin when it is "-". It is a
// secret.String so that it cannot be printed by mistake.
func (c *call) tokenArg(ctx context.Context, arg, what string) (secret.String, error) {
	arg = strings.TrimSpace(arg)
	if arg == "-" {
		// The prompt is shown on a terminal only.
		v, err := c.readSecretLine(ctx, strings.ToUpper(what[:1])+what[1:]+" (will be hidden): ")
		if err != nil {
			return v, err
		}
		arg = v.Reveal()
	}
	if arg == "" {
		return secret.String{}, usageErr("the %s is empty", what)
	}
	return secret.NewString(arg), nil
}

// argKind names what the argument of lookup, renew and revoke is.
func argKind(accessor bool) string {
	if accessor {
		return "accessor"
	}
	return "token"
}

// durationValue parses a duration flag as Vault does ("30m", "90"); a
// negative one is a usage error.
func durationValue(name, v string) (time.Duration, error) {
	d, err := api.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, usageErr("invalid -%s %q: want a duration such as 30m or 3600", name, v)
	}
	return d, nil
}

// optionalDuration is a duration flag sent as a Go duration string ("1h0m0s",
// as the Vault CLI sends it), or "" (not sent) when unset or zero.
func optionalDuration(name, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	d, err := durationValue(name, v)
	if err != nil || d == 0 {
		return "", err
	}
	return d.String(), nil
}

// policyList is the repeatable -policy flag; a value may also hold several
// comma-separated names.
type policyList []string

func (p *policyList) String() string { return strings.Join(*p, ",") }

func (p *policyList) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*p = append(*p, name)
		}
	}
	return nil
}

func tokenCreateCommand() *command {
	return &command{
		name:     "create",
		synopsis: "Create a token",
		usage:    "[flags]",
		help: `Creates a token, a child of the token this command runs with: revoking the
parent revokes it too, unless -orphan is given. By default it gets the
parent's policies; -policy picks a subset (any policies with sudo). The
table shows the new token; -field=token prints only the token, for scripts.

-role creates the token against a token role (auth/token/create/ROLE),
whose settings may override these flags.

  $ vigil token create -policy=app-readonly -ttl=1h
  $ VIGIL_TOKEN=$(vigil token create -policy=ci -use-limit=5 -field=token)`,
		run: func(ctx context.Context, c *call) int {
			var policies policyList
			meta := mapFlag{}
			c.fs.Var(&policies, "policy", "Policy `name` to attach; repeatable, or comma-separated. Default: the parent's policies.")
			c.fs.Var(meta, "metadata", "Metadata `key=value` kept with the token and shown in audit logs; repeatable.")
			ttl := c.fs.String("ttl", "", "Initial TTL (`duration`); renewals may extend it up to the maximum TTL.")
			maxTTL := c.fs.String("explicit-max-ttl", "", "Hard maximum lifetime (`duration`) that renewals cannot pass.")
			period := c.fs.String("period", "", "Make the token periodic: each renewal resets its TTL to this `duration` (sudo).")
			renewable := c.fs.Bool("renewable", true, "Allow the token to be renewed up to its maximum TTL.")
			orphan := c.fs.Bool("orphan", false, "Create the token without a parent, so it outlives this one (root or sudo).")
			noDefault := c.fs.Bool("no-default-policy", false, `Do not attach the "default" policy.`)
			useLimit := c.fs.Int("use-limit", 0, "Number of `uses` after which the token is revoked; 0 is unlimited.")
			displayName := c.fs.String("display-name", "", "Non-secret `name` that identifies the token in lookups and logs.")
			typ := c.fs.String("type", "", `Token type: "service" or "batch" (default: the server's, service).`)
			role := c.fs.String("role", "", "Create the token against this token `role` (auth/token/create/ROLE).")
			entityAlias := c.fs.String("entity-alias", "", "Entity alias `name` to attach the token to (with -role only).")
			id := c.fs.String("id", "", `The token's value instead of a generated one (root or sudo); "-" reads it from stdin.`)
			c.wrapFlag()
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(0, 0); !ok {
				return code
			}
			req := api.TokenCreateRequest{
				Policies:        policies,
				Metadata:        meta,
				NoParent:        *orphan,
				NoDefaultPolicy: *noDefault,
				Renewable:       renewable,
				DisplayName:     *displayName,
				NumUses:         *useLimit,
				Type:            strings.TrimSpace(*typ),
				EntityAlias:     *entityAlias,
			}
			if req.Type == "batch" {
				// Batch tokens are never renewable; Vault's CLI says so
				// rather than send the default true.
				no := false
				req.Renewable = &no
			}
			var err error
			for _, d := range []struct {
				name, v string
				dst     *string
			}{{"ttl", *ttl, &req.TTL}, {"explicit-max-ttl", *maxTTL, &req.ExplicitMaxTTL}, {"period", *period, &req.Period}} {
				if *d.dst, err = optionalDuration(d.name, d.v); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			if *id != "" {
				v, err := c.tokenArg(ctx, *id, "token id")
				if err != nil {
					return c.fail("reading the token id", err)
				}
				req.ID = v.Reveal()
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			var s *api.Secret
			if r := strings.TrimSpace(*role); r != "" {
				s, err = cl.TokenAuth().CreateWithRole(ctx, r, req)
			} else {
				s, err = cl.TokenAuth().Create(ctx, req)
			}
			if err != nil {
				return c.fail("creating token", err)
			}
			if s == nil || (s.Auth == nil && s.WrapInfo == nil) {
				fmt.Fprintln(c.stderr, "Error creating token: the server returned no token")
				return exitError
			}
			return c.printSecret(s)
		},
	}
}

func tokenLookupCommand() *command {
	return &command{
		name:     "lookup",
		synopsis: "Display information about a token",
		usage:    "[flags] [TOKEN | ACCESSOR | -]",
		help: `Displays the properties of a token: policies, TTL, expiry, creation path,
metadata. With no argument, looks up the token this command runs with
(auth/token/lookup-self); otherwise TOKEN (auth/token/lookup), or the token
behind ACCESSOR with -accessor (auth/token/lookup-accessor). "-" reads the
token from stdin. The table leaves out the token itself; -format=json
prints the server's whole answer.

  $ vigil token lookup
  $ vigil token lookup -accessor 9Lc3bCVzvqpEFt1b7DSUK8rf
  $ vigil token lookup - < token.txt`,
		run: func(ctx context.Context, c *call) int {
			accessor := c.fs.Bool("accessor", false, "Treat the argument as an accessor instead of a token.")
			if code, done := c.parse(); done {
				return code
			}
			switch {
			case *accessor && len(c.args) < 1:
				return c.usageError("Not enough arguments with -accessor (expected 1, got %d)", len(c.args))
			case *accessor && len(c.args) > 1:
				return c.usageError("Too many arguments with -accessor (expected 1, got %d)", len(c.args))
			case len(c.args) > 1:
				return c.usageError("Too many arguments (expected 0-1, got %d)", len(c.args))
			}
			var arg secret.String
			if len(c.args) == 1 {
				var err error
				if arg, err = c.tokenArg(ctx, c.args[0], argKind(*accessor)); err != nil {
					return c.fail("looking up token", err)
				}
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			ta := cl.TokenAuth()
			var s *api.Secret
			var err error
			switch {
			case arg.IsEmpty():
				s, err = ta.LookupSelf(ctx)
			case *accessor:
				s, err = ta.LookupAccessor(ctx, arg.Reveal())
			default:
				s, err = ta.Lookup(ctx, arg.Reveal())
			}
			if err != nil {
				return c.tokenFail("looking up token", err)
			}
			if s == nil || s.Data == nil {
				fmt.Fprintln(c.stderr, "Error looking up token: the server returned no data")
				return exitError
			}
			return c.printWithoutToken(s, "id")
		},
	}
}

func tokenRenewCommand() *command {
	return &command{
		name:     "renew",
		synopsis: "Renew a token's lease",
		usage:    "[flags] [TOKEN | ACCESSOR | -]",
		help: `Renews a token, extending its TTL from now by -increment (default: its
original TTL), within its maximum TTL. With no argument, renews the token
this command runs with (auth/token/renew-self); otherwise TOKEN
(auth/token/renew), or the token behind ACCESSOR with -accessor
(auth/token/renew-accessor). "-" reads the token from stdin. Renewal fails
for tokens that are not renewable, were revoked or reached their maximum
TTL. The table leaves out the token itself.

  $ vigil token renew
  $ vigil token renew -increment=30m -accessor 9Lc3bCVzvqpEFt1b7DSUK8rf`,
		run: func(ctx context.Context, c *call) int {
			accessor := c.fs.Bool("accessor", false, "Treat the argument as an accessor instead of a token.")
			increment := c.fs.String("increment", "", "Requested TTL (`duration`) from now; the server may grant less.")
			c.fs.StringVar(increment, "i", "", "Short for -increment.")
			if code, done := c.parse(); done {
				return code
			}
			switch {
			case *accessor && len(c.args) < 1:
				return c.usageError("Not enough arguments with -accessor (expected 1, got %d)", len(c.args))
			case len(c.args) > 1:
				return c.usageError("Too many arguments (expected 1, got %d)", len(c.args))
			}
			var inc time.Duration
			if *increment != "" {
				var err error
				if inc, err = durationValue("increment", *increment); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			var arg secret.String
			if len(c.args) == 1 {
				var err error
				if arg, err = c.tokenArg(ctx, c.args[0], argKind(*accessor)); err != nil {
					return c.fail("renewing token", err)
				}
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			ta := cl.TokenAuth()
			var s *api.Secret
			var err error
			switch {
			case arg.IsEmpty():
				s, err = ta.RenewSelf(ctx, inc)
			case *accessor:
				s, err = ta.RenewAccessor(ctx, arg.Reveal(), inc)
			default:
				s, err = ta.Renew(ctx, arg.Reveal(), inc)
			}
			if err != nil {
				return c.tokenFail("renewing token", err)
			}
			if s == nil || s.Auth == nil {
				fmt.Fprintln(c.stderr, "Error renewing token: the server returned no auth data")
				return exitError
			}
			return c.printWithoutToken(s, "token")
		},
	}
}

// tokenRevokeSuccess is Vault's line after any token revocation.
const tokenRevokeSuccess = "Revoked token (if it existed)"

func tokenRevokeCommand() *command {
	return &command{
		name:     "revoke",
		synopsis: "Revoke a token and its children",
		usage:    "[flags] [TOKEN | ACCESSOR | PATH | -]",
		help: `Revokes a token, every token created under it and all their leases
(auth/token/revoke). -self revokes the token this command runs with
(auth/token/revoke-self); -accessor takes the token's ACCESSOR instead
(auth/token/revoke-accessor). "-" reads the argument from stdin.

-mode=orphan revokes the token alone and leaves its children as orphans
(auth/token/revoke-orphan; root or sudo). -mode=path revokes every token
and lease created under the auth PATH prefix, such as auth/approle/login
(sys/leases/revoke-prefix/PATH; sudo).

Revoking a token that does not exist succeeds.

  $ vigil token revoke -self
  $ vigil token revoke -accessor 9Lc3bCVzvqpEFt1b7DSUK8rf
  $ vigil token revoke -mode=path auth/approle/login`,
		run: func(ctx context.Context, c *call) int {
			accessor := c.fs.Bool("accessor", false, "Treat the argument as an accessor instead of a token.")
			self := c.fs.Bool("self", false, "Revoke the token this command runs with.")
			mode := c.fs.String("mode", "", `Type of revocation: "" (the token and its children), "orphan" (the token alone) or "path" (everything under an auth path).`)
			if code, done := c.parse(); done {
				return code
			}
			n := len(c.args)
			switch *mode {
			case "", "orphan", "path":
			default:
				return c.usageError("Invalid mode: %s", *mode)
			}
			switch {
			case *self && n > 0:
				return c.usageError("Too many arguments with -self (expected 0, got %d)", n)
			case !*self && n > 1:
				return c.usageError("Too many arguments (expected 1 or -self, got %d)", n)
			case !*self && n < 1:
				return c.usageError("Not enough arguments (expected 1 or -self, got %d)", n)
			case *self && *accessor:
				return c.usageError("Cannot use -self with -accessor!")
			case *self && *mode != "":
				return c.usageError("Cannot use -self with -mode!")
			case *accessor && *mode != "":
				return c.usageError("Cannot use -accessor with -mode=%s!", *mode)
			}
			var arg secret.String
			if !*self {
				var err error
				what := argKind(*accessor)
				if *mode == "path" {
					what = "path"
				}
				if arg, err = c.tokenArg(ctx, c.args[0], what); err != nil {
					return c.fail("revoking token", err)
				}
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			ta := cl.TokenAuth()
			var err error
			switch {
			case *self:
				err = ta.RevokeSelf(ctx)
			case *accessor:
				err = ta.RevokeAccessor(ctx, arg.Reveal())
			case *mode == "orphan":
				err = ta.RevokeOrphan(ctx, arg.Reveal())
			case *mode == "path":
				// The path is not a secret; it was only read like one.
				err = cl.Sys().LeaseRevokePrefix(ctx, cleanPath(arg.Reveal()), true)
			default:
				err = ta.Revoke(ctx, arg.Reveal())
			}
			if err != nil {
				return c.tokenFail("revoking token", err)
			}
			return c.success(tokenRevokeSuccess)
		},
	}
}

func tokenCapabilitiesCommand() *command {
	return &command{
		name:     "capabilities",
		synopsis: "Print the capabilities of a token on paths",
		usage:    "[flags] [TOKEN | ACCESSOR | -] PATH...",
		help: `Prints what a token may do on each PATH: "read", "update", "deny" for
nothing, "root" for a root token...

With one argument, checks the token this command runs with
(sys/capabilities-self). With more, the first is the TOKEN to check
(sys/capabilities), or its ACCESSOR with -accessor
(sys/capabilities-accessor), and the others are paths; -self checks the
command's own token on every argument. "-" reads the token from stdin.

One path prints its capabilities on one line, comma-separated, as Vault
does; several print a table of path and capabilities. -format=json prints
the list for one path, an object of path to list for several.

  $ vigil token capabilities secret/data/app/db
  $ vigil token capabilities -self secret/data/app/db sys/mounts
  $ vigil token capabilities - secret/data/app/db < token.txt`,
		run: func(ctx context.Context, c *call) int {
			accessor := c.fs.Bool("accessor", false, "Treat the first argument as an accessor instead of a token.")
			self := c.fs.Bool("self", false, "Check the token this command runs with; every argument is a PATH.")
			if code, done := c.parse(); done {
				return code
			}
			n := len(c.args)
			switch {
			case *self && *accessor:
				return c.usageError("Cannot use -self with -accessor!")
			case n < 1:
				return c.usageError("Not enough arguments (expected 1 or more, got 0)")
			case *accessor && n < 2:
				return c.usageError("Not enough arguments with -accessor (expected 2 or more, got %d)", n)
			}
			paths := c.args
			var who secret.String
			if !*self && n > 1 {
				var err error
				if who, err = c.tokenArg(ctx, c.args[0], argKind(*accessor)); err != nil {
					return c.fail("listing capabilities", err)
				}
				paths = c.args[1:]
			}
			paths = uniquePaths(paths)
			for _, p := range paths {
				if p == "" {
					return c.fail("listing capabilities", usageErr("a path is empty"))
				}
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			ta := cl.TokenAuth()
			var caps map[string][]string
			var err error
			switch {
			case who.IsEmpty():
				caps, err = ta.CapabilitiesSelf(ctx, paths)
			case *accessor:
				caps, err = ta.CapabilitiesAccessor(ctx, who.Reveal(), paths)
			default:
				caps, err = ta.Capabilities(ctx, who.Reveal(), paths)
			}
			if err != nil {
				return c.tokenFail("listing capabilities", err)
			}
			return c.printCapabilities(paths, caps)
		},
	}
}

// uniquePaths trims the leading slashes of paths, as every other command
// does, and drops repeats, keeping the first.
func uniquePaths(paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		p = cleanPath(strings.TrimSpace(p))
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// printCapabilities prints one path's capabilities as Vault does (sorted,
// ", "-separated; a JSON list) or a table for several paths (an object of
// path to list in JSON). -field picks one path.
func (c *call) printCapabilities(paths []string, caps map[string][]string) int {
	for _, p := range paths {
		if len(caps[p]) == 0 {
			fmt.Fprintf(c.stderr, "No capabilities found for %s\n", p)
			return exitError
		}
		caps[p] = slices.Sorted(slices.Values(caps[p]))
	}
	if c.g.field != "" {
		m := make(map[string]any, len(caps))
		for p, cs := range caps {
			m[p] = strings.Join(cs, ", ")
		}
		return c.printField(m, c.g.field)
	}
	if len(paths) == 1 {
		if c.fmt != output.Table {
			return c.printStructured(caps[paths[0]])
		}
		fmt.Fprintln(c.stdout, strings.Join(caps[paths[0]], ", "))
		return exitOK
	}
	if c.fmt != output.Table {
		return c.printStructured(caps)
	}
	rows := make([][]string, 0, len(paths))
	for _, p := range paths {
		rows = append(rows, []string{p, strings.Join(caps[p], ", ")})
	}
	if err := output.WriteTable(c.stdout, []string{"Path", "Capabilities"}, rows); err != nil {
		return c.fail("printing the result", err)
	}
	return exitOK
}

func (c *call) printStructured(v any) int {
	if err := c.printer().Structured(v); err != nil {
		return c.fail("printing the result", err)
	}
	return exitOK
}

// printWithoutToken prints s as printSecret does, except that the table
// leaves out the row named hide, which holds a token.
func (c *call) printWithoutToken(s *api.Secret, hide string) int {
	if c.g.field != "" || c.fmt != output.Table {
		return c.printSecret(s)
	}
	p := c.printer()
	p.Warnings(s)
	rows := slices.DeleteFunc(output.SecretRows(s), func(r output.Row) bool { return r.Key == hide })
	if len(rows) == 0 {
		return exitOK
	}
	if err := output.WriteKeyValues(c.stdout, rows); err != nil {
		return c.fail("printing the result", err)
	}
	return exitOK
}

// tokenFail is fail with a better hint for a token argument the server
// does not know: its 403 "bad token" is not about the caller's own token,
// which the generic 403 hint suggests checking.
func (c *call) tokenFail(action string, err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden && re.HasMessage("bad token") {
		fmt.Fprintf(c.stderr, "Error %s: %v\n", action, err)
		fmt.Fprintln(c.stderr, "\nThe token does not exist, has expired or was revoked.")
		return exitError
	}
	return c.fail(action, err)
}
