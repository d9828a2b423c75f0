//go:build unix

package template

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// noTemps fails if dir holds a temporary file of WriteFile.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

func TestWriteFileModes(t *testing.T) {
	// A umask must not weaken or widen the wanted mode.
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()

	secret := filepath.Join(dir, "db.env")
	changed, err := WriteFile(secret, []byte("a"), WriteOptions{Perms: 0o640})
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if m := mode(t, secret); m != 0o640 {
		t.Fatalf("mode %o", m)
	}
	// The same contents and mode: nothing to do.
	if changed, err = WriteFile(secret, []byte("a"), WriteOptions{Perms: 0o640}); err != nil || changed {
		t.Fatal(changed, err)
	}
	// A new mode alone is a change.
	if changed, err = WriteFile(secret, []byte("a"), WriteOptions{Perms: 0o600}); err != nil || !changed || mode(t, secret) != 0o600 {
		t.Fatal(changed, err)
	}
	// Without perms an existing file keeps its mode...
	if _, err = WriteFile(secret, []byte("b"), WriteOptions{}); err != nil || mode(t, secret) != 0o600 {
		t.Fatal(err, mode(t, secret))
	}
	// ...and a new one gets Vault's default.
	fresh := filepath.Join(dir, "fresh")
	if _, err = WriteFile(fresh, []byte("c"), WriteOptions{}); err != nil || mode(t, fresh) != DefaultPerms {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "b" {
		t.Fatalf("%q", b)
	}
	noTemps(t, dir)
}

func TestWriteFileDirsAndBackup(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "a", "b", "cert.pem")
	if _, err := WriteFile(dest, []byte("x"), WriteOptions{Perms: 0o600}); err == nil {
		t.Fatal("wrote into a missing directory without create_dest_dirs")
	}
	if _, err := WriteFile(dest, []byte("v1"), WriteOptions{Perms: 0o600, CreateDestDirs: true, Backup: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dest + ".bak"); !os.IsNotExist(err) {
		t.Fatal("backup of nothing")
	}
	if _, err := WriteFile(dest, []byte("v2"), WriteOptions{Perms: 0o600, Backup: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFile(dest, []byte("v3"), WriteOptions{Perms: 0o600, Backup: true}); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(dest)
	bak, _ := os.ReadFile(dest + ".bak")
	if string(cur) != "v3" || string(bak) != "v2" || mode(t, dest+".bak") != 0o600 {
		t.Fatalf("current %q backup %q", cur, bak)
	}
	noTemps(t, filepath.Dir(dest))
}

func TestWriteFileCleansUpOnError(t *testing.T) {
	dir := t.TempDir()
	// The destination is a directory: refused before anything is written.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFile(filepath.Join(dir, "d"), []byte("x"), WriteOptions{}); err == nil {
		t.Fatal("wrote over a directory")
	}
	// A chown the agent may not make fails after the temporary file is
	// written; it must be gone.
	if os.Geteuid() != 0 {
		root := 0
		if _, err := WriteFile(filepath.Join(dir, "owned"), []byte("secret"), WriteOptions{Perms: 0o600, UID: &root}); err == nil {
			t.Fatal("chown to root succeeded as a user")
		}
		if _, err := os.Stat(filepath.Join(dir, "owned")); !os.IsNotExist(err) {
			t.Fatal("destination written despite the error")
		}
	}
	noTemps(t, dir)
	// A read-only directory: no temporary file can be made at all.
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o500)
	if os.Geteuid() != 0 {
		if _, err := WriteFile(filepath.Join(ro, "x"), []byte("x"), WriteOptions{}); err == nil {
			t.Fatal("wrote into a read-only directory")
		}
	}
}

func TestWriteFileOwner(t *testing.T) {
	dir := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()
	dest := filepath.Join(dir, "f")
	if _, err := WriteFile(dest, []byte("x"), WriteOptions{UID: &uid, GID: &gid}); err != nil {
		t.Fatal(err)
	}
	// Already owned so: no change.
	if changed, err := WriteFile(dest, []byte("x"), WriteOptions{UID: &uid, GID: &gid}); err != nil || changed {
		t.Fatal(changed, err)
	}
}

// A reader never sees a partial file: every read is one whole version.
func TestWriteFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "model.key")
	versions := [][]byte{bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 256<<10+7)}
	if _, err := WriteFile(dest, versions[0], WriteOptions{Perms: 0o600}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	var mu sync.Mutex
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := os.ReadFile(dest)
				if err != nil || (!bytes.Equal(b, versions[0]) && !bytes.Equal(b, versions[1])) {
					mu.Lock()
					bad = append(bad, "partial or missing read")
					mu.Unlock()
					return
				}
			}
		}()
	}
	for i := range 50 {
		if _, err := WriteFile(dest, versions[(i+1)%2], WriteOptions{Perms: 0o600}); err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatal(bad[0])
	}
	noTemps(t, dir)
}
