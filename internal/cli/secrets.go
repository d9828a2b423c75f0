package cli

import (
	"context"
	"flag"
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

// The enable, tune and list commands of `secrets` and `auth` share their
// flags and their listing: both manage mounts, one table each on the
// server (sys/mounts, sys/auth), described by the same api types.

// mountNouns are the words the help of the shared mount flags uses for one
// kind of mount.
type mountNouns struct {
	thing  string // "engine"
	Thing  string // "Engine"
	leased string // what the TTLs apply to: "the engine's secrets"
}

// ttlFlags are the -default-lease-ttl and -max-lease-ttl flags.
type ttlFlags struct {
	def, max *string
}

// mountFlags are the flags of the enable commands.
type mountFlags struct {
	path, desc, visibility *string
	local, sealWrap        *bool
	ttl                    ttlFlags
	opts                   mapFlag
}

func addMountFlags(fs *flag.FlagSet, n mountNouns) *mountFlags {
	m := &mountFlags{opts: mapFlag{}}
	m.path = fs.String("path", "", "Mount `path` (default: the type).")
	m.desc = fs.String("description", "", "Human-friendly `text` describing the "+n.thing+".")
	m.ttl = ttlFlags{
		def: fs.String("default-lease-ttl", "", "Default lease `duration` of "+n.leased+" (system default if unset)."),
		max: fs.String("max-lease-ttl", "", "Maximum lease `duration` of "+n.leased+" (system default if unset)."),
	}
	m.local = fs.Bool("local", false, "Do not replicate the mount.")
	m.sealWrap = fs.Bool("seal-wrap", false, "Seal-wrap the "+n.thing+"'s critical values.")
	m.visibility = fs.String("listing-visibility", "", "Visibility in unauthenticated mount listings: unauth or hidden.")
	fs.Var(m.opts, "options", n.Thing+" option `key=value`; repeatable.")
	return m
}

// mountPath is -path without its slashes, or def when it is empty.
func (m *mountFlags) mountPath(def string) string {
	if p := strings.Trim(*m.path, "/"); p != "" {
		return p
	}
	return def
}

// config is the config of an enable request. A TTL not given is sent as
// "0s", the system default, as Vault's CLI does.
func (m *mountFlags) config() (api.MountConfigInput, error) {
	cfg := api.MountConfigInput{DefaultLeaseTTL: "0s", MaxLeaseTTL: "0s", ListingVisibility: *m.visibility}
	var err error
	if *m.ttl.def != "" {
		if cfg.DefaultLeaseTTL, err = durationFlag("default-lease-ttl", *m.ttl.def); err != nil {
			return cfg, err
		}
	}
	if *m.ttl.max != "" {
		if cfg.MaxLeaseTTL, err = durationFlag("max-lease-ttl", *m.ttl.max); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// tuneFlags are the flags of the tune commands.
type tuneFlags struct {
	ttl              ttlFlags
	desc, visibility *string
	opts             mapFlag
}

// addTuneFlags adds the tune flags; optionsUsage documents -options.
func addTuneFlags(fs *flag.FlagSet, optionsUsage string) *tuneFlags {
	t := &tuneFlags{opts: mapFlag{}}
	t.ttl = ttlFlags{
		def: fs.String("default-lease-ttl", "", "Default lease `duration` (\"system\" resets it)."),
		max: fs.String("max-lease-ttl", "", "Maximum lease `duration` (\"system\" resets it)."),
	}
	t.desc = fs.String("description", "", "New description `text`.")
	t.visibility = fs.String("listing-visibility", "", "Visibility in unauthenticated mount listings: unauth or hidden.")
	fs.Var(t.opts, "options", optionsUsage)
	return t
}

// input is the tune request: only the settings whose flags were given
// (a non-empty -listing-visibility, a non-empty -options).
func (t *tuneFlags) input(c *call) (api.MountConfigInput, error) {
	in := api.MountConfigInput{ListingVisibility: *t.visibility}
	var err error
	if c.isSet("default-lease-ttl") {
		if in.DefaultLeaseTTL, err = durationFlag("default-lease-ttl", *t.ttl.def); err != nil {
			return in, err
		}
	}
	if c.isSet("max-lease-ttl") {
		if in.MaxLeaseTTL, err = durationFlag("max-lease-ttl", *t.ttl.max); err != nil {
			return in, err
		}
	}
	if c.isSet("description") {
		in.Description = t.desc
	}
	if len(t.opts) > 0 {
		in.Options = t.opts
	}
	return in, nil
}

// mountColumn is a column of a mount listing.
type mountColumn struct {
	title string
	cell  func(m *api.MountOutput) string
}

// basicMountColumns are the columns after Path of a listing without
// -detailed, in `secrets list` and `auth list` alike (Vault's).
func basicMountColumns() []mountColumn {
	return []mountColumn{
		{"Type", func(m *api.MountOutput) string { return m.Type }},
		{"Accessor", func(m *api.MountOutput) string { return m.Accessor }},
		{"Description", func(m *api.MountOutput) string { return output.Cell(m.Description) }},
	}
}

// printMounts prints mounts keyed by path: the map itself in JSON or YAML,
// else a table sorted by path with a Path column and then cols.
func (c *call) printMounts(mounts map[string]*api.MountOutput, cols []mountColumn) int {
	if c.fmt != output.Table {
		if err := c.printer().Structured(mounts); err != nil {
			return c.fail("printing the result", err)
		}
		return exitOK
	}
	header := []string{"Path"}
	for _, col := range cols {
		header = append(header, col.title)
	}
	var rows [][]string
	for _, p := range sortedKeys(mounts) {
		m := mounts[p]
		if m == nil { // a null entry: print its path rather than fail
			m = &api.MountOutput{}
		}
		row := []string{p}
		for _, col := range cols {
			row = append(row, col.cell(m))
		}
		rows = append(rows, row)
	}
	if err := output.WriteTable(c.stdout, header, rows); err != nil {
		return c.fail("printing the result", err)
	}
	return exitOK
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
			mf := addMountFlags(c.fs, mountNouns{thing: "engine", Thing: "Engine", leased: "the engine's secrets"})
			version := c.fs.Int("version", 0, "Engine version; for kv, 2 enables versioning (same as options version=2).")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			typ := c.args[0]
			def := typ
			if typ == "kv-v1" || typ == "kv-v2" {
				def = "kv"
			}
			mount := mf.mountPath(def)
			cfg, err := mf.config()
			if err != nil {
				return c.fail("parsing flags", err)
			}
			in := api.MountInput{
				Type:        typ,
				Description: *mf.desc,
				Local:       *mf.local,
				SealWrap:    *mf.sealWrap,
				Options:     map[string]string(mf.opts),
				Config:      cfg,
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
			cols := basicMountColumns()
			if *detailed {
				cols = secretsDetailedColumns()
			}
			return c.printMounts(mounts, cols)
		},
	}
}

// secretsDetailedColumns are the columns of `secrets list -detailed`.
func secretsDetailedColumns() []mountColumn {
	return []mountColumn{
		{"Type", func(m *api.MountOutput) string { return m.Type }},
		{"Accessor", func(m *api.MountOutput) string { return m.Accessor }},
		{"Default TTL", func(m *api.MountOutput) string { return ttlCell(m.Config.DefaultLeaseTTL) }},
		{"Max TTL", func(m *api.MountOutput) string { return ttlCell(m.Config.MaxLeaseTTL) }},
		{"Options", func(m *api.MountOutput) string { return optionsCell(m.Options) }},
		{"Local", func(m *api.MountOutput) string { return strconv.FormatBool(m.Local) }},
		{"Seal Wrap", func(m *api.MountOutput) string { return strconv.FormatBool(m.SealWrap) }},
		{"Description", func(m *api.MountOutput) string { return output.Cell(m.Description) }},
		{"UUID", func(m *api.MountOutput) string { return m.UUID }},
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
			tf := addTuneFlags(c.fs, "Engine option `key=value`; repeatable (version=2 upgrades kv).")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			in, err := tf.input(c)
			if err != nil {
				return c.fail("parsing flags", err)
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
