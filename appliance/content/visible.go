package content

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Visible renders s as safe, visible text: every control character (C0,
// DEL, C1, including tab and newline), bidirectional control, zero-width or
// other invisible or format character, line or paragraph separator,
// variation selector and noncharacter is shown as an escape such as \x1b,
// \u202e or \U000e0100, and each byte of invalid UTF-8 as \xNN. Nothing in
// the result can move the cursor, change colours or reorder text. A
// backslash is left as is, so `\u202e` typed literally looks the same as an
// escaped U+202E; the Signals, not the rendering, say which one it was.
func Visible(s string) string { return visible(s, false) }

// VisibleLine is Visible for one line of a text file: it leaves horizontal
// tabs in place and escapes everything else Visible does.
func VisibleLine(s string) string { return visible(s, true) }

func visible(s string, keepTab bool) string {
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
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepTab && r == '\t':
			b.WriteByte('\t')
		case r < 0x80 && (r < 0x20 || r == 0x7f):
			fmt.Fprintf(&b, `\x%02x`, r)
		case hidden(r):
			if r > 0xffff {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// hidden reports whether r is a character that does not show as itself:
// controls, format characters (bidi, zero-width, soft hyphen, tags),
// default-ignorable code points, fillers that render blank, line and
// paragraph separators, variation selectors and noncharacters.
func hidden(r rune) bool {
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
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// bidiControl reports whether r is a bidirectional formatting character.
func bidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// zeroWidth reports whether r is a zero-width character.
func zeroWidth(r rune) bool {
	return (r >= 0x200b && r <= 0x200d) || r == 0x2060 || r == 0xfeff
}

// describeRune names an invisible character for a signal.
func describeRune(r rune) string {
	var what string
	switch {
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		what = "control character"
	case bidiControl(r):
		what = "bidirectional control"
	case zeroWidth(r):
		what = "zero-width character"
	case unicode.Is(unicode.Variation_Selector, r):
		what = "variation selector"
	default:
		what = "invisible or format character"
	}
	return fmt.Sprintf("%s %s", what, Visible(string(r)))
}
