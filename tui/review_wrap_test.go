package tui

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestWordWrap(t *testing.T) {
	for _, c := range []struct {
		in    string
		width int
		want  []string
	}{
		{"", 10, []string{""}},
		{"a b c", 10, []string{"a b c"}},
		{"the quick brown fox", 9, []string{"the quick", "brown fox"}},
		{"abcdefghijkl xy", 5, []string{"abcde", "fghij", "kl xy"}},
		{"  spaced   out  ", 20, []string{"spaced out"}},
	} {
		if got := wordWrap(c.in, c.width); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("wordWrap(%q, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
}

func FuzzWordWrap(f *testing.F) {
	f.Add("content diffs were not available for 1 of 1 new or changed targets", 20)
	f.Fuzz(func(t *testing.T, s string, width int) {
		if width < 1 || width > 200 || !utf8.ValidString(s) {
			return
		}
		lines := wordWrap(s, width)
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > width {
				t.Fatalf("line %q has %d characters, width %d", l, n, width)
			}
		}
		if strings.Join(strings.Fields(strings.Join(lines, "")), "") != strings.Join(strings.Fields(s), "") {
			t.Fatalf("wordWrap(%q, %d) = %q lost or added characters", s, width, lines)
		}
	})
}
