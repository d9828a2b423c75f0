package bolt

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

// newTestSyncer returns an io_uring syncer, or skips where the kernel or a
// seccomp policy refuses io_uring (the log then uses fdatasync, which
// every other test exercises).
func newTestSyncer(t *testing.T) *asyncSyncer {
	t.Helper()
	s, err := newAsyncSyncer()
	if err != nil {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

func TestAsyncSyncerSyncs(t *testing.T) {
	s := newTestSyncer(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Storage calls poll all the time, from any goroutine.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					s.poll()
					runtime.Gosched()
				}
			}
		})
	}
	for i := range 200 {
		if _, err := f.WriteAt([]byte("record"), int64(i)*8); err != nil {
			t.Fatal(err)
		}
		if err := s.datasync(f); err != nil {
			t.Fatalf("datasync %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	if s.fallback {
		t.Fatal("a regular file fell back to fdatasync")
	}
	// Without any poller, the eventfd alone wakes the writer.
	for i := range 20 {
		if err := s.datasync(f); err != nil {
			t.Fatalf("datasync %d without polls: %v", i, err)
		}
	}
}

func TestAsyncSyncerReportsErrors(t *testing.T) {
	s := newTestSyncer(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A descriptor that is no longer open: the ring's own answer.
	closed := os.NewFile(uintptr(fd), "closed")
	syscall.Close(fd)
	if err := s.datasync(closed); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("datasync of a closed descriptor = %v, want EBADF", err)
	}
	if s.fallback {
		t.Fatal("an fsync error switched the syncer to fdatasync")
	}
}

func TestAsyncSyncerFallsBack(t *testing.T) {
	s := newTestSyncer(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// A pipe cannot be synced: the ring answers EINVAL, and so does
	// fdatasync, which the syncer uses from then on.
	if err := s.datasync(w); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("datasync of a pipe = %v, want EINVAL", err)
	}
	if !s.fallback {
		t.Fatal("EINVAL from the ring did not switch to fdatasync")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.datasync(f); err != nil {
		t.Fatalf("datasync after the fallback: %v", err)
	}
}

func TestOpenUsesRing(t *testing.T) {
	newTestSyncer(t) // skips where io_uring is refused
	b := mustOpen(t, filepath.Join(t.TempDir(), "v.db"), Options{})
	if _, ok := b.syncer.(*asyncSyncer); !ok {
		t.Fatalf("syncer = %T, want *asyncSyncer", b.syncer)
	}
	nb := mustOpen(t, filepath.Join(t.TempDir(), "n.db"), Options{NoSync: true})
	if _, ok := nb.syncer.(blockingSyncer); !ok {
		t.Fatalf("NoSync syncer = %T, want blockingSyncer", nb.syncer)
	}
}

func TestUringLayouts(t *testing.T) {
	// The kernel's struct sizes (linux/io_uring.h).
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"io_uring_params", unsafe.Sizeof(uringParams{}), 120},
		{"io_uring_sqe", unsafe.Sizeof(uringSQE{}), sqeSize},
		{"io_uring_cqe", unsafe.Sizeof(uringCQE{}), cqeSize},
	} {
		if c.got != c.want {
			t.Errorf("sizeof %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
