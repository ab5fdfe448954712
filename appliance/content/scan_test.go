package content

import (
	"reflect"
	"testing"
	"unicode/utf8"
)

// refScanText is scanText as it was before it skipped to the first byte
// that is not printable ASCII: byte by byte after each such chunk.
func refScanText(b string, maxHits int) scanFacts {
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
		// Skip eight printable ASCII bytes at a time: most text is.
		if i+8 <= len(b) {
			w := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
				uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
			del := w ^ (0x7f * swarOnes)
			if w&swarHigh == 0 && (w-0x20*swarOnes)&^w&swarHigh == 0 && (del-swarOnes)&^del&swarHigh == 0 {
				prevVS = false
				i += 8
				continue
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

// FuzzScanText checks scanText against refScanText.
func FuzzScanText(f *testing.F) {
	f.Add("a\u202eb\n\xff\ufe00\ufe01\r\x7f\tx")
	f.Add("short\nlines\nof text\n\n")
	f.Add("\ufeffbom then \u200b zero width\n")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := scanText(s, 3), refScanText(s, 3); !reflect.DeepEqual(got, want) {
			t.Fatalf("scanText(%q) = %+v, want %+v", s, got, want)
		}
	})
}
