package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"

	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/logging"
	"github.com/vigil-secrets/vigil/internal/storage"
)

const migrateUsage = `Usage: vigil operator migrate -config=migrate.hcl

  Copies every entry of one storage backend to another, offline: stop every
  server that uses either store first. Entries are copied as stored (barrier
  ciphertext, the keyring, the seal record), so the copy opens with the
  same unseal keys or auto seal, and nothing is ever decrypted.

    storage_source "bolt" {
      path = "/var/lib/vigil/vigil.db"
    }
    storage_destination "postgresql" {
      connection_url = "postgres://vigil@db.internal/vigil"
    }

  As for the server, VIGIL_PG_CONNECTION_URL (or VAULT_PG_CONNECTION_URL)
  replaces the connection_url of a postgresql block, of either side.

  The destination must be empty (a new bolt path, an empty table): the
  command refuses one that holds any key, and refuses to copy a store onto
  itself. Where the destination can, it takes the whole copy at once (a
  restore), so a copy that fails or is interrupted leaves it empty;
  otherwise entries go in transactions of up to 1000. At the end the
  destination's keys are counted against the source's.

Options:
`

// migrateBatch is the number of entries per transaction when the
// destination cannot take a restore; migrateProgress how often progress
// is printed.
const (
	migrateBatch    = 1000
	migrateProgress = 10000
)

// Migrate is `vigil operator migrate`: it returns the process exit code.
func Migrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("operator migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path to the migration configuration (storage_source and storage_destination blocks)")
	logLevel := fs.String("log-level", "info", "log level of the storage backends: trace, debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprint(stdout, migrateUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil operator migrate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "vigil operator migrate: a -config file is required (storage_source and storage_destination blocks)")
		return 2
	}
	cfg, err := config.LoadMigrate(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "vigil operator migrate: %v\n", err)
		return 1
	}
	logger, _, err := logging.New(logging.Options{Level: *logLevel, Format: "text", Output: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "vigil operator migrate: %v\n", err)
		return 2
	}
	n, err := migrate(ctx, cfg, stdout, logger)
	if err != nil {
		fmt.Fprintf(stderr, "vigil operator migrate: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Success! Copied %d entries from %s to %s.\n", n, describe(cfg.Source), describe(cfg.Destination))
	return 0
}

// describe names a store for messages (never a secret: a connection
// string may hold a password, so only the type is given for those).
func describe(s config.Storage) string {
	if s.Type == "bolt" && s.Bolt != nil {
		return fmt.Sprintf("bolt (%s)", s.Bolt.Path)
	}
	return s.Type
}

// sameStorage reports whether two storage blocks name the same store:
// the same bolt file, or identical blocks of another type.
func sameStorage(a, b config.Storage) bool {
	if a.Type != b.Type {
		return false
	}
	if a.Type == "bolt" && a.Bolt != nil && b.Bolt != nil {
		pa, errA := filepath.Abs(a.Bolt.Path)
		pb, errB := filepath.Abs(b.Bolt.Path)
		if errA != nil || errB != nil {
			return a.Bolt.Path == b.Bolt.Path
		}
		if pa == pb {
			return true
		}
		fa, errA := os.Stat(pa)
		fb, errB := os.Stat(pb)
		return errA == nil && errB == nil && os.SameFile(fa, fb)
	}
	a.Line, b.Line = 0, 0
	return reflect.DeepEqual(a, b)
}

// migrate copies the source store into the empty destination and returns
// the number of entries copied.
func migrate(ctx context.Context, cfg *config.Migrate, stdout io.Writer, logger *slog.Logger) (uint64, error) {
	if sameStorage(cfg.Source, cfg.Destination) {
		return 0, errors.New("the source and the destination are the same store")
	}
	if cfg.Source.Type == "bolt" {
		// bolt.Open creates a missing file: a mistyped source path must
		// not become a new, empty store.
		if _, err := os.Stat(cfg.Source.Bolt.Path); err != nil {
			return 0, fmt.Errorf("storage_source: %w", err)
		}
	}
	src, closeSrc, err := openMigrateStore(ctx, cfg.Source, "source", logger)
	if err != nil {
		return 0, err
	}
	defer closeSrc()
	snap, ok := storage.SnapshotterOf(src)
	if !ok {
		return 0, fmt.Errorf("storage_source %q cannot be read whole (it has no snapshots)", cfg.Source.Type)
	}
	top, err := src.List(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("storage_source: %w", err)
	}
	if len(top) == 0 {
		return 0, errors.New("storage_source holds no data: is it the right store?")
	}
	dst, closeDst, err := openMigrateStore(ctx, cfg.Destination, "destination", logger)
	if err != nil {
		return 0, err
	}
	defer closeDst()
	top, err = dst.List(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("storage_destination: %w", err)
	}
	if len(top) > 0 {
		return 0, fmt.Errorf("storage_destination already holds data (%q, ...): migrate into an empty store (a new bolt path, an empty table)", top[0])
	}
	fmt.Fprintf(stdout, "Copying %s to %s...\n", describe(cfg.Source), describe(cfg.Destination))
	var n uint64
	progress := func() {
		if n++; n%migrateProgress == 0 {
			fmt.Fprintf(stdout, "  %d entries copied\n", n)
		}
	}
	if err := copyStore(ctx, snap, dst, progress); err != nil {
		return n, fmt.Errorf("copy: %w", err)
	}
	got, err := countKeys(ctx, dst)
	if err != nil {
		return n, fmt.Errorf("verify: %w", err)
	}
	if got != n {
		return n, fmt.Errorf("verify: the destination holds %d keys after %d were copied", got, n)
	}
	return n, nil
}

