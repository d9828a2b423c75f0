package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
)

func kvCommands() []*command {
	return []*command{
		kvGetCommand(),
		kvPutCommand(),
		kvPatchCommand(),
		kvDeleteCommand(),
		kvVersionsCommand("undelete", "Restore soft-deleted versions of a secret", "Restores"),
		kvVersionsCommand("destroy", "Permanently destroy versions of a secret", "Permanently destroys"),
		kvListCommand(),
		kvRollbackCommand(),
		kvEnableVersioningCommand(),
		{name: "metadata", synopsis: "Read and write KV v2 metadata", subs: kvMetadataCommands()},
	}
}

// kvTarget is where a kv command's path lives.
type kvTarget struct {
	mount string // mount path with a trailing slash; "" when unknown (v1)
	v2    bool
	full  string // the full logical path the user named, "secret/app/db"
	rel   string // the part under the mount, "app/db"
}

// path returns the logical path for the operation: for KV v2, the mount,
// then prefix ("data", "metadata", "delete"...), then the key; for KV v1,
// the path as given.
func (t kvTarget) path(prefix string) string {
	if !t.v2 {
		return t.full
	}
	return t.mount + prefix + "/" + t.rel
}

// kvFlags registers -mount and returns its value.
func kvFlags(c *call) *string {
	return c.fs.String("mount", "", "Mount `path` of the KV engine; the argument is then the key under it (secret + app/db).")
}

// resolve finds the mount that owns the user's path and its KV version,
// with the preflight the Vault CLI makes: GET sys/internal/ui/mounts/PATH.
// A 404 means an old server without the endpoint: the path is used as a
// KV v1 path.
func (c *call) resolve(ctx context.Context, cl *api.Client, mount, arg string) (kvTarget, error) {
	arg = cleanPath(arg)
	t := kvTarget{full: arg}
	probe := arg
	if mount != "" {
		mount = strings.Trim(mount, "/")
		t.full = mount + "/" + arg
		probe = mount
	}
	// As in Vault's CLI, the preflight is never wrapped (-wrap-ttl is
	// for the command's own request).
	m, err := cl.WithWrapTTL(0).Sys().MountFor(ctx, probe)
	if err != nil {
		return t, err
	}
	if m == nil {
		return t, nil
	}
	mp := m.Path
	if mp == "" && mount != "" {
		mp = mount + "/"
	}
	if mp == "" {
		return t, nil
	}
	m.Path = ensureSlash(mp)
	t.mount = m.Path
	t.v2 = m.Options["version"] == "2"
	t.rel = m.Relative(t.full)
	return t, nil
}

// kvSetup parses flags, checks arguments and resolves the target: the
// common start of every kv command. Commands register their flags before
// calling it.
func (c *call) kvSetup(ctx context.Context, mount *string, minArgs, maxArgs int) (*api.Client, kvTarget, int, bool) {
	if code, done := c.parse(); done {
		return nil, kvTarget{}, code, false
	}
	if code, ok := c.nargs(minArgs, maxArgs); !ok {
		return nil, kvTarget{}, code, false
	}
	cl, code, ok := c.client()
	if !ok {
		return nil, kvTarget{}, code, false
	}
	t, err := c.resolve(ctx, cl, *mount, c.args[0])
	if err != nil {
		return nil, kvTarget{}, c.fail("reading the mount of "+c.args[0], err), false
	}
	return cl, t, 0, true
}

func kvGetCommand() *command {
	return &command{
		name:     "get",
		synopsis: "Read a secret",
		usage:    "[flags] KEY",
		help: `Reads the secret at KEY. For KV v2 mounts it prints the version's metadata
and data; -version reads an older version. Exits 2 when there is no value.

  $ vigil kv get secret/app
  $ vigil kv get -mount=secret -field=password app
  $ vigil kv get -wrap-ttl=5m -field=wrapping_token secret/app`,
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			version := c.fs.Int("version", 0, "Version to read (KV v2); 0 is the latest.")
			c.wrapFlag()
			cl, t, code, ok := c.kvSetup(ctx, mount, 1, 1)
			if !ok {
				return code
			}
			path := t.path("data")
			var q url.Values
			if *version > 0 {
				if !t.v2 {
					return c.usageError("-version needs a KV v2 mount")
				}
				q = url.Values{"version": {strconv.Itoa(*version)}}
			}
			s, err := cl.Logical().ReadWithData(ctx, path, q)
			if err != nil {
				return c.fail("reading "+path, err)
			}
			if s == nil {
				fmt.Fprintf(c.stderr, "No value found at %s\n", path)
				return exitUsage
			}
			if !t.v2 || s.WrapInfo != nil {
				return c.printSecret(s)
			}
			data, _ := s.Data["data"].(map[string]any)
			meta, _ := s.Data["metadata"].(map[string]any)
			if c.g.field != "" {
				if data == nil {
					fmt.Fprintf(c.stderr, "No value found at %s\n", path)
					return exitUsage
				}
				return c.printField(data, c.g.field)
			}
			p := c.printer()
			if c.fmt != output.Table {
				if err := p.Structured(s); err != nil {
					return c.fail("printing the result", err)
				}
			} else {
				p.Warnings(s)
				c.printKVTable(path, meta, data)
			}
			if data == nil {
				fmt.Fprintf(c.stderr, "No value found at %s: version %s is deleted or destroyed\n", path, output.Raw(meta["version"]))
				return exitUsage
			}
			return exitOK
		},
	}
}

