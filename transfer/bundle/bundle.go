// Package bundle reads and writes Airlock's release bundle: the folder (or
// uncompressed tar of it) that carries a signing request across the air gap,
// and the response folder that carries signatures back.
//
// A release bundle holds request.json (the signing request, kept here as
// opaque bytes under its own cap), and the folders artifacts/, previous/ and
// provenance/ with any regular files, nested a few levels. A response holds
// response.json and record.json.
//
// Every byte of a bundle is hostile. The invariants this package keeps:
//
//   - Every entry name is checked before anything is written: no "..", no
//     absolute paths, no backslashes, NUL or control or invisible formatting
//     characters, valid UTF-8 only, no two names that are equal after case
//     folding and Unicode normalisation, no unknown top-level entries.
//   - Only regular files and directories are accepted: symbolic links, hard
//     links, devices, fifos and sockets are refused.
//   - Named caps (Limits) bound the entry count, total and single file size,
//     path length, nesting depth and the size of the request document; a
//     refusal is an *Error naming the entry and the rule.
//   - Import writes only inside the working directory it is given, through an
//     os.Root, creating every file with O_EXCL and mode 0600; on failure it
//     removes what it wrote.
//   - Import is one streaming pass over the data that copies each file and
//     computes its SHA-256 and SHA-512 at the same time, with large buffers.
//
// The functions of this package are safe for concurrent use on distinct
// working directories; a Manifest is immutable once returned.
package bundle

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Names of the parts of a release bundle and of a response.
const (
	RequestFile   = "request.json"
	ArtifactsDir  = "artifacts"
	PreviousDir   = "previous"
	ProvenanceDir = "provenance"

	ResponseFile = "response.json"
	RecordFile   = "record.json"
)

// BufferSize is the size of the buffers used to copy and hash file contents.
// Reads from user-space filesystems are an order of magnitude slower with
// small buffers.
const BufferSize = 1 << 20

// Limits are the caps applied to a bundle. A zero field takes the value of
// DefaultLimits.
type Limits struct {
	MaxEntries      int   // files and directories, all levels
	MaxTotalBytes   int64 // sum of all file sizes
	MaxFileBytes    int64 // any one file
	MaxPathLen      int   // bytes of a full slash-separated path
	MaxDepth        int   // path components, e.g. provenance/a/b/x.json is 4
	MaxRequestBytes int64 // the layout's document (request.json, response.json)
}

// Default caps.
const (
	DefaultMaxEntries      = 10000
	DefaultMaxTotalBytes   = 8 << 30
	DefaultMaxFileBytes    = 2 << 30
	DefaultMaxPathLen      = 255
	DefaultMaxDepth        = 4
	DefaultMaxRequestBytes = 16 << 20
)