// openMigrateStore opens one side with the server's own openStorage (so
// every storage type a server runs on can be migrated, with the same
// environment overrides) and returns its closer.
func openMigrateStore(ctx context.Context, s config.Storage, side string, logger *slog.Logger) (storage.Backend, func(), error) {
	b, err := openStorage(ctx, s, logger.With("store", side), os.Getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("storage_%s: %w", side, err)
	}
	return b, func() {
		if c, ok := b.(storage.Closer); ok {
			if err := c.Close(); err != nil {
				logger.Error("close storage", "store", side, "error", err)
			}
		}
	}, nil
}

// copyStore copies every entry of src into dst, calling progress after
// each. A destination that takes restores gets the copy as one restore
// (all or nothing); another gets it in transactions of migrateBatch
// entries, or entry by entry.
func copyStore(ctx context.Context, src storage.Snapshotter, dst storage.Backend, progress func()) error {
	if r, ok := storage.SnapshotterOf(dst); ok {
		return pipeRestore(ctx, src, r, progress)
	}
	tx, transactional := dst.(storage.Transactional)
	var ops []storage.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		err := tx.Transaction(ctx, ops)
		clear(ops)
		ops = ops[:0]
		return err
	}
	err := src.Snapshot(ctx, func(key string, value []byte) error {
		if !transactional {
			if err := dst.Put(ctx, key, value); err != nil {
				return err
			}
			progress()
			return nil
		}
		ops = append(ops, storage.Op{Key: key, Value: value})
		progress()
		if len(ops) == migrateBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// pipeRestore feeds a snapshot of src into a restore of dst: the snapshot
// runs in its own goroutine and hands each entry over, so that nothing is
// buffered beyond one entry.
func pipeRestore(ctx context.Context, src, dst storage.Snapshotter, progress func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	entries := make(chan storage.Entry)
	snapErr := make(chan error, 1)
	go func() {
		defer close(entries)
		snapErr <- src.Snapshot(ctx, func(key string, value []byte) error {
			select {
			case entries <- storage.Entry{Key: key, Value: value}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var end error // io.EOF, or the snapshot's error, once it is over
	next := func() (storage.Entry, error) {
		if end != nil {
			return storage.Entry{}, end
		}
		e, ok := <-entries
		if !ok {
			// The snapshot is over: a failed one must fail the restore.
			end = io.EOF
			if err := <-snapErr; err != nil {
				end = fmt.Errorf("read the source: %w", err)
			}
			return storage.Entry{}, end
		}
		progress()
		return e, nil
	}
	err := dst.Restore(ctx, next)
	cancel()
	for range entries { // let the snapshot goroutine end
	}
	return err
}

// countKeys counts the keys of a store: through a snapshot where it has
// them, else by listing every directory.
func countKeys(ctx context.Context, b storage.Backend) (uint64, error) {
	if s, ok := storage.SnapshotterOf(b); ok {
		var n uint64
		err := s.Snapshot(ctx, func(string, []byte) error { n++; return nil })
		return n, err
	}
	var walk func(prefix string) (uint64, error)
	walk = func(prefix string) (uint64, error) {
		children, err := b.List(ctx, prefix)
		if err != nil {
			return 0, err
		}
		var n uint64
		for _, c := range children {
			if c[len(c)-1] == '/' {
				m, err := walk(prefix + c)
				if err != nil {
					return 0, err
				}
				n += m
				continue
			}
			n++
		}
		return n, nil
	}
	return walk("")
}
