package content

import "airlock.dev/airlock/internal/safetext"

// Visible renders s as safe, visible text (the rules of package
// internal/safetext): every control character (C0,
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
	if keepTab {
		return safetext.Line(s)
	}
	return safetext.String(s)
}

// hidden reports whether r is a character that does not show as itself
// (see safetext.Hidden).
func hidden(r rune) bool { return safetext.Hidden(r) }

// hiddenInName reports whether r may not appear in a name shown for review:
// hidden, or private-use or unassigned (safetext.Glyphless).
func hiddenInName(r rune) bool { return safetext.Hidden(r) || safetext.Glyphless(r) }

// bidiControl reports whether r is a bidirectional formatting character.
func bidiControl(r rune) bool { return safetext.Bidi(r) }

// zeroWidth reports whether r is a zero-width character.
func zeroWidth(r rune) bool { return safetext.ZeroWidth(r) }

// describeRune names an invisible character for a signal.
func describeRune(r rune) string { return safetext.Describe(r) }