// DefaultLimits returns the default caps.
func DefaultLimits() Limits {
	return Limits{
		MaxEntries:      DefaultMaxEntries,
		MaxTotalBytes:   DefaultMaxTotalBytes,
		MaxFileBytes:    DefaultMaxFileBytes,
		MaxPathLen:      DefaultMaxPathLen,
		MaxDepth:        DefaultMaxDepth,
		MaxRequestBytes: DefaultMaxRequestBytes,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxPathLen <= 0 {
		l.MaxPathLen = d.MaxPathLen
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = d.MaxRequestBytes
	}
	return l
}

// Layout says which top-level entries a bundle may hold.
type Layout struct {
	// Document is the required top-level file whose bytes are returned in
	// Manifest.Document, capped by Limits.MaxRequestBytes.
	Document string
	// Required are other top-level files that must be present.
	Required []string
	// Files are other top-level files that may be present.
	Files []string
	// Dirs are the top-level directories that may be present.
	Dirs []string
}

// RequestLayout is the layout of a release bundle; the zero Layout means it.
var RequestLayout = Layout{
	Document: RequestFile,
	Dirs:     []string{ArtifactsDir, PreviousDir, ProvenanceDir},
}

// ResponseLayout is the layout of the response that leaves the appliance.
var ResponseLayout = Layout{
	Document: ResponseFile,
	Required: []string{RecordFile},
}

func (l Layout) orDefault() Layout {
	if l.Document == "" {
		return RequestLayout
	}
	return l
}

func (l Layout) topFile(name string) bool {
	return name == l.Document || slices.Contains(l.Required, name) || slices.Contains(l.Files, name)
}

// Progress reports how far an import has gone.
type Progress struct {
	Done  int64  // bytes copied so far
	Total int64  // bytes to copy in all
	Entry string // the file being copied
}

// Options configure reading and writing. The zero value reads a release
// bundle with the default limits.
type Options struct {
	Limits   Limits
	Layout   Layout
	Progress func(Progress) // called at the start of each file and after each buffer
}

// File describes one regular file of a bundle.
type File struct {
	Path   string // slash-separated, relative to the bundle root
	Size   int64
	SHA256 [sha256.Size]byte
	SHA512 [sha512.Size]byte
}

// Manifest describes an imported or written bundle.
type Manifest struct {
	// Dir is the directory holding the bundle's files ("" for WriteTar).
	Dir string
	// Document holds the bytes of the layout's document (request.json for a
	// release bundle, response.json for a response).
	Document []byte
	// Files lists every regular file, the document included, sorted by path.
	Files []File
	// Dirs lists every directory, sorted.
	Dirs []string
}

// File returns the entry for path.
func (m *Manifest) File(path string) (File, bool) {
	i, ok := slices.BinarySearchFunc(m.Files, path, func(f File, p string) int {
		switch {
		case f.Path < p:
			return -1
		case f.Path > p:
			return 1
		}
		return 0
	})
	if !ok {
		return File{}, false
	}
	return m.Files[i], true
}

// Rule names the check a bundle failed.
type Rule string

// The rules a bundle can break.
const (
	RuleTraversal    Rule = "path leaves the bundle"
	RuleAbsolute     Rule = "absolute path"
	RuleBackslash    Rule = "backslash in name"
	RuleBadChar      Rule = "forbidden character in name"
	RuleBadUTF8      Rule = "name is not valid UTF-8"
	RuleEmptyName    Rule = "empty path component"
	RuleSymlink      Rule = "symbolic link"
	RuleHardLink     Rule = "hard link"
	RuleSpecial      Rule = "special file"
	RuleDuplicate    Rule = "duplicate entry"
	RuleUnknownTop   Rule = "unknown top-level entry"
	RuleMissing      Rule = "missing required file"
	RuleWrongType    Rule = "wrong entry type"
	RuleEntries      Rule = "Limits.MaxEntries"
	RuleTotalBytes   Rule = "Limits.MaxTotalBytes"
	RuleFileBytes    Rule = "Limits.MaxFileBytes"
	RulePathLen      Rule = "Limits.MaxPathLen"
	RuleDepth        Rule = "Limits.MaxDepth"
	RuleRequestBytes Rule = "Limits.MaxRequestBytes"
	RuleChanged      Rule = "changed while read"
	RuleTar          Rule = "malformed tar"
)

// Error is a refusal: the entry it concerns and the rule it broke.
type Error struct {
	Entry string // path inside the bundle; "" for the bundle as a whole
	Rule  Rule
	Msg   string // one line, lowercase
}

func (e *Error) Error() string {
	if e.Entry == "" {
		return "bundle: " + e.Msg
	}
	return "bundle: " + displayName(e.Entry) + ": " + e.Msg
}

func refuse(entry string, rule Rule, format string, args ...any) *Error {
	return &Error{Entry: entry, Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

// IsRule reports whether err is a refusal for rule.
func IsRule(err error, rule Rule) bool {
	var e *Error
	return errors.As(err, &e) && e.Rule == rule
}

// displayName returns name as is when it is plain printable text, and
// quoted with escapes otherwise, so that a hostile name cannot change what
// a terminal shows.
func displayName(name string) string {
	if !utf8.ValidString(name) {
		return strconv.QuoteToASCII(name)
	}
	for _, r := range name {
		if !unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r) || r == '"' {
			return strconv.QuoteToASCII(name)
		}
	}
	return name
}

// formatSize renders n bytes for messages: "3.1 GiB", "2 GiB", "512 B".
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n)
	i := -1
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s + " " + units[i]
}
