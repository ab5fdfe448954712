package content

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"unicode/utf8"
)

// Thresholds for content signals.
const (
	// binarySniffBytes is how far a NUL byte is looked for (as git does).
	binarySniffBytes = 8000
	// minifiedLineBytes is the line length from which a line counts as
	// minified or generated.
	minifiedLineBytes = 1000
	// entropyMinLineBytes is the shortest line whose entropy is measured.
	entropyMinLineBytes = 256
	// entropyTextBits is the Shannon entropy (bits per byte) above which a
	// text line looks like an encoded blob (base64 is near 6, code below 5.3).
	entropyTextBits = 5.5
	// entropyBinaryBits is the entropy above which an unrecognised binary
	// file looks compressed or encrypted.
	entropyBinaryBits = 7.5
	// entropyMinBinaryBytes is the smallest binary file measured.
	entropyMinBinaryBytes = 4096
	// streamBufferBytes is the read buffer for files too large to keep.
	streamBufferBytes = 64 << 10
)

// scanFacts are what one pass over a file's content found.
type scanFacts struct {
	scanned       bool // text scanned line by line
	longestLine   int
	longestLineNo int
	entropyLineNo int // first long line over entropyTextBits
	entropyLine   float64
	entropy       float64 // whole-file entropy (binary files)
	invisible     []hit
	invisibleMore int // hits beyond the cap
}

// facts returns what scanning the file's text finds, scanning it on first
// use: most files of a release are unchanged and never need it.
func (f *File) facts(maxHits int) *scanFacts { return f.factsOf(f.text, f.hasText, maxHits) }

// factsOf is facts for a file whose text is given (ok) rather than kept:
// a streamed comparison scans text while it holds it.
func (f *File) factsOf(text string, ok bool, maxHits int) *scanFacts {
	f.scanOnce.Do(func() {
		if ok && f.kept && !f.scan.scanned {
			f.scan = scanText(text, maxHits)
		}
	})
	return &f.scan
}

// hit is one invisible character in a text file.
type hit struct {
	line int
	r    rune // utf8.RuneError for invalid bytes
}

// readContent reads exactly size bytes of a regular file from r, hashes
// and scans them, and keeps text content within the caps.
func (b *builder) readContent(f *File, r io.Reader, size int64) error {
	if r == nil {
		return fmt.Errorf("no content")
	}
	f.Size = size
	h := sha256.New()
	if size <= b.lim.MaxTextBytes {
		// Read into the buffer the text will be kept in, hashing on the
		// way, so that the content exists once in memory.
		var buf, pooled []byte // pooled: buf, when it comes from the text pool
		if b.stream != nil {
			// A streamed comparison holds text only while it is needed;
			// wait until there is room for this file's.
			var err error
			if buf, err = b.stream.acquire(f.Path, size); err != nil {
				return err
			}
			if !keepsText(f.Path) {
				pooled = buf
			}
		} else {
			buf = make([]byte, size)
		}
		for n := 0; n < len(buf); {
			want := min(len(buf)-n, streamBufferBytes)
			m, err := io.ReadFull(r, buf[n:n+want])
			h.Write(buf[n : n+m])
			n += m
			if err != nil {
				return shortRead(err, size)
			}
		}
		if err := expectEOF(r, size); err != nil {
			return err
		}
		text := bytesText(buf)
		f.SHA256 = hex.EncodeToString(h.Sum(nil))
		sniffHead(f, []byte(text[:min(len(text), binarySniffBytes)]))
		if f.Binary {
			f.scan.entropy = entropy(histogram(text), len(text))
			b.stream.release(size, pooled)
			return nil
		}
		f.Lines = countLines(text)
		if b.retained+size > b.lim.MaxRetainedBytes {
			// Scan now: the text will not be there later.
			f.scan = scanText(text, b.lim.MaxHitsPerFile)
			f.Note = fmt.Sprintf("content not kept: the tree already keeps %d bytes of text", b.retained)
			b.stream.release(size, pooled)
			return nil
		}
		b.retained += size
		f.text, f.hasText, f.kept = text, true, true
		f.pooled = pooled
		return nil
	}
	// Too large to keep: stream, hashing and counting bytes.
	var head []byte
	var hist [256]int
	buf := b.buffer()
	var n int64
	for n < size {
		want := min(int64(len(buf)), size-n)
		m, err := io.ReadFull(r, buf[:want])
		n += int64(m)
		h.Write(buf[:m])
		addHistogram(&hist, buf[:m])
		if len(head) < binarySniffBytes {
			head = append(head, buf[:min(m, binarySniffBytes-len(head))]...)
		}
		if err != nil {
			return shortRead(err, size)
		}
	}
	if err := expectEOF(r, size); err != nil {
		return err
	}
	f.SHA256 = hex.EncodeToString(h.Sum(nil))
	sniffHead(f, head)
	f.scan.entropy = entropy(hist, int(min(size, math.MaxInt)))
	f.Note = fmt.Sprintf("not scanned line by line: larger than %d bytes", b.lim.MaxTextBytes)
	return nil
}

