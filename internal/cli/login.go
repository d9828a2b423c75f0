package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// usernameMethods are auth methods whose login path ends in the user name
// (auth/<mount>/login/<username>).
var usernameMethods = map[string]bool{"userpass": true, "ldap": true, "okta": true, "radius": true}

func loginCommand() *command {
	return &command{
		name:     "login",
		synopsis: "Authenticate and store the token in ~/.vigil-token",
		usage:    "[flags] [TOKEN | - | KEY=VALUE...]",
		help: `Checks a token with the server and stores it in ~/.vigil-token (mode 0600),
where later commands find it. With no TOKEN, or "-", the token is read
from stdin (not echoed on a terminal), which keeps it out of the shell
history. The token itself is not printed.

With -method, logs in through that auth method instead, sending the
KEY=VALUE arguments to auth/<path>/login, where -path defaults to the
method's name. -field=token prints the new token (with -no-store, for a
script to keep in VIGIL_TOKEN):

  $ vigil login -method=approle role_id=... secret_id=@secret-id.txt
  $ vigil login -method=userpass username=alice   (prompts for the password)
  $ vigil login -method=kubernetes role=app jwt=@/var/run/secrets/tokens/vigil
  $ vigil login -method=jwt -path=gitlab -no-store -field=token role=ci jwt="$ID_TOKEN"`,
		run: func(ctx context.Context, c *call) int {
			method := c.fs.String("method", "token", "Auth `method` type: token, userpass, approle, jwt, kubernetes...")
			mount := c.fs.String("path", "", "Mount `path` of the auth method (default: the method's name).")
			noStore := c.fs.Bool("no-store", false, "Do not store the token; print it instead.")
			noPrint := c.fs.Bool("no-print", false, "Print nothing on success.")
			if code, done := c.parse(); done {
				return code
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			var (
				tok  secret.String
				rows []output.Row
			)
			if *method == "token" {
				if code, ok := c.nargs(0, 1); !ok {
					return code
				}
				var code int
				tok, rows, code, ok = c.tokenLogin(ctx, cl)
				if !ok {
					return code
				}
			} else {
				var code int
				tok, rows, code, ok = c.methodLogin(ctx, cl, *method, *mount)
				if !ok {
					return code
				}
			}
			if *noStore {
				rows = append([]output.Row{{Key: "token", Value: tok.Reveal()}}, rows...)
			} else {
				if err := c.storeToken(tok); err != nil {
					return c.fail("storing the token", err)
				}
			}
			if *noPrint {
				return exitOK
			}
			if c.fmt == output.Table && c.g.field == "" {
				if *noStore {
					fmt.Fprintln(c.stdout, "Success! You are now authenticated. The token was not stored (-no-store);")
					fmt.Fprintln(c.stdout, "set VIGIL_TOKEN to use it.")
				} else {
					fmt.Fprintln(c.stdout, "Success! You are now authenticated. The token is stored in ~/"+tokenFileName)
					fmt.Fprintln(c.stdout, "and later commands use it; you need not run \"vigil login\" again.")
				}
				fmt.Fprintln(c.stdout)
			}
			if c.g.field != "" {
				// -field=token prints the token whether or not it was
				// stored, as the Vault CLI does: the form scripts use
				// to capture it.
				m := map[string]any{"token": tok.Reveal()}
				for _, r := range rows {
					m[r.Key] = r.Value
				}
				return c.printField(m, c.g.field)
			}
			if err := c.printer().KeyValues(rows); err != nil {
				return c.fail("printing the result", err)
			}
			if c.envValue(api.EnvToken) != "" && !*noStore {
				fmt.Fprintln(c.stderr, "WARNING! VIGIL_TOKEN (or VAULT_TOKEN) is set and takes precedence over the")
				fmt.Fprintln(c.stderr, "stored token; unset it to use the token you just logged in with.")
			}
			return exitOK
		},
	}
}

// tokenLogin reads the candidate token and checks it with
// auth/token/lookup-self. Only a 403 rejects it; a server that cannot look
// tokens up (404, 405, 501) gets a warning and the token is kept.
func (c *call) tokenLogin(ctx context.Context, cl *api.Client) (secret.String, []output.Row, int, bool) {
	var tok secret.String
	if len(c.args) == 1 && c.args[0] != "-" && c.args[0] != "token=-" {
		// "token=X" is the KEY=VALUE form the Vault CLI also accepts.
		tok = secret.NewString(strings.TrimSpace(strings.TrimPrefix(c.args[0], "token=")))
	} else {
		var err error
		tok, err = c.readSecretLine(ctx, "Token (will be hidden): ")
		if err != nil {
			return tok, nil, c.fail("reading the token", err), false
		}
	}
	if tok.IsEmpty() {
		return tok, nil, c.usageError("no token given"), false
	}
	s, err := cl.WithToken(tok.Reveal()).Logical().Read(ctx, "auth/token/lookup-self")
	var re *api.ResponseError
	switch {
	case err == nil:
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		fmt.Fprintln(c.stderr, "Error authenticating: the server rejected the token (permission denied).")
		fmt.Fprintln(c.stderr, "\nCheck that the token is correct and has not expired or been revoked.")
		return tok, nil, exitUsage, false
	case errors.As(err, &re):
		fmt.Fprintf(c.stderr, "WARNING! The token could not be looked up (HTTP %d); storing it without checking.\n", re.StatusCode)
		return tok, []output.Row{{Key: "token", Value: tok.Reveal()}}, 0, true
	default:
		return tok, nil, c.fail("looking up the token", err), false
	}
	if s == nil || s.Data == nil {
		fmt.Fprintln(c.stderr, "WARNING! The token could not be looked up (no data); storing it without checking.")
		return tok, []output.Row{{Key: "token", Value: tok.Reveal()}}, 0, true
	}
	d := s.Data
	dur := "∞"
	if ttl, ok := jsonInt(d["ttl"]); ok && ttl > 0 {
		dur = output.HumanDuration(int64(ttl))
	}
	rows := []output.Row{
		{Key: "token_accessor", Value: d["accessor"]},
		{Key: "token_duration", Value: dur},
		{Key: "token_renewable", Value: d["renewable"]},
		{Key: "token_policies", Value: d["policies"]},
		{Key: "identity_policies", Value: nonNilAny(d["identity_policies"])},
		{Key: "policies", Value: d["policies"]},
	}
	return tok, rows, 0, true
}

func nonNilAny(v any) any {
	if v == nil {
		return []any{}
	}
	return v
}

// methodLogin logs in through an auth method with the KEY=VALUE arguments.
func (c *call) methodLogin(ctx context.Context, cl *api.Client, method, mount string) (secret.String, []output.Row, int, bool) {
	var none secret.String
	data, err := parseData(c.stdin, c.args)
	if err != nil {
		return none, nil, c.fail("parsing the arguments", err), false
	}
	if mount == "" {
		mount = method
	}
	path := api.LoginPath(mount)
	if usernameMethods[method] {
		user, _ := data["username"].(string)
		if user == "" {
			return none, nil, c.usageError("%s login needs username=NAME", method), false
		}
		delete(data, "username")
		path += "/" + url.PathEscape(user)
		if _, ok := data["password"]; !ok {
			pw, err := c.readSecretLine(ctx, "Password (will be hidden): ")
			if err != nil {
				return none, nil, c.fail("reading the password", err), false
			}
			data["password"] = pw.Reveal()
		}
	}
	s, err := cl.Login(ctx, path, data)
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		// The generic 403 hint is about the caller's token; a login sends none.
		fmt.Fprintf(c.stderr, "Error authenticating: %v\n", err)
		fmt.Fprintf(c.stderr, "\nThe %s method at auth/%s/ refused the login: check the role and the credentials given.\n", method, strings.Trim(mount, "/"))
		return none, nil, exitError, false
	}
	if errors.Is(err, api.ErrNoAuth) {
		fmt.Fprintf(c.stderr, "Error authenticating: %s returned no token\n", path)
		return none, nil, exitError, false
	}
	if err != nil {
		return none, nil, c.fail("authenticating", err), false
	}
	a := s.Auth
	dur := "∞"
	if a.LeaseDuration > 0 {
		dur = output.HumanDuration(int64(a.LeaseDuration))
	}
	rows := []output.Row{
		{Key: "token_accessor", Value: a.Accessor},
		{Key: "token_duration", Value: dur},
		{Key: "token_renewable", Value: a.Renewable},
		{Key: "token_policies", Value: nonNilStrings(a.TokenPolicies)},
		{Key: "identity_policies", Value: nonNilStrings(a.IdentityPolicies)},
		{Key: "policies", Value: nonNilStrings(a.Policies)},
	}
	for _, k := range sortedKeys(a.Metadata) {
		rows = append(rows, output.Row{Key: "token_meta_" + k, Value: a.Metadata[k]})
	}
	return secret.NewString(a.ClientToken), rows, 0, true
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// storeToken writes the token file with mode 0600: to a temporary file in
// the same directory, then renamed over the old file, so a reader never
// sees a partial token and an old file's wider mode is not kept.
func (c *call) storeToken(tok secret.String) error {
	p, err := c.tokenPath()
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, tokenFileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("create token file: %w", err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("chmod token file: %w", err)
	}
	if _, err := f.WriteString(tok.Reveal()); err != nil {
		f.Close()
		return fmt.Errorf("write token file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close token file: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("replace token file: %w", err)
	}
	return os.Chmod(p, 0o600)
}

func versionCommand() *command {
	return &command{
		name:     "version",
		synopsis: "Print the Vigil version",
		usage:    "",
		run: func(_ context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			fmt.Fprintf(c.stdout, "Vigil %s\n", v)
			return exitOK
		},
	}
}