// printKVTable prints a KV v2 result as Vault does: the path, the
// metadata and (when not nil) the data.
func (c *call) printKVTable(path string, meta, data map[string]any) {
	w := c.stdout
	fmt.Fprintln(w, output.Header("Secret Path", 2))
	fmt.Fprintln(w, path)
	if meta != nil {
		fmt.Fprintln(w)
		fmt.Fprintln(w, output.Header("Metadata", 7))
		_ = output.WriteKeyValues(w, output.MapRows(meta))
	}
	if data != nil {
		fmt.Fprintln(w)
		fmt.Fprintln(w, output.Header("Data", 6))
		_ = output.WriteKeyValues(w, output.MapRows(data))
	}
}

// printKVWrite prints the answer to a KV write: v2 returns the new
// version's metadata; v1 returns nothing.
func (c *call) printKVWrite(t kvTarget, path string, s *api.Secret) int {
	if s == nil {
		return c.success("Data written to: %s", path)
	}
	if c.g.field != "" {
		return c.printField(secretFields(s), c.g.field)
	}
	if c.fmt != output.Table || !t.v2 {
		return c.printSecret(s)
	}
	c.printer().Warnings(s)
	c.printKVTable(path, s.Data, nil)
	return exitOK
}

// casFlag registers -cas; -1 means not set.
func casFlag(c *call) *int {
	return c.fs.Int("cas", -1, "Check-and-set `version` (KV v2): write only if the current version is this (0: only if the key does not exist).")
}

// kvBody is the KV v2 write body.
func kvBody(data map[string]any, cas int) map[string]any {
	opts := map[string]any{}
	if cas >= 0 {
		opts["cas"] = cas
	}
	return map[string]any{"data": data, "options": opts}
}

func kvPutCommand() *command {
	return &command{
		name:     "put",
		synopsis: "Write a secret (replacing it; a new version on KV v2)",
		usage:    "[flags] KEY [KEY=VALUE... | -]",
		help: `Writes the data to KEY, replacing what was there. On KV v2 mounts this
creates a new version. VALUE may be @file or -; "-" alone reads a JSON
object from stdin.

  $ vigil kv put secret/app user=admin password=@pw.txt`,
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			cas := casFlag(c)
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, -1); !ok {
				return code
			}
			data, err := parseData(c.stdin, c.args[1:])
			if err != nil {
				return c.fail("parsing the data", err)
			}
			if len(data) == 0 {
				return c.usageError("Must supply data")
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			t, err := c.resolve(ctx, cl, *mount, c.args[0])
			if err != nil {
				return c.fail("reading the mount of "+c.args[0], err)
			}
			path := t.path("data")
			body := data
			if t.v2 {
				body = kvBody(data, *cas)
			} else if *cas >= 0 {
				return c.usageError("-cas needs a KV v2 mount")
			}
			s, err := cl.Logical().Write(ctx, path, body)
			if err != nil {
				return c.fail("writing data to "+path, err)
			}
			return c.printKVWrite(t, path, s)
		},
	}
}