func (b *builder) buffer() []byte {
	if b.buf == nil {
		b.buf = make([]byte, streamBufferBytes)
	}
	return b.buf
}

// shortRead explains an error while reading content.
func shortRead(err error, size int64) error {
	if errors.Is(err, errBomb) || !(errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return err
	}
	return fmt.Errorf("content shorter than the %d bytes declared: %w", size, err)
}

// expectEOF fails if r yields more than the declared size.
func expectEOF(r io.Reader, size int64) error {
	var one [1]byte
	n, err := r.Read(one[:])
	if n > 0 {
		return fmt.Errorf("content is longer than the %d bytes declared", size)
	}
	if err != nil && err != io.EOF {
		return err
	}
	return nil
}

// sniffHead sets Binary and Magic from a file's first bytes.
func sniffHead(f *File, b []byte) {
	f.Binary = bytes.IndexByte(b[:min(len(b), binarySniffBytes)], 0) >= 0
	f.Magic = magicOf(b)
}

func magicOf(b []byte) Magic {
	if len(b) < 4 {
		if bytes.HasPrefix(b, []byte("#!")) {
			return MagicScript
		}
		return ""
	}
	switch {
	case bytes.HasPrefix(b, []byte("\x7fELF")):
		return MagicELF
	case bytes.HasPrefix(b, []byte{0xfe, 0xed, 0xfa, 0xce}), bytes.HasPrefix(b, []byte{0xfe, 0xed, 0xfa, 0xcf}),
		bytes.HasPrefix(b, []byte{0xce, 0xfa, 0xed, 0xfe}), bytes.HasPrefix(b, []byte{0xcf, 0xfa, 0xed, 0xfe}):
		return MagicMachO
	case bytes.HasPrefix(b, []byte{0xca, 0xfe, 0xba, 0xbe}):
		// Universal Mach-O binaries and Java classes share this magic; a
		// universal binary has a small architecture count next.
		if len(b) >= 8 && binary.BigEndian.Uint32(b[4:8]) < 32 {
			return MagicMachO
		}
		return MagicJava
	case bytes.HasPrefix(b, []byte("\x00asm")):
		return MagicWasm
	case bytes.HasPrefix(b, []byte("MZ")):
		if len(b) >= 0x40 {
			off := int(binary.LittleEndian.Uint32(b[0x3c:0x40]))
			if off >= 0 && off+4 <= len(b) && string(b[off:off+4]) != "PE\x00\x00" {
				return ""
			}
		}
		return MagicPE
	case bytes.HasPrefix(b, []byte("#!")):
		return MagicScript
	}
	return archiveMagic(b)
}

// archiveMagic recognises archive and compressed formats by their first
// bytes (and tar by its "ustar" field at offset 257).
func archiveMagic(b []byte) Magic {
	switch {
	case bytes.HasPrefix(b, []byte("PK\x03\x04")), bytes.HasPrefix(b, []byte("PK\x05\x06")), bytes.HasPrefix(b, []byte("PK\x07\x08")):
		return MagicZip
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return MagicGzip
	case bytes.HasPrefix(b, []byte("\xfd7zXZ\x00")):
		return MagicXz
	case bytes.HasPrefix(b, []byte("BZh")):
		return MagicBzip2
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return MagicZstd
	case bytes.HasPrefix(b, []byte("7z\xbc\xaf\x27\x1c")):
		return Magic7z
	case bytes.HasPrefix(b, []byte("Rar!\x1a\x07")):
		return MagicRar
	case len(b) >= 262 && string(b[257:262]) == "ustar":
		return MagicTar
	}
	return ""
}

