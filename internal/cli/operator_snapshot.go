package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
)

func operatorSnapshotCommand() *command {
	return &command{
		name:     "snapshot",
		synopsis: "Save the server's storage to a file, or restore it from one",
		subs:     []*command{operatorSnapshotSaveCommand(), operatorSnapshotRestoreCommand()},
	}
}

func operatorSnapshotSaveCommand() *command {
	return &command{
		name:     "save",
		synopsis: "Save a snapshot of the server's storage to a file",
		usage:    "[flags] FILE",
		help: `Saves a snapshot of the server's whole storage to FILE, taken while the
server runs: one consistent state that holds every write acknowledged
before it. Needs a token with read and sudo on sys/storage/snapshot.

The snapshot holds the storage as stored: every value encrypted by the
barrier, and the keyring encrypted by the root key, so it opens only with
the cluster's unseal keys (or its auto seal). Keep it as you keep those.

The file is written with mode 0600 to a temporary file beside FILE and
renamed to FILE once the whole snapshot has arrived, so FILE is never
left half written. With "-" the snapshot goes to stdout.

Restore it with "vigil operator snapshot restore FILE".`,
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
			path := c.args[0]
			if path == "-" {
				if _, err := cl.Sys().SnapshotSave(ctx, c.stdout); err != nil {
					return c.fail("saving the snapshot", err)
				}
				return exitOK
			}
			n, err := saveSnapshotFile(ctx, cl, path)
			if err != nil {
				return c.fail("saving the snapshot", err)
			}
			return c.success("Saved a snapshot of %d bytes to %s", n, path)
		},
	}
}

// saveSnapshotFile streams a snapshot into a temporary file beside path
// (mode 0600), syncs it and renames it to path. On any failure the
// temporary file is removed and path is untouched.
func saveSnapshotFile(ctx context.Context, cl *api.Client, path string) (n int64, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*") // mode 0600
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if n, err = cl.Sys().SnapshotSave(ctx, f); err != nil {
		return n, err
	}
	if err = f.Sync(); err != nil {
		return n, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return n, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return n, err
	}
	// Make the rename durable; a failure here leaves a complete file.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}

func operatorSnapshotRestoreCommand() *command {
	return &command{
		name:     "restore",
		synopsis: "Restore the server's storage from a snapshot file",
		usage:    "[flags] FILE",
		help: `Replaces the server's whole storage with the snapshot in FILE ("-" reads it
from stdin). Needs a token with update and sudo on sys/storage/snapshot
(sys/storage/snapshot-force with -force).

The server stops serving while the snapshot streams in, then starts again
on the restored data: everything written since the snapshot was taken is
gone, tokens and leases included. A snapshot that turns out damaged or
truncated is refused and the server keeps its data.

The snapshot must come from this cluster. -force restores one of another
cluster: the server then holds that cluster's data and keys, and stays
sealed until it is unsealed with that cluster's unseal keys (an auto seal
that holds the other cluster's key unseals it at once).`,
		run: func(ctx context.Context, c *call) int {
			force := c.fs.Bool("force", false, "Restore a snapshot of another cluster, replacing this cluster's data and keys.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			var in io.Reader = c.stdin
			if c.args[0] != "-" {
				f, err := os.Open(c.args[0])
				if err != nil {
					return c.fail("reading the snapshot", usageErr("%v", err))
				}
				defer f.Close()
				in = f
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			res, err := cl.Sys().SnapshotRestore(ctx, in, *force)
			if err != nil {
				var re *api.ResponseError
				if errors.As(err, &re) && re.HasMessage("snapshot-force") {
					fmt.Fprintln(c.stderr, "Error restoring the snapshot: it is a snapshot of another cluster. Restore it with -force to replace this cluster's data and keys with it.")
					return exitError
				}
				return c.fail("restoring the snapshot", err)
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(c.stderr, "WARNING! %s\n", w)
			}
			if res.Sealed {
				if c.fmt == output.Table && c.g.field == "" {
					fmt.Fprintln(c.stdout, "The snapshot is restored and the server is sealed: unseal it with the unseal keys of the cluster the snapshot came from (vigil operator unseal).")
				}
				return exitOK
			}
			return c.success("Restored the snapshot.")
		},
	}
}

// operatorMigrateCommand lists `vigil operator migrate` under operator.
// The command itself is offline: it opens storage backends, which this
// package must not, so cmd/vigil runs it (internal/server) before handing
// anything to the CLI; this entry only answers when the CLI is run some
// other way.
func operatorMigrateCommand() *command {
	return &command{
		name:     "migrate",
		synopsis: "Copy all data offline from one storage backend to another",
		usage:    "-config FILE [flags]",
		help: `Copies every entry of one storage backend (storage_source) to another
(storage_destination), as stored, with every server on both stopped. The
vigil binary runs it itself; see "vigil operator migrate -h".`,
		run: func(ctx context.Context, c *call) int {
			for _, a := range c.raw {
				if a == "-h" || a == "-help" || a == "--help" {
					c.printUsage(c.stdout)
					return exitOK
				}
			}
			fmt.Fprintln(c.stderr, "Error: vigil operator migrate runs in the vigil binary itself (it opens the storage, not a server); this build's CLI cannot run it.")
			return exitError
		},
	}
}
