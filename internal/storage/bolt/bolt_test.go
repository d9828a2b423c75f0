package bolt_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

func openTemp(t testing.TB, opts bolt.Options) *bolt.Backend {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return openTemp(t, bolt.Options{})
	})
}

func TestConformanceSmallBatch(t *testing.T) {
	// MaxBatch 1 disables grouping: the suite must pass either way.
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return openTemp(t, bolt.Options{MaxBatch: 1})
	})
}

func TestSnapshotter(t *testing.T) {
	storagetest.RunSnapshotter(t, func(t *testing.T) storage.Backend {
		return openTemp(t, bolt.Options{})
	})
}

func TestDurable(t *testing.T) {
	storagetest.RunDurable(t, func(t *testing.T, dir string) storage.Backend {
		b, err := bolt.Open(filepath.Join(dir, "vigil.db"), bolt.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	})
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "vigil.db")
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal.0": 0o600, path + "-wal.1": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		// The umask can only remove bits, never add them.
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("mode of %s = %v, want at most %v", p, got, want)
		}
	}
}

func TestGroupCommit(t *testing.T) {
	b := openTemp(t, bolt.Options{})
	ctx := t.Context()
	const workers, perWorker = 64, 20
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				k := fmt.Sprintf("group/g%02d/k%02d", g, i)
				if err := b.Put(ctx, k, []byte(k)); err != nil {
					t.Errorf("Put(%q): %v", k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := b.Stats()
	t.Logf("%d writes in %d commits", st.Writes, st.Commits)
	if st.Writes != workers*perWorker {
		t.Errorf("Stats().Writes = %d, want %d", st.Writes, workers*perWorker)
	}
	if st.Commits >= st.Writes {
		t.Errorf("Stats().Commits = %d, want fewer than %d writes: writes were not grouped", st.Commits, st.Writes)
	}
	for g := range workers {
		for i := range perWorker {
			k := fmt.Sprintf("group/g%02d/k%02d", g, i)
			got, err := b.Get(ctx, k)
			if err != nil || string(got) != k {
				t.Fatalf("Get(%q) = %q, %v", k, got, err)
			}
		}
	}

	// After the concurrent writes, the writer (which yields before
	// closing a batch while writes come concurrently) goes back to one
	// commit per write for a lone writer: each write is answered by its
	// own commit, without waiting for others.
	before := b.Stats()
	for i := range 10 {
		if err := b.Put(ctx, fmt.Sprintf("lone/%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	after := b.Stats()
	if commits, writes := after.Commits-before.Commits, after.Writes-before.Writes; commits != 10 || writes != 10 {
		t.Errorf("a lone writer's 10 writes: %d writes in %d commits, want 10 in 10", writes, commits)
	}
}

// TestConcurrentTransactions runs many transactions, some with invalid keys,
// through small batches: each must get its own result, and every valid one
// must land whole.
func TestConcurrentTransactions(t *testing.T) {
	b := openTemp(t, bolt.Options{MaxBatch: 7})
	ctx := t.Context()
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				ops := []storage.Op{
					{Key: fmt.Sprintf("tx/g%02d/a%d", g, i), Value: []byte("a")},
					{Key: fmt.Sprintf("tx/g%02d/b%d", g, i), Value: []byte("b")},
					{Key: fmt.Sprintf("tx/g%02d/a%d", g, i-1), Delete: true},
				}
				if i%4 == 3 {
					// An invalid transaction mixed into the load.
					bad := append(ops[:2:2], storage.Op{Key: "/bad"})
					if err := b.Transaction(ctx, bad); !errors.Is(err, storage.ErrInvalidKey) {
						t.Errorf("invalid Transaction: error = %v, want ErrInvalidKey", err)
					}
				}
				if err := b.Transaction(ctx, ops); err != nil {
					t.Errorf("Transaction: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for g := range 32 {
		got, err := b.List(ctx, fmt.Sprintf("tx/g%02d/", g))
		if err != nil {
			t.Fatal(err)
		}
		// a9 plus b0..b9.
		if len(got) != 11 || got[0] != "a9" {
			t.Fatalf("List(tx/g%02d/) = %q", g, got)
		}
	}
}

func TestKeyTooLong(t *testing.T) {
	b := openTemp(t, bolt.Options{})
	long := strings.Repeat("k", 40000)
	if err := b.Put(t.Context(), long, []byte("v")); !errors.Is(err, storage.ErrInvalidKey) || !errors.Is(err, bolt.ErrKeyTooLong) {
		t.Fatalf("Put(long key): error = %v, want ErrInvalidKey and ErrKeyTooLong", err)
	}
	if err := b.Put(t.Context(), "ok", []byte("v")); err != nil {
		t.Fatalf("Put after rejected key: %v", err)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close()

	res := make(chan error, 1)
	go func() {
		b2, err := bolt.Open(path, bolt.Options{})
		if err == nil {
			_ = b2.Close()
		}
		res <- err
	}()
	select {
	case err := <-res:
		if !errors.Is(err, bolt.ErrLocked) {
			t.Fatalf("second Open: error = %v, want ErrLocked", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("second Open of a locked file did not return")
	}

	// Once the first holder closes, the file can be opened again.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b3, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = b3.Close()
}

func TestListSkipsSubtrees(t *testing.T) {
	b := openTemp(t, bolt.Options{NoSync: true})
	ctx := t.Context()
	const descendants = 5000
	ops := make([]storage.Op, 0, descendants)
	for i := range descendants {
		ops = append(ops, storage.Op{Key: fmt.Sprintf("big/d%d/sub%02d/k%04d", i%7, i%13, i), Value: []byte("x")})
	}
	if err := b.Transaction(ctx, ops); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"aaa", "big", "big0", "big-leaf", "zzz/one"} {
		if err := b.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"aaa", "big", "big-leaf", "big/", "big0", "zzz/"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("List(\"\") = %q, want %q", got, want)
	}
	got, err = b.List(ctx, "big/")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "d0/,d1/,d2/,d3/,d4/,d5/,d6/" {
		t.Fatalf("List(big/) = %q", got)
	}
}

func TestCloseDrainsQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	var acked sync.Map
	var nAcked atomic.Int64
	enough := make(chan struct{})
	start := make(chan struct{})
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; ; i++ {
				k := fmt.Sprintf("drain/g%02d/%d", g, i)
				err := b.Put(ctx, k, []byte(k))
				if errors.Is(err, storage.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				acked.Store(k, true)
				if nAcked.Add(1) == 200 {
					close(enough)
				}
			}
		}()
	}
	close(start)
	// Let some writes land, then close under load.
	<-enough
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()

	b, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		if _, err := b.Get(ctx, k.(string)); err != nil {
			t.Errorf("acknowledged %q missing after Close: %v", k, err)
			return false
		}
		return true
	})
	t.Logf("%d acknowledged writes checked", n)
}

func TestBackup(t *testing.T) {
	b := openTemp(t, bolt.Options{})
	ctx := t.Context()
	for i := range 100 {
		if err := b.Put(ctx, fmt.Sprintf("bk/%03d", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := b.Backup(&buf)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("Backup returned %d, wrote %d bytes", n, buf.Len())
	}
	// Writes after the snapshot are not in it.
	if err := b.Put(ctx, "bk/later", []byte("later")); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open backup: %v", err)
	}
	defer r.Close()
	for i := range 100 {
		got, err := r.Get(ctx, fmt.Sprintf("bk/%03d", i))
		if err != nil || !bytes.Equal(got, []byte{byte(i)}) {
			t.Fatalf("restored Get(bk/%03d) = %v, %v", i, got, err)
		}
	}
	if _, err := r.Get(ctx, "bk/later"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("restored Get(bk/later): error = %v, want ErrNotFound", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Backup(&buf); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Backup after Close: error = %v, want ErrClosed", err)
	}
}

// crashEnv names the data file for TestHelperProcess; it is set only when
// TestCrashKeepsAcknowledgedWrites re-executes the test binary.
const crashEnv = "VIGIL_BOLT_CRASH_HELPER_DB"

// crashValue is the value the helper writes at key.
func crashValue(key string) []byte {
	return []byte(strings.Repeat(key+";", 8))
}

// TestHelperProcess is not a real test: it is the child process of
// TestCrashKeepsAcknowledgedWrites. It writes keys from several goroutines
// forever and prints "ack <key>" for each write that returned nil, until
// the parent kills it.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashKeepsAcknowledgedWrites")
	}
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "open: %v\n", err)
		os.Exit(2)
	}
	ctx := t.Context()
	var out sync.Mutex
	var seq atomic.Uint64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := fmt.Sprintf("crash/%08d", seq.Add(1))
				if err := b.Put(ctx, k, crashValue(k)); err != nil {
					fmt.Fprintf(os.Stderr, "put: %v\n", err)
					os.Exit(2)
				}
				out.Lock()
				// One unbuffered write per line, so the parent sees it as
				// soon as Put has returned.
				_, err := os.Stdout.Write([]byte("ack " + k + "\n"))
				out.Unlock()
				if err != nil {
					os.Exit(2)
				}
			}
		}()
	}
	wg.Wait()
}

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "vigil.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	const want = 400
	var acked []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if k, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked = append(acked, k)
			if len(acked) == want {
				break
			}
		}
	}
	// SIGKILL: no deferred function, no Close, no final commit.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	// Lines already in the pipe were acknowledged before the kill too.
	for sc.Scan() {
		if k, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked = append(acked, k)
		}
	}
	_ = cmd.Wait()
	if len(acked) < want {
		t.Fatalf("child acknowledged only %d writes; stderr:\n%s", len(acked), stderr.String())
	}

	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer b.Close()
	ctx := t.Context()
	for _, k := range acked {
		got, err := b.Get(ctx, k)
		if err != nil {
			t.Fatalf("acknowledged key %q lost in crash: %v", k, err)
		}
		if !bytes.Equal(got, crashValue(k)) {
			t.Fatalf("acknowledged key %q has wrong value after crash", k)
		}
	}
	t.Logf("all %d acknowledged writes survived SIGKILL", len(acked))
}

func BenchmarkPutParallel(b *testing.B) {
	for _, mode := range []struct {
		name     string
		maxBatch int
	}{{"grouped", 0}, {"ungrouped", 1}} {
		b.Run(mode.name, func(b *testing.B) {
			be := openTemp(b, bolt.Options{MaxBatch: mode.maxBatch})
			ctx := b.Context()
			value := bytes.Repeat([]byte("v"), 256)
			var id atomic.Uint64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				g := id.Add(1)
				for i := 0; pb.Next(); i++ {
					if err := be.Put(ctx, fmt.Sprintf("bench/%03d/%09d", g, i), value); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := be.Stats()
			if st.Commits > 0 {
				b.ReportMetric(float64(st.Writes)/float64(st.Commits), "writes/commit")
			}
		})
	}
}
