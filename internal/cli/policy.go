package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/hashicorp/hcl/hcl/parser"
	"github.com/hashicorp/hcl/hcl/printer"

	"github.com/vigil-secrets/vigil/internal/cli/output"
)

// The policy commands follow `vault policy`: names are trimmed and
// lowercased before they are sent (the server stores them lowercased), the
// table output of list and read is bare (names one per line, the policy
// text), and -format=json prints a JSON array of names for list and
// {"policy": TEXT} for read, as Vault's CLI does.

func policyCommands() []*command {
	return []*command{
		policyListCommand(),
		policyReadCommand(),
		policyWriteCommand(),
		policyDeleteCommand(),
		policyFmtCommand(),
	}
}

// policyName normalizes a policy name argument as the server does, or
// returns a usage error for an empty one.
func policyName(arg string) (string, error) {
	name := strings.ToLower(strings.TrimSpace(arg))
	if name == "" {
		return "", usageErr("the policy name is empty")
	}
	return name, nil
}

func policyListCommand() *command {
	return &command{
		name:     "list",
		synopsis: "List the ACL policies",
		usage:    "[flags]",
		help: `Lists the names of the ACL policies on the server, one per line. With
-format=json the names are printed as a JSON array.

  $ vigil policy list -format=json`,
		run: func(ctx context.Context, c *call) int {
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
			names, err := cl.Sys().ListPolicies(ctx)
			if err != nil {
				return c.fail("listing policies", err)
			}
			if c.fmt != output.Table {
				if err := c.printer().Structured(names); err != nil {
					return c.fail("printing the result", err)
				}
				return exitOK
			}
			for _, n := range names {
				fmt.Fprintln(c.stdout, n)
			}
			return exitOK
		},
	}
}

func policyReadCommand() *command {
	return &command{
		name:     "read",
		synopsis: "Print an ACL policy",
		usage:    "[flags] NAME",
		help: `Prints the text of the ACL policy NAME as it was written. With
-format=json the text is printed as {"policy": "..."}. Exits 2 when there
is no such policy.

  $ vigil policy read app-readonly > app-readonly.hcl`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			name, err := policyName(c.args[0])
			if err != nil {
				return c.fail("reading the policy", err)
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			text, err := cl.Sys().GetPolicy(ctx, name)
			if err != nil {
				return c.fail("reading policy named "+name, err)
			}
			if text == "" {
				fmt.Fprintf(c.stderr, "No policy named: %s\n", name)
				return exitUsage
			}
			fields := map[string]any{"policy": text}
			if c.g.field != "" {
				return c.printField(fields, c.g.field)
			}
			if c.fmt != output.Table {
				if err := c.printer().Structured(fields); err != nil {
					return c.fail("printing the result", err)
				}
				return exitOK
			}
			fmt.Fprintln(c.stdout, strings.TrimSpace(text))
			return exitOK
		},
	}
}

func policyWriteCommand() *command {
	return &command{
		name:     "write",
		synopsis: "Create or replace an ACL policy from a file",
		usage:    "[flags] NAME PATH",
		help: `Uploads the policy in the local file PATH (HCL or JSON) as the ACL policy
NAME, replacing any policy of that name. A PATH of "-" reads the policy
from stdin. The server checks the policy and rejects it if it does not
parse.

  $ vigil policy write app-readonly ./app-readonly.hcl
  $ echo 'path "secret/data/app/*" { capabilities = ["read"] }' | vigil policy write app-readonly -`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(2, 2); !ok {
				return code
			}
			name, err := policyName(c.args[0])
			if err != nil {
				return c.fail("uploading the policy", err)
			}
			src, what := c.args[1], "policy file "+c.args[1]
			if src == "-" {
				what = "the policy from stdin"
			}
			text, err := readPolicySource(c.stdin, src)
			if err != nil {
				return c.fail("reading "+what, err)
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			if err := cl.Sys().PutPolicy(ctx, name, text); err != nil {
				return c.fail("uploading policy", err)
			}
			return c.success("Uploaded policy: %s", name)
		},
	}
}

// readPolicySource reads the policy text from the file src, or from stdin
// when src is "-". The caller names the source in its message.
func readPolicySource(stdin io.Reader, src string) (string, error) {
	var b []byte
	var err error
	switch {
	case src != "-":
		b, err = os.ReadFile(src)
		err = pathErrCause(err)
	case stdin != nil:
		b, err = io.ReadAll(stdin)
	}
	if err != nil {
		return "", err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "", errors.New("it is empty")
	}
	return string(b), nil
}

// pathErrCause strips the operation and path of an *fs.PathError, for
// messages that already name the file.
func pathErrCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func policyDeleteCommand() *command {
	return &command{
		name:     "delete",
		synopsis: "Delete an ACL policy",
		usage:    "[flags] NAME",
		help: `Deletes the ACL policy NAME. Tokens that carry the policy lose what it
granted at once. Deleting a policy that does not exist succeeds; the
"default" and "root" policies cannot be deleted.

  $ vigil policy delete app-readonly`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			name, err := policyName(c.args[0])
			if err != nil {
				return c.fail("deleting the policy", err)
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			if err := cl.Sys().DeletePolicy(ctx, name); err != nil {
				return c.fail("deleting "+name, err)
			}
			return c.success("Deleted policy: %s", name)
		},
	}
}

func policyFmtCommand() *command {
	return &command{
		name:     "fmt",
		synopsis: "Format an HCL policy file in place",
		usage:    "[flags] FILE",
		help: `Rewrites the HCL policy in the local FILE in the canonical layout (two-space
indents, one list item per line for multi-line lists, aligned "="),
keeping its comments. It only checks the HCL syntax, and needs no server:
the server checks paths and capabilities when the policy is written.
JSON policies are not supported.

  $ vigil policy fmt ./app-readonly.hcl`,
		run: func(_ context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			file := c.args[0]
			src, err := os.ReadFile(file)
			if err != nil {
				return c.fail("reading policy file "+file, pathErrCause(err))
			}
			out, err := formatPolicy(src)
			if err != nil {
				return c.fail("formatting policy "+file, err)
			}
			if !bytes.Equal(out, src) {
				// os.WriteFile keeps the mode of the existing file.
				if err := os.WriteFile(file, out, 0o644); err != nil {
					return c.fail("writing policy file "+file, pathErrCause(err))
				}
			}
			return c.success("Formatted policy: %s", file)
		},
	}
}

// formatPolicy returns the HCL policy src in the canonical layout of the
// HCL printer. A syntax error names its line and column.
func formatPolicy(src []byte) ([]byte, error) {
	if t := bytes.TrimSpace(src); len(t) > 0 && t[0] == '{' {
		return nil, errors.New("this is a JSON policy; only HCL policies can be formatted")
	}
	out, err := printer.Format(src)
	var pe *parser.PosError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("syntax error at line %d, column %d: %w", pe.Pos.Line, pe.Pos.Column, pe.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("syntax error: %w", err)
	}
	return out, nil
}
