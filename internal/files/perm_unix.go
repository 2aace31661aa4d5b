//go:build unix

package files

import (
	"io/fs"
	"os"
	"syscall"
)

// openFlags opens without blocking, so that a FIFO in the tree cannot hang
// a request; it has no effect on regular files and directories.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK

func fileOwner(info fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
