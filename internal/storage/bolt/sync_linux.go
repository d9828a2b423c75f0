package bolt

import (
	"os"
	"strconv"
	"syscall"
)

// initialMmapSize is bbolt's first memory map of the data file: 1 GiB of
// address space (on 64-bit systems; the file does not grow to it), so that
// bbolt need not remap as the file grows below that. A remap copies every
// B+tree node the checkpoint holds and makes every reader wait.
const initialMmapSize = (strconv.IntSize / 64) << 30

// newLogSyncer returns the io_uring syncer where the kernel allows it, else
// fdatasync.
func newLogSyncer() logSyncer {
	if s, err := newAsyncSyncer(); err == nil {
		return s
	}
	return blockingSyncer{}
}

// datasync makes f's data durable without its timestamps: on a log that
// is overwritten in place, no inode change waits on a journal commit.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
