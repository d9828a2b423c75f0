//go:build !linux

package bolt

import "os"

// datasync makes f's data durable (os.File.Sync: a full flush where the
// platform has one).
func datasync(f *os.File) error { return f.Sync() }
