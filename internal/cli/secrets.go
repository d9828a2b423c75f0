package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
)

func secretsCommands() []*command {
	return []*command{
		secretsEnableCommand(),
		secretsDisableCommand(),
		secretsListCommand(),
		secretsTuneCommand(),
		secretsMoveCommand(),
	}
}

// durationFlag checks a TTL flag value and returns it as a Go duration
// string, which the server accepts.
func durationFlag(name, v string) (string, error) {
	if v == "system" {
		return v, nil
	}
	d, err := api.ParseDuration(v)
	if err != nil || d < 0 {
		return "", usageErr("invalid -%s %q: want a duration such as 1h or 3600", name, v)
	}
	return d.String(), nil
}

func secretsEnableCommand() *command {
	return &command{
		name:     "enable",
		synopsis: "Enable a secrets engine",
		usage:    "[flags] TYPE",
		help: `Enables a secrets engine of TYPE (kv, kv-v2, transit, database...) at
-path, which defaults to the type's name ("kv" for kv-v1 and kv-v2).

  $ vigil secrets enable -path=apps -version=2 kv`,
		run: func(ctx context.Context, c *call) int {
			path := c.fs.String("path", "", "Mount `path` (default: the type).")
			desc := c.fs.String("description", "", "Human-friendly `text` describing the engine.")
			version := c.fs.Int("version", 0, "Engine version; for kv, 2 enables versioning (same as options version=2).")
			defTTL := c.fs.String("default-lease-ttl", "", "Default lease `duration` of the engine's secrets (system default if unset).")
			maxTTL := c.fs.String("max-lease-ttl", "", "Maximum lease `duration` of the engine's secrets (system default if unset).")
			local := c.fs.Bool("local", false, "Do not replicate the mount.")
			sealWrap := c.fs.Bool("seal-wrap", false, "Seal-wrap the engine's critical values.")
			visibility := c.fs.String("listing-visibility", "", "Visibility in unauthenticated mount listings: unauth or hidden.")
			opts := mapFlag{}
			c.fs.Var(opts, "options", "Engine option `key=value`; repeatable.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			typ := c.args[0]
			mount := strings.Trim(*path, "/")
			if mount == "" {
				mount = typ
				if typ == "kv-v1" || typ == "kv-v2" {
					mount = "kv"
				}
			}
			in := api.MountInput{
				Type:        typ,
				Description: *desc,
				Local:       *local,
				SealWrap:    *sealWrap,
				Options:     map[string]string(opts),
				Config:      api.MountConfigInput{DefaultLeaseTTL: "0s", MaxLeaseTTL: "0s", ListingVisibility: *visibility},
			}
			var err error
			if *defTTL != "" {
				if in.Config.DefaultLeaseTTL, err = durationFlag("default-lease-ttl", *defTTL); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			if *maxTTL != "" {
				if in.Config.MaxLeaseTTL, err = durationFlag("max-lease-ttl", *maxTTL); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			if *version > 0 {
				in.Options["version"] = strconv.Itoa(*version)
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			if err := cl.Sys().Mount(ctx, mount, in); err != nil {
				return c.fail("enabling", err)
			}
			return c.success("Enabled the %s secrets engine at: %s/", typ, mount)
		},
	}
}

func secretsDisableCommand() *command {
	return &command{
		name:     "disable",
		synopsis: "Disable a secrets engine",
		usage:    "[flags] PATH",
		help:     `Disables the secrets engine at PATH. All its secrets are deleted and its leases revoked.`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			mount := strings.Trim(c.args[0], "/")
			if err := cl.Sys().Unmount(ctx, mount); err != nil {
				return c.fail("disabling the secrets engine at "+mount+"/", err)
			}
			return c.success("Disabled the secrets engine (if it existed) at: %s/", mount)
		},
	}
}

func secretsListCommand() *command {
	return &command{
		name:     "list",
		synopsis: "List the enabled secrets engines",
		usage:    "[flags]",
		help:     `Lists the enabled secrets engines. -detailed adds TTLs, options and more.`,
		run: func(ctx context.Context, c *call) int {
			detailed := c.fs.Bool("detailed", false, "Show more columns (TTLs, options, local, seal wrap, UUID).")
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
			mounts, err := cl.Sys().ListMounts(ctx)
			if err != nil {
				return c.fail("listing secrets engines", err)
			}
			if c.fmt != output.Table {
				if err := c.printer().Structured(mounts); err != nil {
					return c.fail("printing the result", err)
				}
				return exitOK
			}
			header := []string{"Path", "Type", "Accessor", "Description"}
			if *detailed {
				header = []string{"Path", "Type", "Accessor", "Default TTL", "Max TTL", "Options", "Local", "Seal Wrap", "Description", "UUID"}
			}
			var rows [][]string
			for _, p := range sortedKeys(mounts) {
				m := mounts[p]
				if !*detailed {
					rows = append(rows, []string{p, m.Type, m.Accessor, output.Cell(m.Description)})
					continue
				}
				rows = append(rows, []string{
					p, m.Type, m.Accessor, ttlCell(m.Config.DefaultLeaseTTL), ttlCell(m.Config.MaxLeaseTTL),
					optionsCell(m.Options), strconv.FormatBool(m.Local), strconv.FormatBool(m.SealWrap),
					output.Cell(m.Description), m.UUID,
				})
			}
			if err := output.WriteTable(c.stdout, header, rows); err != nil {
				return c.fail("printing the result", err)
			}
			return exitOK
		},
	}
}

func ttlCell(s int) string {
	if s == 0 {
		return "system"
	}
	return output.HumanDuration(int64(s))
}

func optionsCell(m map[string]string) string {
	if len(m) == 0 {
		return "n/a"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+":"+m[k])
	}
	return "map[" + strings.Join(parts, " ") + "]"
}

func secretsTuneCommand() *command {
	return &command{
		name:     "tune",
		synopsis: "Change a secrets engine's settings",
		usage:    "[flags] PATH",
		help: `Changes the settings of the secrets engine at PATH. Only the flags given
are changed.

  $ vigil secrets tune -max-lease-ttl=72h -options=version=2 kv`,
		run: func(ctx context.Context, c *call) int {
			defTTL := c.fs.String("default-lease-ttl", "", "Default lease `duration` (\"system\" resets it).")
			maxTTL := c.fs.String("max-lease-ttl", "", "Maximum lease `duration` (\"system\" resets it).")
			desc := c.fs.String("description", "", "New description `text`.")
			visibility := c.fs.String("listing-visibility", "", "Visibility in unauthenticated mount listings: unauth or hidden.")
			opts := mapFlag{}
			c.fs.Var(opts, "options", "Engine option `key=value`; repeatable (version=2 upgrades kv).")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			in := api.MountConfigInput{ListingVisibility: *visibility}
			var err error
			if c.isSet("default-lease-ttl") {
				if in.DefaultLeaseTTL, err = durationFlag("default-lease-ttl", *defTTL); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			if c.isSet("max-lease-ttl") {
				if in.MaxLeaseTTL, err = durationFlag("max-lease-ttl", *maxTTL); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			if c.isSet("description") {
				in.Description = desc
			}
			if len(opts) > 0 {
				in.Options = opts
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			mount := strings.Trim(c.args[0], "/")
			if err := cl.Sys().TuneMount(ctx, mount, in); err != nil {
				return c.fail("tuning the secrets engine at "+mount+"/", err)
			}
			return c.success("Tuned the secrets engine at: %s/", mount)
		},
	}
}

func secretsMoveCommand() *command {
	return &command{
		name:     "move",
		synopsis: "Move a secrets engine to a new path",
		usage:    "[flags] SOURCE DESTINATION",
		help: `Moves the secrets engine at SOURCE to DESTINATION (POST sys/remount), then
waits until the move has finished. Leases under SOURCE are revoked.`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(2, 2); !ok {
				return code
			}
			src, dst := strings.Trim(c.args[0], "/"), strings.Trim(c.args[1], "/")
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			id, err := cl.Sys().Remount(ctx, src, dst)
			if err != nil {
				return c.fail("moving the secrets engine at "+src+"/", err)
			}
			if id == "" {
				return c.success("Moved secrets engine %s/ to %s/", src, dst)
			}
			if c.fmt == output.Table {
				fmt.Fprintf(c.stdout, "Started moving secrets engine %s/ to %s/, with migration ID %s\n", src, dst, id)
			}
			for {
				st, err := cl.Sys().RemountStatus(ctx, id)
				if err != nil {
					return c.fail("reading the status of migration "+id, err)
				}
				switch st.MigrationInfo.Status {
				case "success":
					if c.fmt != output.Table {
						if err := c.printer().Structured(st); err != nil {
							return c.fail("printing the result", err)
						}
						return exitOK
					}
					return c.success("Finished moving secrets engine %s/ to %s/, with migration ID %s", src, dst, id)
				case "failure":
					fmt.Fprintf(c.stderr, "Error moving secrets engine %s/ to %s/: migration %s failed\n", src, dst, id)
					return exitError
				}
				t := time.NewTimer(c.pollInterval)
				select {
				case <-ctx.Done():
					t.Stop()
					return c.fail("waiting for migration "+id, ctx.Err())
				case <-t.C:
				}
			}
		},
	}
}
