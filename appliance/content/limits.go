package content

// Default caps. Each one bounds memory or time spent on a hostile artifact;
// exceeding a reading cap is an error that names the entry, exceeding a
// display cap is said in the output ("diff truncated at N lines").
const (
	// DefaultMaxArchiveBytes bounds the size of an artifact as stored.
	DefaultMaxArchiveBytes = 512 << 20
	// DefaultMaxEntries bounds the number of entries in one archive.
	DefaultMaxEntries = 100_000
	// DefaultMaxExpandedBytes bounds the sum of all entry sizes after
	// decompression.
	DefaultMaxExpandedBytes = 1 << 30
	// DefaultMaxFileBytes bounds the size of one entry.
	DefaultMaxFileBytes = 256 << 20
	// DefaultMaxPathBytes bounds the length of one entry name.
	DefaultMaxPathBytes = 1024
	// DefaultMaxPathDepth bounds the number of components of one entry name.
	DefaultMaxPathDepth = 64
	// DefaultMaxCompressionRatio bounds expanded size over compressed size,
	// for a whole compressed stream and for each zip entry.
	DefaultMaxCompressionRatio = 200
	// DefaultRatioGraceBytes is the expanded size below which the ratio is
	// not checked: tiny, very compressible files are normal.
	DefaultRatioGraceBytes = 8 << 20
	// DefaultMaxTextBytes bounds the size of a text file whose content is
	// kept for diffing and scanned line by line; larger files are hashed only.
	DefaultMaxTextBytes = 16 << 20
	// DefaultMaxRetainedBytes bounds the text content one Tree keeps; with
	// two trees in a comparison and the diff's own bound this keeps the
	// whole review within MemoryBudget.
	DefaultMaxRetainedBytes = 64 << 20
	// DefaultMaxDiffInputLines bounds the lines of one file the line diff
	// takes in (each side); a larger file is summarised with a signal.
	DefaultMaxDiffInputLines = 400_000
	// MemoryBudget is the peak resident memory the review of any bundle
	// stays under with the default limits (TestReviewMemoryBudget).
	MemoryBudget = 256 << 20
	// DefaultMaxDiffLines bounds the unified diff lines shown for one file.
	DefaultMaxDiffLines = 2000
	// DefaultMaxDiffBytes bounds the unified diff text of a whole Diff.
	DefaultMaxDiffBytes = 8 << 20
	// DefaultMaxHitsPerFile bounds the signals of one kind reported for one
	// file (for example invisible characters on many lines).
	DefaultMaxHitsPerFile = 20
	// DefaultMaxManifestBytes bounds a package.json or wheel METADATA file.
	DefaultMaxManifestBytes = 4 << 20
)

// Limits are the caps a reader and a comparison enforce. The zero value is
// not useful; start from DefaultLimits.
type Limits struct {
	MaxArchiveBytes     int64
	MaxEntries          int
	MaxExpandedBytes    int64
	MaxFileBytes        int64
	MaxPathBytes        int
	MaxPathDepth        int
	MaxCompressionRatio int64
	RatioGraceBytes     int64
	MaxTextBytes        int64
	MaxRetainedBytes    int64
	MaxDiffLines        int
	MaxDiffBytes        int64
	MaxDiffInputLines   int
	MaxHitsPerFile      int
	MaxManifestBytes    int64
}

// DefaultLimits returns the default caps.
func DefaultLimits() Limits {
	return Limits{
		MaxArchiveBytes:     DefaultMaxArchiveBytes,
		MaxEntries:          DefaultMaxEntries,
		MaxExpandedBytes:    DefaultMaxExpandedBytes,
		MaxFileBytes:        DefaultMaxFileBytes,
		MaxPathBytes:        DefaultMaxPathBytes,
		MaxPathDepth:        DefaultMaxPathDepth,
		MaxCompressionRatio: DefaultMaxCompressionRatio,
		RatioGraceBytes:     DefaultRatioGraceBytes,
		MaxTextBytes:        DefaultMaxTextBytes,
		MaxRetainedBytes:    DefaultMaxRetainedBytes,
		MaxDiffLines:        DefaultMaxDiffLines,
		MaxDiffBytes:        DefaultMaxDiffBytes,
		MaxDiffInputLines:   DefaultMaxDiffInputLines,
		MaxHitsPerFile:      DefaultMaxHitsPerFile,
		MaxManifestBytes:    DefaultMaxManifestBytes,
	}
}
