//go:build unix

package template

import (
	"io/fs"
	"syscall"
)

// sameOwner reports whether fi is owned by uid and gid (nil: any).
func sameOwner(fi fs.FileInfo, uid, gid *int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return uid == nil && gid == nil
	}
	return (uid == nil || int(st.Uid) == *uid) && (gid == nil || int(st.Gid) == *gid)
}
