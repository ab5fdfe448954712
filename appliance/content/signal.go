package content

import (
	"cmp"
	"slices"
)

// Kind names what a Signal is about.
type Kind string

// Signal kinds.
const (
	KindInstallScript  Kind = "install-script"  // lifecycle script added or changed in package.json
	KindDependency     Kind = "dependency"      // dependency added or its range changed
	KindExecutable     Kind = "executable"      // new executable: +x, native binary or script
	KindNativeAddon    Kind = "native-addon"    // .node, binding.gyp, .so, .dll, .dylib
	KindPth            Kind = "pth-file"        // Python .pth file (run at interpreter start)
	KindMinified       Kind = "minified"        // very long lines
	KindHighEntropy    Kind = "high-entropy"    // encoded or encrypted blob
	KindSymlink        Kind = "symlink"         // symbolic link in the archive
	KindHardlink       Kind = "hardlink"        // hard link in the archive
	KindSpecialFile    Kind = "special-file"    // device, fifo or unknown entry type
	KindModeChange     Kind = "mode"            // setuid, setgid, world-writable or +x
	KindConfusableName Kind = "confusable-name" // package name looks like a popular one
	KindInvisibleName  Kind = "invisible-name"  // invisible or control character in a file name
	KindInvisibleText  Kind = "invisible-text"  // invisible or control character in text
	KindUnsafePath     Kind = "unsafe-path"     // absolute path, .., backslash or NUL in a name
	KindDuplicate      Kind = "duplicate-entry" // a path appears more than once
	KindCaseCollision  Kind = "case-collision"  // paths differ only in case
	KindManifest       Kind = "manifest"        // package.json unreadable or odd
	KindBin            Kind = "bin"             // command added to the package's bin map
	KindUnscanned      Kind = "unscanned"       // content not scanned (too large)
	KindNestedArchive  Kind = "nested-archive"  // an archive inside the artifact, not opened
	KindDiffTooLarge   Kind = "diff-too-large"  // too many lines to diff within the memory budget
)

// Severity ranks how much attention a Signal needs.
type Severity string

// Severities, in increasing order.
const (
	Info Severity = "info"
	Warn Severity = "warn"
	High Severity = "high"
)

func (s Severity) rank() int {
	switch s {
	case High:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Signal is one risk finding. File and Detail may hold artifact bytes:
// render them with Visible.
type Signal struct {
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	File     string   `json:"file,omitempty"`
	Line     int      `json:"line,omitempty"` // 1-based; 0 when not about a line
	Detail   string   `json:"detail"`         // one line for a human
}

// sortSignals orders by severity (high first), then file, line and kind.
func sortSignals(s []Signal) {
	slices.SortStableFunc(s, func(a, b Signal) int {
		if c := cmp.Compare(b.Severity.rank(), a.Severity.rank()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.File, b.File); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind, b.Kind)
	})
}