func kvPatchCommand() *command {
	return &command{
		name:     "patch",
		synopsis: "Change some keys of a secret (KV v2)",
		usage:    "[flags] KEY [KEY=VALUE... | -]",
		help: `Changes the given keys of the latest version of KEY and keeps the others,
writing a new version. By default it sends a JSON merge patch (PATCH) and
falls back to read-then-write when the server or the policy refuses PATCH;
-method=patch never falls back, -method=rw always reads then writes (with
check-and-set on the version read).`,
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			cas := casFlag(c)
			method := c.fs.String("method", "", "How to patch (`method`): patch (HTTP PATCH) or rw (read, then write); default: patch, falling back to rw.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, -1); !ok {
				return code
			}
			switch *method {
			case "", "patch", "rw":
			default:
				return c.usageError("-method must be patch or rw, not %q", *method)
			}
			data, err := parseData(c.stdin, c.args[1:])
			if err != nil {
				return c.fail("parsing the data", err)
			}
			if len(data) == 0 {
				return c.usageError("Must supply data")
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			t, err := c.resolve(ctx, cl, *mount, c.args[0])
			if err != nil {
				return c.fail("reading the mount of "+c.args[0], err)
			}
			if !t.v2 {
				fmt.Fprintln(c.stderr, "Error: kv patch needs a KV v2 mount; use kv put on KV v1")
				return exitUsage
			}
			path := t.path("data")
			var s *api.Secret
			if *method != "rw" {
				s, err = cl.Logical().Patch(ctx, path, kvBody(data, *cas))
				if st := api.StatusCode(err); *method == "" && (st == http.StatusMethodNotAllowed || st == http.StatusForbidden) {
					s, err = c.patchRW(ctx, cl, path, data, *cas)
				}
			} else {
				s, err = c.patchRW(ctx, cl, path, data, *cas)
			}
			if errors.Is(err, errNoValue) || api.StatusCode(err) == http.StatusNotFound {
				fmt.Fprintf(c.stderr, "No value found at %s\n", path)
				return exitUsage
			}
			if err != nil {
				return c.fail("writing data to "+path, err)
			}
			return c.printKVWrite(t, path, s)
		},
	}
}

// errNoValue says a KV read found nothing.
var errNoValue = errors.New("no value found")

// patchRW reads the latest version, merges data into it and writes it back
// with check-and-set on the version read (or on cas when given).
func (c *call) patchRW(ctx context.Context, cl *api.Client, path string, data map[string]any, cas int) (*api.Secret, error) {
	cur, err := cl.Logical().Read(ctx, path)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, errNoValue
	}
	old, _ := cur.Data["data"].(map[string]any)
	if old == nil {
		return nil, errNoValue
	}
	if cas < 0 {
		meta, _ := cur.Data["metadata"].(map[string]any)
		v, err := strconv.Atoi(output.Raw(meta["version"]))
		if err != nil {
			return nil, fmt.Errorf("the server returned no version for %s", path)
		}
		cas = v
	}
	merged := make(map[string]any, len(old)+len(data))
	for k, v := range old {
		merged[k] = v
	}
	for k, v := range data {
		merged[k] = v
	}
	return cl.Logical().Write(ctx, path, kvBody(merged, cas))
}

// versionsFlag registers -versions.
func versionsFlag(c *call) *string {
	return c.fs.String("versions", "", "Comma-separated `versions` to act on (KV v2), e.g. 1,3.")
}

// parseVersions turns "1, 3" into ["1","3"] (strings, as the Vault CLI
// sends them).
func parseVersions(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, usageErr("invalid version %q in -versions: versions are positive integers", p)
		}
		out = append(out, p)
	}
	return out, nil
}

func kvDeleteCommand() *command {
	return &command{
		name:     "delete",
		synopsis: "Delete a secret (soft delete of versions on KV v2)",
		usage:    "[flags] KEY",
		help: `Deletes the latest version of KEY on KV v2 (it can be undeleted), or the
versions given with -versions. On KV v1 the key is removed.`,
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			versions := versionsFlag(c)
			cl, t, code, ok := c.kvSetup(ctx, mount, 1, 1)
			if !ok {
				return code
			}
			var err error
			var path string
			if *versions != "" {
				if !t.v2 {
					return c.usageError("-versions needs a KV v2 mount")
				}
				vs, perr := parseVersions(*versions)
				if perr != nil {
					return c.fail("parsing -versions", perr)
				}
				path = t.path("delete")
				_, err = cl.Logical().Write(ctx, path, map[string]any{"versions": vs})
			} else {
				path = t.path("data")
				_, err = cl.Logical().Delete(ctx, path)
			}
			if err != nil {
				return c.fail("deleting "+path, err)
			}
			return c.success("Data deleted (if it existed) at: %s", path)
		},
	}
}

