//go:build !unix

package bundle

import "io/fs"

// hardLinked reports whether a file of a local folder has other names; this
// platform does not say.
func hardLinked(fs.FileInfo) bool { return false }
