package template

// Security invariant of this file: a rendering reaches its destination by
// rename(2) of a complete, synced file, so a reader sees the old file or
// the new one and never a part. The temporary file is created 0600 in the
// destination's directory and gets the destination's mode only once its
// contents are written, so it is never more readable than the destination
// will be; it is removed on any failure.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultPerms is the mode of a new file when WriteOptions.Perms is 0, as
// in Vault Agent (an existing file keeps its mode).
const DefaultPerms fs.FileMode = 0o644

// WriteOptions are a template block's file settings.
type WriteOptions struct {
	// Perms is the file's mode; 0 keeps the mode of the file being
	// replaced, or DefaultPerms for a new file.
	Perms fs.FileMode
	// Backup keeps the file being replaced as <path>.bak.
	Backup bool
	// CreateDestDirs creates missing parent directories (0755).
	CreateDestDirs bool
	// UID and GID, when set, own the file; nil leaves the agent's own.
	UID, GID *int
}

// WriteFile writes data to path atomically (a temporary file in the same
// directory, synced, then renamed over path) with the mode and owner
// applied before the rename. It reports whether it wrote: when path
// already holds data with the wanted mode, it leaves it alone, so the
// template's command runs only on change.
func WriteFile(path string, data []byte, opts WriteOptions) (changed bool, err error) {
	dir := filepath.Dir(path)
	if opts.CreateDestDirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("write %s: %w", path, err)
		}
	}
	mode := opts.Perms
	old, statErr := os.Stat(path)
	switch {
	case statErr == nil && !old.Mode().IsRegular():
		return false, fmt.Errorf("write %s: the destination is not a regular file", path)
	case statErr != nil && !errors.Is(statErr, fs.ErrNotExist):
		return false, fmt.Errorf("write %s: %w", path, statErr)
	}
	if mode == 0 {
		mode = DefaultPerms
		if statErr == nil {
			mode = old.Mode().Perm()
		}
	}
	if statErr == nil && old.Mode().Perm() == mode && sameOwner(old, opts.UID, opts.GID) && sameContents(path, data) {
		return false, nil
	}

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return false, fmt.Errorf("write %s: chmod: %w", path, err)
	}
	if opts.UID != nil || opts.GID != nil {
		uid, gid := -1, -1
		if opts.UID != nil {
			uid = *opts.UID
		}
		if opts.GID != nil {
			gid = *opts.GID
		}
		if err = tmp.Chown(uid, gid); err != nil {
			return false, fmt.Errorf("write %s: chown: %w", path, err)
		}
	}
	if err = tmp.Sync(); err != nil {
		return false, fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if opts.Backup && statErr == nil {
		if err = backup(path); err != nil {
			return false, fmt.Errorf("write %s: backup: %w", path, err)
		}
	}
	if err = os.Rename(tmpName, path); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(dir)
	return true, nil
}

// sameContents reports whether the file at path holds exactly data.
func sameContents(path string, data []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(len(data))+1))
	return err == nil && bytes.Equal(b, data)
}

// backup makes <path>.bak the file now at path, atomically: a hard link
// (the same inode, so the same contents and mode) renamed into place, or
// a copy where links are not possible.
func backup(path string) error {
	bak := path + ".bak"
	tmp := path + ".bak.tmp"
	os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		if err := copyFile(path, tmp); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, bak); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Chmod(st.Mode().Perm()); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// syncDir makes a rename in dir durable. It is best effort: some file
// systems cannot sync a directory, and the rename has happened either way.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
