package content

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
)

// Format is the kind of artifact a Tree was read from.
type Format string

// Artifact formats.
const (
	FormatNPM   Format = "npm"    // gzip-compressed tar, first path component (package/) stripped
	FormatTar   Format = "tar"    // plain tar
	FormatTarGz Format = "tar.gz" // gzip-compressed tar
	FormatZip   Format = "zip"    // zip archive
	FormatWheel Format = "wheel"  // Python wheel (a zip archive)
	FormatFile  Format = "file"   // a single file that is not an archive
	FormatDir   Format = "dir"    // an unpacked directory on disk
)

// EntryType is what an archive entry is.
type EntryType string

// Entry types. Directories are checked but not listed.
const (
	TypeFile     EntryType = "file"
	TypeSymlink  EntryType = "symlink"
	TypeHardlink EntryType = "hardlink"
	TypeSpecial  EntryType = "special" // device, fifo or an unknown tar type
)

// Mode holds Unix permission bits plus setuid, setgid and sticky (07777).
// It marshals as an octal string such as "0755".
type Mode uint32

// Mode bits the signals look at.
const (
	ModeSetuid        Mode = 04000
	ModeSetgid        Mode = 02000
	ModeSticky        Mode = 01000
	ModeWorldWritable Mode = 00002
	ModeExec          Mode = 00111
)

func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// MarshalText renders the mode as four octal digits.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses an octal mode.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil || v > 07777 {
		return fmt.Errorf("mode %q is not an octal permission between 0000 and 7777", b)
	}
	*m = Mode(v)
	return nil
}

// Magic names the executable format recognised from a file's first bytes.
type Magic string

// Recognised executable formats.
const (
	MagicELF    Magic = "elf"
	MagicMachO  Magic = "mach-o"
	MagicPE     Magic = "pe"
	MagicWasm   Magic = "wasm"
	MagicJava   Magic = "java-class"
	MagicScript Magic = "script" // starts with #!
)

// Recognised archive and compression formats: a file in one of them inside
// an artifact is a nested archive, whose content the review does not open.
const (
	MagicZip   Magic = "zip" // also .whl, .jar, .nupkg
	MagicGzip  Magic = "gzip"
	MagicXz    Magic = "xz"
	MagicBzip2 Magic = "bzip2"
	MagicZstd  Magic = "zstd"
	Magic7z    Magic = "7z"
	MagicRar   Magic = "rar"
	MagicTar   Magic = "tar"
)

// File is one entry of an artifact. Path and Link are the artifact's own
// bytes (render them with Visible).
type File struct {
	Path   string    `json:"path"`
	Type   EntryType `json:"type"`
	Mode   Mode      `json:"mode"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256,omitempty"` // hex SHA-256 of the content (regular files)
	Link   string    `json:"link,omitempty"`   // target of a symlink or hard link
	Binary bool      `json:"binary"`           // has a NUL byte in its first 8000 bytes
	Magic  Magic     `json:"magic,omitempty"`  // executable format, if recognised
	Lines  int       `json:"lines,omitempty"`  // number of lines, for scanned text files
	Note   string    `json:"note,omitempty"`   // why content was not scanned or kept

	text     string // content of a text file, when kept
	hasText  bool
	kept     bool   // text within the caps: Read keeps it, a streamed comparison diffs it
	pooled   []byte // a streamed comparison's buffer holding text, until register takes it
	scan     scanFacts
	scanOnce sync.Once
}

// Text returns the content of a text file and whether it was kept (it is
// not for binary files and files over Limits.MaxTextBytes, nor in a Diff
// from CompareArtifacts, which drops each text once diffed except that of
// package.json files).
func (f *File) Text() (string, bool) { return f.text, f.hasText }

// Tree is the content of one artifact.
type Tree struct {
	Name   string  `json:"name"`
	Format Format  `json:"format"`
	Files  []*File `json:"files"` // sorted by Path; a duplicated path keeps its last entry
	// Signals found while reading: unsafe or duplicated names, links,
	// special files, invisible characters in names.
	Signals []Signal `json:"signals,omitempty"`
	// Expanded is the sum of entry sizes.
	Expanded int64 `json:"expanded"`
}

// File returns the entry at path, or nil.
func (t *Tree) File(path string) *File {
	i := sort.Search(len(t.Files), func(i int) bool { return t.Files[i].Path >= path })
	if i < len(t.Files) && t.Files[i].Path == path {
		return t.Files[i]
	}
	return nil
}