// nestedArchive reports whether m is an archive or compression format.
func nestedArchive(m Magic) bool { return archiveKinds[m] }

var archiveKinds = map[Magic]bool{MagicZip: true, MagicGzip: true, MagicXz: true, MagicBzip2: true, MagicZstd: true, Magic7z: true, MagicRar: true, MagicTar: true}

// scanText walks a text file once, finding its longest line, long lines
// of high entropy, and invisible characters (at most maxHits of them).
func scanText(b string, maxHits int) scanFacts {
	s := scanFacts{scanned: true}
	line := 1
	start := 0
	endLine := func(end int) {
		n := end - start
		if n > s.longestLine {
			s.longestLine, s.longestLineNo = n, line
		}
		if n >= entropyMinLineBytes && s.entropyLineNo == 0 {
			if e := entropy(histogram(b[start:end]), n); e > entropyTextBits {
				s.entropyLineNo, s.entropyLine = line, e
			}
		}
	}
	add := func(r rune) {
		if len(s.invisible) < maxHits {
			s.invisible = append(s.invisible, hit{line: line, r: r})
		} else {
			s.invisibleMore++
		}
	}
	prevVS := false
	for i := 0; i < len(b); {
		// Skip printable ASCII bytes eight at a time, up to the first
		// other byte: most text is.
		if i+8 <= len(b) {
			w := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
				uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
			del := w ^ (0x7f * swarOnes)
			m := w&swarHigh | (w-0x20*swarOnes)&^w&swarHigh | (del-swarOnes)&^del&swarHigh
			if m == 0 {
				prevVS = false
				i += 8
				continue
			}
			if k := bits.TrailingZeros64(m) / 8; k > 0 {
				prevVS = false
				i += k
			}
		}
		c := b[i]
		if c < utf8.RuneSelf {
			prevVS = false
			switch {
			case c == '\n':
				endLine(i)
				line++
				start = i + 1
			case c == '\t':
			case c == '\r':
				if i+1 < len(b) && b[i+1] != '\n' {
					add('\r') // a lone carriage return hides what precedes it on a terminal
				}
			case c < 0x20 || c == 0x7f:
				add(rune(c))
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(b[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			add(utf8.RuneError)
		case r == 0xfeff && i == 0:
			// A byte order mark at the very start is common and harmless.
		case isVS(r):
			// One variation selector after a visible character is normal
			// (emoji); a run of them can encode a hidden payload.
			if prevVS || r >= 0xe0100 {
				add(r)
			}
			prevVS = true
			i += n
			continue
		case hidden(r):
			add(r)
		}
		prevVS = false
		i += n
	}
	endLine(len(b))
	return s
}

// Eight-byte masks for scanText: w&swarHigh flags the bytes of w that are
// 0x80 or more, (w-0x20*swarOnes)&^w&swarHigh the bytes below 0x20 and
// (d-swarOnes)&^d&swarHigh, for d = w^(0x7f*swarOnes), the bytes that are
// 0x7f. The last two may also flag bytes above a flagged one (a borrow
// runs on), never below: the lowest flag of the three is the first byte
// that is not printable ASCII.
const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

func isVS(r rune) bool { return (r >= 0xfe00 && r <= 0xfe0f) || (r >= 0xe0100 && r <= 0xe01ef) }

func histogram[T string | []byte](b T) [256]int {
	var h [256]int
	addHistogram(&h, b)
	return h
}

func addHistogram[T string | []byte](h *[256]int, b T) {
	for i := 0; i < len(b); i++ {
		h[b[i]]++
	}
}

// entropy is the Shannon entropy, in bits per byte, of a byte histogram.
func entropy(h [256]int, n int) float64 {
	if n == 0 {
		return 0
	}
	var e float64
	for _, c := range h {
		if c > 0 {
			p := float64(c) / float64(n)
			e -= p * math.Log2(p)
		}
	}
	return e
}
