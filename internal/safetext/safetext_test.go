package safetext

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want, line string }{
		{"plain/path.js", "plain/path.js", "plain/path.js"},
		{"a\tb\nc", `a\x09b\x0ac`, "a\tb\\x0ac"},
		{"frame\x1b[2J\x07.png", `frame\x1b[2J\x07.png`, ""},
		{"exe\u202egnp.js", `exe\u202egnp.js`, ""},
		{"zero\u200bwidth", `zero\u200bwidth`, ""},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`, ""},
		{"c1\u0085\u009b", `c1\u0085\u009b`, ""},
		{"\u0301leading mark", `\u0301leading mark`, ""},
		{"e\u0301 kept", "e\u0301 kept", ""},
		{"\x1b\u0301", `\x1b\u0301`, ""},
		{"café 日本 [red]", "café 日本 [red]", ""},
		// Unassigned and private-use code points have no agreed glyph or
		// width: a terminal may draw them as nothing, or over a neighbour.
		{"x\u2fffy", `x\u2fffy`, ""},
		{"icon\ue000", `icon\ue000`, ""},
		{"\U000f0000pua", `\U000f0000pua`, ""},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.line != "" {
			if got := Line(tc.in); got != tc.line {
				t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.line)
			}
		}
	}
}

func TestDescribe(t *testing.T) {
	for r, want := range map[rune]string{
		0x202e: `bidirectional control \u202e`,
		0x200b: `zero-width character \u200b`,
		0x1b:   `control character \x1b`,
		0x9b:   `control character \u009b`,
	} {
		if got := Describe(r); got != want {
			t.Errorf("Describe(%U) = %q, want %q", r, got, want)
		}
	}
}

// FuzzString checks that no output holds a character that does not show as
// itself, that the output is valid UTF-8, and that rendering is idempotent.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "a\u202eb", "\x1b]0;title\x07", "\xff", "\u200b", "日本\t", "\u0301x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if !utf8.ValidString(out) {
			t.Fatalf("String(%q) is not valid UTF-8", s)
		}
		for i, r := range out {
			if Hidden(r) {
				t.Fatalf("String(%q) = %q keeps %U", s, out, r)
			}
			if i == 0 && unicode.In(r, unicode.Mn, unicode.Me) {
				t.Fatalf("String(%q) = %q starts with a bare combining mark", s, out)
			}
		}
		if String(out) != out {
			t.Fatalf("String is not idempotent on %q", s)
		}
	})
}
