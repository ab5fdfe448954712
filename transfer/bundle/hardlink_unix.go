//go:build unix

package bundle

import (
	"io/fs"
	"syscall"
)

// hardLinked reports whether a file of a local folder has other names.
func hardLinked(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Nlink) > 1
}
