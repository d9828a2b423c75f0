package bolt

import (
	"os"
	"syscall"
)

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
