package bolt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// feedN yields n entries "new/%06d", then io.EOF.
func feedN(n int) func() (storage.Entry, error) {
	i := 0
	return func() (storage.Entry, error) {
		if i == n {
			return storage.Entry{}, io.EOF
		}
		i++
		k := fmt.Sprintf("new/%06d", i-1)
		return storage.Entry{Key: k, Value: []byte("value of " + k)}, nil
	}
}

// buckets lists the top-level buckets of the data file of a closed store.
func buckets(t *testing.T, path string) []string {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			out = append(out, string(name))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A restore that filled the spare bucket and never swapped (the process
// stopped) leaves the old content, and Open drops the spare bucket.
func TestRestoreNotSwappedIsDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	b := mustOpen(t, path, Options{})
	mustPut(t, b, "old/a", "1", "old/b", "2")
	spare, err := b.fillSpare(t.Context(), feedN(10000))
	if err != nil || spare != altBucketName {
		t.Fatalf("fillSpare = %q, %v", spare, err)
	}
	mustList(t, b, "", "old/")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(buckets(t, path), ","); got != "vigil,vigil-alt,vigil-meta" {
		t.Fatalf("buckets before reopen: %s", got)
	}
	b = mustOpen(t, path, Options{})
	mustList(t, b, "", "old/")
	mustList(t, b, "old/", "a", "b")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(buckets(t, path), ","); got != "vigil,vigil-meta" {
		t.Fatalf("buckets after reopen: %s", got)
	}
}

// Restores alternate between the two data buckets, and the file keeps
// exactly one of them.
func TestRestoreAlternatesBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	for i, want := range []string{"vigil-alt,vigil-meta", "vigil,vigil-meta", "vigil-alt,vigil-meta"} {
		b := mustOpen(t, path, Options{})
		mustPut(t, b, "before", "x")
		if err := b.Restore(t.Context(), feedN(i+1)); err != nil {
			t.Fatal(err)
		}
		mustList(t, b, "", "new/")
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(buckets(t, path), ","); got != want {
			t.Fatalf("restore %d: buckets %s, want %s", i+1, got, want)
		}
	}
}

// A store whose log failed refuses a restore and keeps its content.
func TestRestoreRefusedWhenLogBroken(t *testing.T) {
	b := mustOpen(t, filepath.Join(t.TempDir(), "vigil.db"), Options{})
	defer b.Close()
	mustPut(t, b, "old", "1")
	// Break the log as a failed fsync would: the writer refuses writes.
	b.checkpointNow(t)
	broke := &writeReq{checkpoint: true, done: make(chan error, 1)}
	b.onCheckpoint = func() { b.broken = errors.New("injected log failure") }
	b.reqs <- broke
	<-broke.done
	b.onCheckpoint = nil
	err := b.Restore(t.Context(), feedN(3))
	if err == nil || !strings.Contains(err.Error(), "injected log failure") {
		t.Fatalf("Restore on a broken log = %v", err)
	}
	mustList(t, b, "", "old")
}

// restoreHelperEnv names the data file and the mode for
// TestRestoreHelperProcess; it is set only when TestRestoreCrash
// re-executes the test binary.
const restoreHelperEnv = "VIGIL_BOLT_RESTORE_HELPER"

// TestRestoreHelperProcess is not a real test: it is the child process of
// TestRestoreCrash. The data file holds "old/..." keys. In mode "fill" it
// starts a restore, prints "filling" once much of it is written, and
// waits to be killed. In mode "after" it restores "new/..." keys, prints
// "restored", then writes "after/N" keys forever, printing "ack KEY" for
// each acknowledged write.
func TestRestoreHelperProcess(t *testing.T) {
	mode, path, ok := strings.Cut(os.Getenv(restoreHelperEnv), ":")
	if !ok {
		t.Skip("helper process for TestRestoreCrash")
	}
	b, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "open: %v\n", err)
		os.Exit(2)
	}
	ctx := context.Background()
	say := func(line string) {
		if _, err := os.Stdout.Write([]byte(line + "\n")); err != nil {
			os.Exit(2)
		}
	}
	switch mode {
	case "fill":
		src := feedN(100000)
		n := 0
		err = b.Restore(ctx, func() (storage.Entry, error) {
			if n++; n == 3*restoreBatchOps {
				say("filling")
				select {} // killed here, two batches committed
			}
			return src()
		})
	case "after":
		if err = b.Restore(ctx, feedN(1000)); err != nil {
			break
		}
		say("restored")
		for i := 0; ; i++ {
			k := fmt.Sprintf("after/%08d", i)
			if err = b.Put(ctx, k, []byte(k)); err != nil {
				break
			}
			say("ack " + k)
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", mode, err)
	os.Exit(2)
}

// runRestoreHelper runs the helper in mode over the store at path, reads
// its output until stop says so, and kills it (SIGKILL: no deferred
// function, no Close). It returns the lines it read.
func runRestoreHelper(t *testing.T, mode, path string, stop func(lines []string) bool) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), restoreHelperEnv+"="+mode+":"+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if stop(lines) {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	for sc.Scan() { // lines already written were acknowledged before the kill
		lines = append(lines, sc.Text())
	}
	_ = cmd.Wait()
	if len(lines) == 0 || !stop(lines) {
		t.Fatalf("helper %s said %q; stderr:\n%s", mode, lines, stderr.String())
	}
	return lines
}

// TestRestoreCrash kills a process during a restore and after one: the
// content is the old one in the first case (the half-written bucket is
// dropped), and in the second the restored one with every write
// acknowledged after it, replayed from the log.
func TestRestoreCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	prepare := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "vigil.db")
		b := mustOpen(t, path, Options{})
		mustPut(t, b, "old/a", "1", "old/b", "2")
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("during", func(t *testing.T) {
		path := prepare(t)
		runRestoreHelper(t, "fill", path, func(lines []string) bool { return lines[len(lines)-1] == "filling" })
		b := mustOpen(t, path, Options{})
		mustList(t, b, "", "old/")
		mustList(t, b, "old/", "a", "b")
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(buckets(t, path), ","); got != "vigil,vigil-meta" {
			t.Fatalf("buckets after reopen: %s", got)
		}
	})
	t.Run("after", func(t *testing.T) {
		path := prepare(t)
		lines := runRestoreHelper(t, "after", path, func(lines []string) bool { return len(lines) > 200 })
		if lines[0] != "restored" {
			t.Fatalf("helper said %q first", lines[0])
		}
		b := mustOpen(t, path, Options{})
		defer b.Close()
		mustList(t, b, "", "after/", "new/")
		ctx := t.Context()
		for _, l := range lines[1:] {
			k, ok := strings.CutPrefix(l, "ack ")
			if !ok {
				t.Fatalf("helper said %q", l)
			}
			if v, err := b.Get(ctx, k); err != nil || string(v) != k {
				t.Fatalf("acknowledged %q lost: %q, %v", k, v, err)
			}
		}
		if got, err := b.List(ctx, "new/"); err != nil || len(got) != 1000 {
			t.Fatalf("restored keys after the crash: %d, %v", len(got), err)
		}
	})
}
