// Package safetext renders untrusted text (anything that came from a bundle,
// an artifact, a USB stick or a QR frame) so that a plain terminal shows the
// text's own characters and nothing else.
//
// The rules are the ones every screen of Airlock uses (the terminal UI's
// escaping delegates here for the characters it must escape):
//
//   - control characters (C0 including tab and newline, DEL, C1, hence ESC
//     and every CSI or OSC introducer) are shown as \xNN or \u00NN;
//   - bidirectional controls, zero-width and other format or
//     default-ignorable characters, blank fillers, line and paragraph
//     separators, variation selectors, noncharacters, and private-use and
//     unassigned code points (no agreed glyph or width) are shown as \uXXXX
//     or \UXXXXXXXX;
//   - each byte of invalid UTF-8 is shown as \xNN;
//   - a combining mark with no character of the text's own before it (at
//     the start, or after an escape) is shown as \uXXXX, so that it cannot
//     sit on the caller's text or on an escape.
//
// Nothing in the result can move the cursor, change colours, reorder text
// or hide a character. A backslash is left as is: `\u202e` typed literally
// looks like an escaped U+202E, and risk signals, not the rendering, say
// which one it was.
//
// All functions are pure and safe for concurrent use.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String renders s for a terminal line, escaping as the package doc says.
func String(s string) string { return render(s, false) }

// Line is String for one line of a text file: horizontal tabs are kept.
func Line(s string) string { return render(s, true) }

// Quote is String between double quotes, for naming untrusted text inside
// a sentence.
func Quote(s string) string { return `"` + String(s) + `"` }

// Safe reports whether String(s) == s: s shows exactly as itself.
func Safe(s string) bool { return render(s, false) == s }

func render(s string, keepTab bool) string {
	// Fast path: printable ASCII only.
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			if !(keepTab && c == '\t') {
				clean = false
				break
			}
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	base := false // the previous character showed as itself
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		shown := false
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepTab && r == '\t':
			b.WriteByte('\t')
			shown = true
		case r < 0x80 && (r < 0x20 || r == 0x7f):
			fmt.Fprintf(&b, `\x%02x`, r)
		case Hidden(r) || Glyphless(r):
			b.WriteString(Escape(r))
		case unicode.In(r, unicode.Mn, unicode.Me) && !base:
			b.WriteString(Escape(r))
		default:
			b.WriteString(s[i : i+n])
			shown = true
		}
		base = shown
		i += n
	}
	return b.String()
}

// Escape spells r as \xNN (ASCII controls), \uXXXX or \UXXXXXXXX.
func Escape(r rune) string {
	switch {
	case r < 0x80:
		return fmt.Sprintf(`\x%02x`, r)
	case r > 0xffff:
		return fmt.Sprintf(`\U%08x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// Hidden reports whether r does not show as itself: controls, format
// characters (bidi, zero-width, soft hyphen, tags), default-ignorable code
// points, fillers that render blank, line and paragraph separators,
// variation selectors and noncharacters.
func Hidden(r rune) bool {
	switch {
	case r < 0x20 || (r >= 0x7f && r <= 0x9f):
		return true
	case r < 0xa0:
		return false
	case r == 0x115f || r == 0x1160 || r == 0x3164 || r == 0xffa0: // Hangul fillers
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	case r&0xfffe == 0xfffe || (r >= 0xfdd0 && r <= 0xfdef): // noncharacters
		return true
	case r > unicode.MaxRune:
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// Glyphless reports whether r is a private-use or unassigned code point (in
// the Unicode version of Go's tables, which the terminal ui's segmenter
// shares). Such a character has no agreed glyph or width: a terminal may
// draw it as anything or as nothing, in one cell or two, so String escapes
// it. It is not Hidden: private-use icons in a stylesheet are ordinary file
// content, while a name that carries one is flagged by the review.
func Glyphless(r rune) bool {
	if r < 0xa0 || r > unicode.MaxRune {
		return false
	}
	return unicode.Is(unicode.Co, r) ||
		!unicode.IsGraphic(r) && !unicode.In(r, unicode.Cc, unicode.Cf, unicode.Cs, unicode.Zl, unicode.Zp)
}

// Bidi reports whether r is a bidirectional formatting character.
func Bidi(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// ZeroWidth reports whether r is a zero-width character.
func ZeroWidth(r rune) bool {
	return (r >= 0x200b && r <= 0x200d) || r == 0x2060 || r == 0xfeff
}

// Control reports whether r is a C0 or C1 control character or DEL.
func Control(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }

// Describe names a hidden character for a message: "bidirectional
// control \u202e".
func Describe(r rune) string {
	var what string
	switch {
	case r == utf8.RuneError:
		what = "invalid UTF-8"
	case Control(r):
		what = "control character"
	case Bidi(r):
		what = "bidirectional control"
	case ZeroWidth(r):
		what = "zero-width character"
	case unicode.Is(unicode.Variation_Selector, r):
		what = "variation selector"
	default:
		what = "invisible or format character"
	}
	if r == utf8.RuneError {
		return what
	}
	return what + " " + Escape(r)
}
