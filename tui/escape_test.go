package tui

import (
	"strings"
	"testing"

	"github.com/gdamore/tcell/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/rivo/tview"
)

// renderedCell is one screen cell as a test sees it.
type renderedCell struct {
	Text        string
	Highlighted bool // drawn in the escape style
	Default     bool // drawn in the view's own default style
}

// renderLine draws markup in a TextView with colours and regions on, one
// line wide enough for it, and reads the cells back.
func renderLine(t testing.TB, markup string, width int) []renderedCell {
	t.Helper()
	scr := tcell.NewSimulationScreen("UTF-8")
	if err := scr.Init(); err != nil {
		t.Fatal(err)
	}
	defer scr.Fini()
	scr.SetSize(width, 1)
	tv := tview.NewTextView().SetDynamicColors(true).SetRegions(true).SetWrap(false)
	tv.SetText(markup)
	tv.SetRect(0, 0, width, 1)
	tv.Draw(scr)
	scr.Show()
	cells, w, _ := scr.GetContents()
	defFg, defBg, _ := tcell.StyleDefault.Foreground(tview.Styles.PrimaryTextColor).Background(tview.Styles.PrimitiveBackgroundColor).Decompose()
	var out []renderedCell
	for x := 0; x < w; x++ {
		c := cells[x]
		fg, bg, attr := c.Style.Decompose()
		out = append(out, renderedCell{
			Text:        string(c.Runes),
			Highlighted: fg == tcell.ColorBlack && bg == tcell.ColorYellow && attr == 0,
			Default:     fg == defFg && bg == defBg && attr == 0,
		})
	}
	return out
}

// expectCells is what Escape(s) must show: each character of s as itself in
// the default style, or its escape highlighted.
func expectCells(s string) []renderedCell {
	var out []renderedCell
	for _, p := range pieces(s) {
		if !p.escaped {
			out = append(out, renderedCell{Text: p.text, Default: true})
			continue
		}
		for _, c := range p.text {
			out = append(out, renderedCell{Text: string(c), Highlighted: true})
		}
	}
	return out
}

// checkShowsLiterally renders "<" + Escape(s) + ">" and compares the cells
// with what s must show, then checks that the rest of the line is blank and
// unstyled.
func checkShowsLiterally(t testing.TB, s string) {
	t.Helper()
	want := append([]renderedCell{{Text: "<", Default: true}}, expectCells(s)...)
	want = append(want, renderedCell{Text: ">", Default: true})
	width := len(want) + 4
	got := renderLine(t, "<"+Escape(s)+">", width)
	for _, c := range got[len(want):] {
		if c.Text != " " && c.Text != "" || c.Highlighted {
			t.Fatalf("Escape(%q): trailing cell %+v; whole line %+v", s, c, got)
		}
	}
	if diff := cmp.Diff(want, got[:len(want)]); diff != "" {
		t.Fatalf("Escape(%q) = %q renders wrong (-want +got):\n%s", s, Escape(s), diff)
	}
}

func TestEscapeShowsLiterally(t *testing.T) {
	cases := []string{
		"plain text",
		"[red]",
		"[red]x[-]",
		`["region"]`,
		`["a"]x[""]`,
		"[::b]bold",
		"[-:-:-]",
		"[:::https://evil.example/]click[:::-]",
		"[#ff0000]",
		"[red[]",
		"[red[[]",
		"[a[]b[]",
		"[[red]]",
		"[",
		"]",
		"[]",
		"[[:]]",
		"[:]",
		"x[yellow:red:bl]y",
		"\x1b[31mred\x1b[0m",
		"\x1b]0;title\x07",
		"\x9b31m",
		"tab\there",
		"new\nline\r",
		"abc\u202edcba",
		"\u2066iso\u2069 \u200e\u200f\u061c",
		"zero\u200bwidth\u200c\u200d\u2060\ufeff",
		"bad\xffutf8\xc3",
		"\u00e9l\u00e8ve",
		"\x00\x7f",
	}
	for _, s := range cases {
		checkShowsLiterally(t, s)
	}
}

func TestEscapeTable(t *testing.T) {
	for _, tc := range []struct{ in, plain string }{
		{"[red]", "[red]"},
		{"a\u202eb", `a\u202eb`},
		{"\x1b[0m", `\x1b[0m`},
		{"\xff", `\xff`},
		{"\u200b", `\u200b`},
	} {
		if got := Plain(tc.in); got != tc.plain {
			t.Errorf("Plain(%q) = %q, want %q", tc.in, got, tc.plain)
		}
	}
	if got, want := EscapeLine("a\tb"), "a       b"; got != want {
		t.Errorf("EscapeLine tab = %q, want %q", got, want)
	}
	if strings.Contains(Escape("\u202e"), "\u202e") {
		t.Error("Escape kept a raw right-to-left override")
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"[red]", `["r"]x`, "[a[]", "\x1b[31m", "\u202e", "[:::u]", "[[[]]]", "\xff[", "\u0301[", "日本[語]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 200 {
			return
		}
		// Wide and combining characters occupy cells differently; the
		// property is about tags and escapes, so check the styled text only.
		want := append([]renderedCell{{Text: "<", Default: true}}, expectCells(s)...)
		want = append(want, renderedCell{Text: ">", Default: true})
		got := renderLine(t, "<"+Escape(s)+">", 8*len(want)+4)
		var gotText, wantText strings.Builder
		last := 0
		for i, c := range got {
			if c.Text == ">" {
				last = i
			}
		}
		for _, c := range got[:last+1] {
			if c.Text == "" {
				continue // the right half of a wide character
			}
			if !c.Default && !c.Highlighted {
				t.Fatalf("Escape(%q): a cell has a style the input chose: %+v", s, c)
			}
			if c.Highlighted {
				gotText.WriteString("\x00")
			}
			gotText.WriteString(c.Text)
		}
		for _, c := range want {
			if c.Highlighted {
				wantText.WriteString("\x00")
			}
			wantText.WriteString(c.Text)
		}
		norm := func(s string) string {
			return strings.Map(func(r rune) rune {
				if r == ' ' {
					return -1
				}
				return r
			}, s)
		}
		if norm(gotText.String()) != norm(wantText.String()) {
			t.Fatalf("Escape(%q) shows %q, want %q", s, gotText.String(), wantText.String())
		}
	})
}
