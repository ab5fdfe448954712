package content

import (
	"testing"
	"unicode/utf8"
)

func TestVisible(t *testing.T) {
	for _, tc := range []struct{ in, want, line string }{
		{"plain/path.js", "plain/path.js", "plain/path.js"},
		{"a\tb\nc", `a\x09b\x0ac`, "a\tb\\x0ac"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`, `\x1b[31mred\x1b[0m`},
		{"exe\u202egnp.js", `exe\u202egnp.js`, ""},
		{"\u2066\u2067\u2068\u2069\u200e\u200f\u061c", `\u2066\u2067\u2068\u2069\u200e\u200f\u061c`, ""},
		{"zero\u200b\u200c\u200d\u2060\ufeffwidth", `zero\u200b\u200c\u200d\u2060\ufeffwidth`, ""},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`, ""},
		{"c1\u0085\u009b", `c1\u0085\u009b`, ""},
		{"del\x7f", `del\x7f`, ""},
		{"soft\u00adhyphen", `soft\u00adhyphen`, ""},
		{"filler\u3164x", `filler\u3164x`, ""},
		{"sep\u2028\u2029", `sep\u2028\u2029`, ""},
		{"tag\U000e0041", `tag\U000e0041`, ""},
		{"vs\U000e0100", `vs\U000e0100`, ""},
		{"café ünïcode 日本 [red]", "café ünïcode 日本 [red]", ""},
	} {
		if got := Visible(tc.in); got != tc.want {
			t.Errorf("Visible(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.line != "" {
			if got := VisibleLine(tc.in); got != tc.line {
				t.Errorf("VisibleLine(%q) = %q, want %q", tc.in, got, tc.line)
			}
		}
	}
}

// FuzzVisible checks that no output of Visible holds a character that does
// not show as itself.
func FuzzVisible(f *testing.F) {
	for _, s := range []string{"", "a\u202eb", "\x1b]0;title\x07", "\xff", "\u200b", "日本\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Visible(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Visible(%q) is not valid UTF-8", s)
		}
		for _, r := range out {
			if hidden(r) {
				t.Fatalf("Visible(%q) = %q keeps %U", s, out, r)
			}
		}
		if Visible(out) != out {
			t.Fatalf("Visible is not idempotent on %q", s)
		}
	})
}
