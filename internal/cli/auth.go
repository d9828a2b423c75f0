package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
)

// The auth commands follow `vault auth enable|disable|list|tune`: the same
// flags, requests (sys/auth/<path>, and sys/auth/<path>/tune), success
// lines and list columns. A method's PATH is given without the "auth/"
// prefix ("approle", served under auth/approle/). They share their flags
// and list rendering with the secrets commands (see secrets.go).

func authCommands() []*command {
	return []*command{
		authEnableCommand(),
		authDisableCommand(),
		authListCommand(),
		authTuneCommand(),
	}
}

// authMountArg normalizes an auth method PATH argument, or returns a usage
// error when nothing is left of it.
func authMountArg(arg string) (string, error) {
	p := strings.Trim(strings.TrimSpace(arg), "/")
	if p == "" {
		return "", usageErr("the auth method path is empty")
	}
	return p, nil
}

// tokenTypeUsage documents -token-type.
const tokenTypeUsage = "Token `type` the method issues: service, batch, default-service or default-batch."

func authEnableCommand() *command {
	return &command{
		name:     "enable",
		synopsis: "Enable an auth method",
		usage:    "[flags] TYPE",
		help: `Enables an auth method of TYPE (approle...) at -path, which defaults to
the type. The method then serves logins under auth/<path>/. Needs a root
token.

  $ vigil auth enable approle
  $ vigil auth enable -path=apps -token-type=batch -default-lease-ttl=1h approle`,
		run: func(ctx context.Context, c *call) int {
			mf := addMountFlags(c.fs, mountNouns{thing: "method", Thing: "Method", leased: "the method's tokens"})
			tokenType := c.fs.String("token-type", "", tokenTypeUsage)
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			typ := strings.TrimSpace(c.args[0])
			if typ == "" {
				return c.fail("enabling the auth method", usageErr("the auth method type is empty"))
			}
			mount := mf.mountPath(typ)
			cfg, err := mf.config()
			if err != nil {
				return c.fail("parsing flags", err)
			}
			cfg.TokenType = *tokenType
			in := api.EnableAuthInput{
				Type:        typ,
				Description: *mf.desc,
				Config:      cfg,
				Local:       *mf.local,
				SealWrap:    *mf.sealWrap,
				Options:     map[string]string(mf.opts),
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			if err := cl.Sys().EnableAuth(ctx, mount, in); err != nil {
				return c.fail("enabling "+typ+" auth", err)
			}
			return c.success("Enabled %s auth method at: %s/", typ, mount)
		},
	}
}

func authDisableCommand() *command {
	return &command{
		name:     "disable",
		synopsis: "Disable an auth method",
		usage:    "[flags] PATH",
		help: `Disables the auth method at PATH (the path, not the type). The tokens it
issued are revoked, and logins through it stop working. Needs a root token.

  $ vigil auth disable approle/`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			mount, err := authMountArg(c.args[0])
			if err != nil {
				return c.fail("disabling the auth method", err)
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			if err := cl.Sys().DisableAuth(ctx, mount); err != nil {
				return c.fail("disabling auth method at "+mount+"/", err)
			}
			return c.success("Disabled the auth method (if it existed) at: %s/", mount)
		},
	}
}

func authListCommand() *command {
	return &command{
		name:     "list",
		synopsis: "List the enabled auth methods",
		usage:    "[flags]",
		help: `Lists the enabled auth methods. -detailed adds TTLs, token type,
replication, options and more; a TTL of "system" is the system default.
-format=json prints the server's map of path to method.

  $ vigil auth list -detailed`,
		run: func(ctx context.Context, c *call) int {
			detailed := c.fs.Bool("detailed", false, "Show more columns (TTLs, token type, replication, seal wrap, options, UUID, versions).")
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
			auths, err := cl.Sys().ListAuth(ctx)
			if err != nil {
				return c.fail("listing enabled authentications", err)
			}
			cols := basicMountColumns()
			if *detailed {
				cols = authDetailedColumns()
			}
			return c.printMounts(auths, cols)
		},
	}
}

// authDetailedColumns are the columns of `auth list -detailed`, Vault's;
// TTLs print as in `secrets list -detailed`.
func authDetailedColumns() []mountColumn {
	str := func(title string, f func(m *api.MountOutput) string) mountColumn {
		return mountColumn{title, func(m *api.MountOutput) string { return output.Cell(f(m)) }}
	}
	boolean := func(title string, f func(m *api.MountOutput) bool) mountColumn {
		return mountColumn{title, func(m *api.MountOutput) string { return strconv.FormatBool(f(m)) }}
	}
	return []mountColumn{
		str("Plugin", func(m *api.MountOutput) string { return m.Type }),
		str("Accessor", func(m *api.MountOutput) string { return m.Accessor }),
		{"Default TTL", func(m *api.MountOutput) string { return ttlCell(m.Config.DefaultLeaseTTL) }},
		{"Max TTL", func(m *api.MountOutput) string { return ttlCell(m.Config.MaxLeaseTTL) }},
		str("Token Type", func(m *api.MountOutput) string { return m.Config.TokenType }),
		{"Replication", func(m *api.MountOutput) string {
			if m.Local {
				return "local"
			}
			return "replicated"
		}},
		boolean("Seal Wrap", func(m *api.MountOutput) bool { return m.SealWrap }),
		boolean("External Entropy Access", func(m *api.MountOutput) bool { return m.ExternalEntropyAccess }),
		{"Options", func(m *api.MountOutput) string { return optionsCell(m.Options) }},
		str("Description", func(m *api.MountOutput) string { return m.Description }),
		str("UUID", func(m *api.MountOutput) string { return m.UUID }),
		str("Version", func(m *api.MountOutput) string { return m.PluginVersion }),
		str("Running Version", func(m *api.MountOutput) string { return m.RunningVersion }),
		str("Running SHA256", func(m *api.MountOutput) string { return m.RunningSha256 }),
		str("Deprecation Status", func(m *api.MountOutput) string { return m.DeprecationStatus }),
	}
}

func authTuneCommand() *command {
	return &command{
		name:     "tune",
		synopsis: "Change an auth method's settings",
		usage:    "[flags] PATH",
		help: `Changes the settings of the auth method at PATH (the path, not the type).
Only the flags given are sent. Needs a root token.

  $ vigil auth tune -default-lease-ttl=72h -token-type=batch approle/`,
		run: func(ctx context.Context, c *call) int {
			tf := addTuneFlags(c.fs, "Method option `key=value`; repeatable.")
			tokenType := c.fs.String("token-type", "", tokenTypeUsage)
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			mount, err := authMountArg(c.args[0])
			if err != nil {
				return c.fail("tuning the auth method", err)
			}
			in, err := tf.input(c)
			if err != nil {
				return c.fail("parsing flags", err)
			}
			in.TokenType = *tokenType
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			if err := cl.Sys().TuneAuth(ctx, mount, in); err != nil {
				return c.fail("tuning auth method "+mount+"/", err)
			}
			return c.success("Tuned the auth method at: %s/", mount)
		},
	}
}