// kvVersionsCommand builds undelete and destroy, which post -versions to
// MOUNT/undelete/KEY or MOUNT/destroy/KEY.
func kvVersionsCommand(name, synopsis, verb string) *command {
	return &command{
		name:     name,
		synopsis: synopsis,
		usage:    "[flags] -versions=N[,N...] KEY",
		help:     verb + " the versions of KEY given with -versions (KV v2 only).",
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			versions := versionsFlag(c)
			cl, t, code, ok := c.kvSetup(ctx, mount, 1, 1)
			if !ok {
				return code
			}
			if !t.v2 {
				fmt.Fprintf(c.stderr, "Error: kv %s needs a KV v2 mount\n", name)
				return exitUsage
			}
			vs, err := parseVersions(*versions)
			if err != nil {
				return c.fail("parsing -versions", err)
			}
			if len(vs) == 0 {
				return c.usageError("No versions provided, use the \"-versions\" flag")
			}
			path := t.path(name)
			if _, err := cl.Logical().Write(ctx, path, map[string]any{"versions": vs}); err != nil {
				return c.fail("writing to "+path, err)
			}
			return c.success("Data written to: %s", path)
		},
	}
}

func kvListCommand() *command {
	return &command{
		name:     "list",
		synopsis: "List the keys under a path",
		usage:    "[flags] PATH",
		help:     `Lists the keys under PATH (on KV v2, from MOUNT/metadata/PATH). Exits 2 when there is nothing.`,
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			cl, t, code, ok := c.kvSetup(ctx, mount, 1, 1)
			if !ok {
				return code
			}
			return c.list(ctx, cl, ensureSlash(t.path("metadata")))
		},
	}
}

func kvRollbackCommand() *command {
	return &command{
		name:     "rollback",
		synopsis: "Make an older version the latest again (KV v2)",
		usage:    "[flags] -version=N KEY",
		help: `Writes the data of version N of KEY as a new latest version, with
check-and-set on the current version.`,
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			version := c.fs.Int("version", 0, "The `version` to roll back to.")
			cl, t, code, ok := c.kvSetup(ctx, mount, 1, 1)
			if !ok {
				return code
			}
			if *version <= 0 {
				return c.usageError("-version must be a positive version number")
			}
			if !t.v2 {
				fmt.Fprintln(c.stderr, "Error: kv rollback needs a KV v2 mount")
				return exitUsage
			}
			path := t.path("data")
			cur, err := cl.Logical().Read(ctx, path)
			if err != nil {
				return c.fail("reading "+path, err)
			}
			if cur == nil {
				fmt.Fprintf(c.stderr, "No value found at %s\n", path)
				return exitUsage
			}
			curMeta, _ := cur.Data["metadata"].(map[string]any)
			current, err := strconv.Atoi(output.Raw(curMeta["version"]))
			if err != nil {
				return c.fail("reading "+path, errors.New("the server returned no current version"))
			}
			if *version > current {
				return c.usageError("version %d does not exist (the latest is %d)", *version, current)
			}
			old, err := cl.Logical().ReadWithData(ctx, path, url.Values{"version": {strconv.Itoa(*version)}})
			if err != nil {
				return c.fail("reading version "+strconv.Itoa(*version)+" of "+path, err)
			}
			if old == nil {
				fmt.Fprintf(c.stderr, "No value found at %s version %d\n", path, *version)
				return exitUsage
			}
			data, _ := old.Data["data"].(map[string]any)
			if data == nil {
				fmt.Fprintf(c.stderr, "Error: version %d of %s is deleted or destroyed; undelete it first\n", *version, path)
				return exitError
			}
			s, err := cl.Logical().Write(ctx, path, kvBody(data, current))
			if err != nil {
				return c.fail("writing data to "+path, err)
			}
			return c.printKVWrite(t, path, s)
		},
	}
}

func kvEnableVersioningCommand() *command {
	return &command{
		name:     "enable-versioning",
		synopsis: "Turn a KV v1 mount into KV v2",
		usage:    "[flags] MOUNT",
		help:     `Upgrades the KV v1 engine at MOUNT to KV v2 (POST sys/mounts/MOUNT/tune with options.version=2).`,
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
			if err := cl.Sys().TuneMount(ctx, mount, api.MountConfigInput{Options: map[string]string{"version": "2"}}); err != nil {
				return c.fail("tuning "+mount, err)
			}
			return c.success("Tuned the secrets engine at: %s/", mount)
		},
	}
}

// jsonInt reads an integer from a decoded JSON value.
func jsonInt(v any) (int, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	case float64:
		return int(n), true
	case int:
		return n, true
	}
	return 0, false
}
