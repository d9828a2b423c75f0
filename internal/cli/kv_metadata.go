package cli

import (
	"context"
	"fmt"
	"sort"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
)

func kvMetadataCommands() []*command {
	return []*command{
		kvMetadataGetCommand(),
		kvMetadataWriteCommand("put", "Set a key's metadata (KV v2)",
			`Sets KEY's settings and custom metadata (PUT MOUNT/metadata/KEY). Only the
flags given are sent; custom metadata given replaces the whole map. The
key is created if it does not exist.

  $ vigil kv metadata put -max-versions=5 -custom-metadata=owner=ops secret/app`),
		kvMetadataWriteCommand("patch", "Change some of a key's metadata (KV v2)",
			`Changes only the given settings and custom metadata keys of KEY (PATCH
MOUNT/metadata/KEY, a JSON merge patch). -remove-custom-metadata removes
custom metadata keys.`),
		kvMetadataDeleteCommand(),
	}
}

// metadataTarget resolves a kv metadata command's key and insists on KV v2.
func (c *call) metadataTarget(ctx context.Context, mount *string) (*api.Client, kvTarget, int, bool) {
	cl, t, code, ok := c.kvSetup(ctx, mount, 1, 1)
	if !ok {
		return nil, t, code, false
	}
	if !t.v2 {
		fmt.Fprintln(c.stderr, "Error: metadata is only available on KV v2 mounts")
		return nil, t, exitUsage, false
	}
	return cl, t, 0, true
}

func kvMetadataGetCommand() *command {
	return &command{
		name:     "get",
		synopsis: "Read a key's metadata and version list",
		usage:    "[flags] KEY",
		help:     `Reads KEY's metadata (GET MOUNT/metadata/KEY): settings, custom metadata and every version's state.`,
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			cl, t, code, ok := c.metadataTarget(ctx, mount)
			if !ok {
				return code
			}
			path := t.path("metadata")
			s, err := cl.Logical().Read(ctx, path)
			if err != nil {
				return c.fail("reading "+path, err)
			}
			if s == nil {
				fmt.Fprintf(c.stderr, "No value found at %s\n", path)
				return exitUsage
			}
			if c.g.field != "" {
				return c.printField(s.Data, c.g.field)
			}
			if c.fmt != output.Table {
				return c.printSecret(s)
			}
			c.printer().Warnings(s)
			w := c.stdout
			fmt.Fprintln(w, output.Header("Metadata Path", 3))
			fmt.Fprintln(w, path)
			fmt.Fprintln(w)
			fmt.Fprintln(w, output.Header("Metadata", 10))
			rows := []output.Row{}
			for _, r := range output.MapRows(s.Data) {
				if r.Key != "versions" {
					rows = append(rows, r)
				}
			}
			_ = output.WriteKeyValues(w, rows)
			versions, _ := s.Data["versions"].(map[string]any)
			type ver struct {
				n    int
				name string
			}
			var list []ver
			for k := range versions {
				var n int
				if _, err := fmt.Sscan(k, &n); err == nil {
					list = append(list, ver{n, k})
				}
			}
			sort.Slice(list, func(i, j int) bool { return list[i].n < list[j].n })
			for _, v := range list {
				info, _ := versions[v.name].(map[string]any)
				fmt.Fprintln(w)
				fmt.Fprintln(w, output.Header("Version "+v.name, 6))
				_ = output.WriteKeyValues(w, output.MapRows(info))
			}
			return exitOK
		},
	}
}

// kvMetadataWriteCommand builds metadata put and patch.
func kvMetadataWriteCommand(name, synopsis, help string) *command {
	return &command{
		name:     name,
		synopsis: synopsis,
		usage:    "[flags] KEY",
		help:     help,
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			maxVersions := c.fs.Int("max-versions", 0, "Number of versions to keep (0: the mount's setting).")
			casRequired := c.fs.Bool("cas-required", false, "Require check-and-set on every write to the key.")
			deleteAfter := c.fs.String("delete-version-after", "", "Soft-delete versions this long after they are written (`duration`, e.g. 72h; 0s turns it off).")
			custom := mapFlag{}
			c.fs.Var(custom, "custom-metadata", "Custom metadata `key=value`; repeat for several keys.")
			var remove listFlag
			if name == "patch" {
				c.fs.Var(&remove, "remove-custom-metadata", "Custom metadata `key` to remove; repeatable.")
			}
			cl, t, code, ok := c.metadataTarget(ctx, mount)
			if !ok {
				return code
			}
			data := map[string]any{}
			if c.isSet("max-versions") {
				if *maxVersions < 0 {
					return c.usageError("-max-versions must not be negative")
				}
				data["max_versions"] = *maxVersions
			}
			if c.isSet("cas-required") {
				data["cas_required"] = *casRequired
			}
			if c.isSet("delete-version-after") {
				d, err := api.ParseDuration(*deleteAfter)
				if err != nil || d < 0 {
					return c.usageError("invalid -delete-version-after %q: want a duration such as 72h", *deleteAfter)
				}
				data["delete_version_after"] = d.String()
			}
			if len(custom) > 0 || len(remove) > 0 {
				cm := map[string]any{}
				for k, v := range custom {
					cm[k] = v
				}
				for _, k := range remove {
					cm[k] = nil
				}
				data["custom_metadata"] = cm
			}
			path := t.path("metadata")
			var err error
			if name == "patch" {
				_, err = cl.Logical().Patch(ctx, path, data)
			} else {
				_, err = cl.Logical().Write(ctx, path, data)
			}
			if err != nil {
				return c.fail("writing to "+path, err)
			}
			return c.success("Data written to: %s", path)
		},
	}
}

func kvMetadataDeleteCommand() *command {
	return &command{
		name:     "delete",
		synopsis: "Delete a key with all its versions (KV v2)",
		usage:    "[flags] KEY",
		help:     `Permanently deletes KEY, its metadata and every version (DELETE MOUNT/metadata/KEY).`,
		run: func(ctx context.Context, c *call) int {
			mount := kvFlags(c)
			cl, t, code, ok := c.metadataTarget(ctx, mount)
			if !ok {
				return code
			}
			path := t.path("metadata")
			if _, err := cl.Logical().Delete(ctx, path); err != nil {
				return c.fail("deleting "+path, err)
			}
			return c.success("Data deleted (if it existed) at: %s", path)
		},
	}
}
