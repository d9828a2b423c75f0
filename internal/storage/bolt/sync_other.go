//go:build !linux

package bolt

import "os"

// initialMmapSize leaves bbolt's memory map to grow with the file: on
// Windows a larger map would grow the file to its size.
const initialMmapSize = 0

// datasync makes f's data durable (os.File.Sync: a full flush where the
// platform has one).
func datasync(f *os.File) error { return f.Sync() }

// newLogSyncer returns the blocking syncer: io_uring is Linux's.
func newLogSyncer() logSyncer { return blockingSyncer{} }
