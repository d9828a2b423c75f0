package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/vigil-secrets/vigil/api"
)

// cleanPath removes the leading slashes of a logical path.
func cleanPath(p string) string { return strings.TrimLeft(p, "/") }

func readCommand() *command {
	return &command{
		name:     "read",
		synopsis: "Read data at a path",
		usage:    "[flags] PATH [KEY=VALUE...]",
		help: `Reads the data at PATH (GET /v1/PATH). KEY=VALUE arguments are sent as
query parameters. Exits 2 when there is nothing at PATH.

  $ vigil read -field=policy sys/policies/acl/default`,
		run: func(ctx context.Context, c *call) int {
			c.wrapFlag()
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, -1); !ok {
				return code
			}
			path := cleanPath(c.args[0])
			var q url.Values
			if len(c.args) > 1 {
				data, err := parseData(c.stdin, c.args[1:])
				if err != nil {
					return c.fail("parsing the arguments", err)
				}
				q = url.Values{}
				for k, v := range data {
					q.Set(k, fmt.Sprint(v))
				}
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			s, err := cl.Logical().ReadWithData(ctx, path, q)
			if err != nil {
				return c.fail("reading "+path, err)
			}
			if s == nil {
				fmt.Fprintf(c.stderr, "No value found at %s\n", path)
				return exitUsage
			}
			return c.printSecret(s)
		},
	}
}

// writeLike builds write and patch, which differ only in the HTTP method.
func writeLike(name, synopsis, help string, send func(ctx context.Context, l *api.Logical, path string, data map[string]any) (*api.Secret, error)) *command {
	return &command{
		name:     name,
		synopsis: synopsis,
		usage:    "[flags] PATH [KEY=VALUE... | -]",
		help:     help,
		run: func(ctx context.Context, c *call) int {
			force := c.fs.Bool("force", false, "Send the request even with no data.")
			c.fs.BoolVar(force, "f", false, "Short for -force.")
			c.wrapFlag()
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, -1); !ok {
				return code
			}
			path := cleanPath(c.args[0])
			data, err := parseData(c.stdin, c.args[1:])
			if err != nil {
				return c.fail("parsing the arguments", err)
			}
			if len(data) == 0 && !*force {
				return c.usageError("Must supply data or use -force")
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			s, err := send(ctx, cl.Logical(), path, data)
			if err != nil {
				return c.fail("writing to "+path, err)
			}
			if s == nil {
				return c.success("Data written to: %s", path)
			}
			return c.printSecret(s)
		},
	}
}

func writeCommand() *command {
	return writeLike("write", "Write data to a path",
		`Writes KEY=VALUE data to PATH (PUT /v1/PATH). VALUE may be @file to read a
file, or - to read stdin; "-" alone reads a JSON object from stdin.

  $ vigil write sys/policies/acl/app policy=@app.hcl`,
		func(ctx context.Context, l *api.Logical, path string, data map[string]any) (*api.Secret, error) {
			return l.Write(ctx, path, data)
		})
}

func patchCommand() *command {
	return writeLike("patch", "Patch data at a path (JSON merge patch)",
		`Sends KEY=VALUE data to PATH as a JSON merge patch (PATCH /v1/PATH with
Content-Type application/merge-patch+json).`,
		func(ctx context.Context, l *api.Logical, path string, data map[string]any) (*api.Secret, error) {
			return l.Patch(ctx, path, data)
		})
}

func deleteCommand() *command {
	return &command{
		name:     "delete",
		synopsis: "Delete data at a path",
		usage:    "[flags] PATH [KEY=VALUE...]",
		help: `Deletes the data at PATH (DELETE /v1/PATH). KEY=VALUE arguments are sent
as query parameters.`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, -1); !ok {
				return code
			}
			path := cleanPath(c.args[0])
			var q url.Values
			if len(c.args) > 1 {
				data, err := parseData(c.stdin, c.args[1:])
				if err != nil {
					return c.fail("parsing the arguments", err)
				}
				q = url.Values{}
				for k, v := range data {
					q.Set(k, fmt.Sprint(v))
				}
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			s, err := cl.Logical().DeleteWithData(ctx, path, q)
			if err != nil {
				return c.fail("deleting "+path, err)
			}
			if s != nil && (len(s.Data) > 0 || s.Auth != nil) {
				return c.printSecret(s)
			}
			return c.success("Data deleted (if it existed) at: %s", path)
		},
	}
}

func listCommand() *command {
	return &command{
		name:     "list",
		synopsis: "List the keys under a path",
		usage:    "[flags] PATH",
		help: `Lists the keys under PATH (GET /v1/PATH?list=true). Keys ending in "/"
are folders. Exits 2 when there is nothing to list.`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			path := ensureSlash(cleanPath(c.args[0]))
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			return c.list(ctx, cl, path)
		},
	}
}

// list lists path and prints the keys; shared by list and kv list.
func (c *call) list(ctx context.Context, cl *api.Client, path string) int {
	s, err := cl.Logical().List(ctx, path)
	if err != nil {
		return c.fail("listing "+path, err)
	}
	keys := listKeys(s)
	if s == nil || keys == nil {
		fmt.Fprintf(c.stderr, "No value found at %s\n", path)
		return exitUsage
	}
	if c.g.field != "" {
		return c.printField(secretFields(s), c.g.field)
	}
	c.printer().Warnings(s)
	if err := c.printer().List(keys); err != nil {
		return c.fail("printing the result", err)
	}
	return exitOK
}

// listKeys returns data.keys as strings, or nil when absent.
func listKeys(s *api.Secret) []string {
	if s == nil {
		return nil
	}
	raw, ok := s.Data["keys"].([]any)
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(raw))
	for _, k := range raw {
		keys = append(keys, fmt.Sprint(k))
	}
	return keys
}

func ensureSlash(p string) string {
	if p == "" || strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

func unwrapCommand() *command {
	return &command{
		name:     "unwrap",
		synopsis: "Unwrap a wrapped response",
		usage:    "[flags] [TOKEN]",
		help: `Trades a wrapping token for the response it holds, once (sys/wrapping/unwrap),
and prints it as "read" does. Without TOKEN the token this command runs
with is the wrapping token; "-" reads TOKEN from stdin. A token that was
already unwrapped, has expired or was never a wrapping token is an error:
if you did not unwrap it yourself, someone else may have.

  $ vigil write -wrap-ttl=5m -f -field=wrapping_token auth/approle/role/trainer/secret-id > wrapped
  $ vigil unwrap -field=secret_id - < wrapped`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(0, 1); !ok {
				return code
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			var data map[string]any
			if len(c.args) == 1 {
				tok, err := c.tokenArg(ctx, c.args[0], "wrapping token")
				if err != nil {
					return c.fail("reading the wrapping token", err)
				}
				if cl.Token() == "" {
					// The wrapping token itself authenticates the unwrap.
					cl.SetToken(tok.Reveal())
				} else {
					data = map[string]any{"token": tok.Reveal()}
				}
			} else if cl.Token() == "" {
				return c.usageError("no wrapping token: give TOKEN, or run with the wrapping token as VIGIL_TOKEN")
			}
			s, err := cl.Logical().Write(ctx, "sys/wrapping/unwrap", data)
			if err != nil {
				return c.fail("unwrapping", err)
			}
			if s == nil {
				fmt.Fprintln(c.stderr, "Error unwrapping: the wrapped response is empty")
				return exitError
			}
			return c.printSecret(s)
		},
	}
}
