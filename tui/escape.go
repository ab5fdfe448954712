package tui

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rivo/uniseg"

	"airlock.dev/airlock/appliance/content"
)

// escapedStyle is the style tag that marks an escape we inserted, such as
// \u202e for a right-to-left override: black on yellow, which the 16-colour
// Linux console has. reset returns to the surrounding style.
const (
	escapedStyle = "[black:yellow]"
	escapedReset = "[-:-]"
)

// noopTag is a complete tview style tag that changes nothing (no
// foreground, no background, no attributes). Written right after every
// '[' that came from untrusted text, it ends any tag that '[' could open:
// tview sees "[[:]", prints the first '[' and consumes "[:]" as a tag.
const noopTag = "[:]"

// Escape returns untrusted text (anything that came from a bundle: names,
// paths, notes, provenance fields, diff lines) as tview markup that shows
// exactly the text's own characters and nothing else:
//
//   - every '[' is followed by a no-op tag, so no colour, attribute, URL or
//     region tag and no tview escape sequence ("[red[]") in the text is
//     interpreted: "[red]" shows as "[red]";
//   - control characters (C0 including tab and newline, DEL, C1, hence ESC
//     and every CSI/OSC introducer), bidirectional controls, zero-width and
//     other invisible characters are shown as escapes such as \x1b or
//     \u202e, in a highlighted style applied here, never by the input;
//   - each byte of invalid UTF-8 is shown as \xNN, highlighted.
//
// The result must be placed in tview text that parses tags (dynamic colours
// on) and must not directly follow an unclosed '[' of the caller's own text.
func Escape(s string) string { return escape(s, false) }

// EscapeLine is Escape for one line of a text file: tabs become spaces up
// to the next multiple of eight columns instead of \x09.
func EscapeLine(s string) string { return escape(s, true) }

func escape(s string, tabs bool) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	col := 0
	base := false // the previous character shows as itself and takes a mark
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		raw := s[i : i+n]
		i += n
		extends, prepends := clings(r, raw)
		if extends && base {
			b.WriteString(raw)
			continue
		}
		mark := extends || prepends
		base = r != '[' && r != '\t' && !mark && content.Visible(raw) == raw
		switch {
		case mark:
			// A combining mark with nothing of the text's own to sit on
			// would attach to a tag or to one of our escapes.
			b.WriteString(escapedStyle + markEscape(r) + escapedReset)
			col += 6
		case r == '[':
			b.WriteString("[" + noopTag)
			col++
		case tabs && r == '\t':
			pad := 8 - col%8
			b.WriteString(strings.Repeat(" ", pad))
			col += pad
		case r >= 0x20 && r < 0x7f:
			b.WriteByte(byte(r))
			col++
		default:
			v := content.Visible(raw)
			if v == raw {
				b.WriteString(raw)
				col++
				continue
			}
			// v is an ASCII escape like \x1b or \u202e: no '[' in it.
			b.WriteString(escapedStyle + v + escapedReset)
			col += len(v)
		}
	}
	return b.String()
}

// clings reports whether the character r (raw in the text) joins a
// neighbour into one grapheme cluster on screen whatever that neighbour
// is. Extenders (combining and spacing marks, emoji modifiers) join the
// character before them: shown after a tag or one of our escapes they would
// merge with it, so they are kept only on a base of the text's own. Prepended
// concatenation marks join the character after them, which may be what the
// caller writes next, so they are always escaped. The decision is uniseg's,
// the segmenter tview draws with, so what Escape promises is what the screen
// does.
func clings(r rune, raw string) (extends, prepends bool) {
	if r == utf8.RuneError && len(raw) == 1 {
		return false, false // invalid byte: shown as \xNN
	}
	c, _, _, _ := uniseg.FirstGraphemeClusterInString("0"+raw, -1)
	extends = len(c) > 1
	c, _, _, _ = uniseg.FirstGraphemeClusterInString(raw+"0", -1)
	return extends, len(c) > len(raw)
}

// markEscape spells a combining mark as \uXXXX.
func markEscape(r rune) string {
	if r > 0xffff {
		return fmt.Sprintf(`\U%08x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// Plain returns the characters Escape(s) shows on screen, without markup:
// what a test or a log line expects to read.
func Plain(s string) string {
	var b strings.Builder
	for _, p := range pieces(s) {
		b.WriteString(p.text)
	}
	return b.String()
}

// piece is one character of untrusted text as shown: itself, or an escape.
type piece struct {
	text    string
	escaped bool
}

// pieces splits s into what Escape shows, character by character (a
// combining mark on a shown character is part of that character's piece).
func pieces(s string) []piece {
	var out []piece
	base := false
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		raw := s[i : i+n]
		i += n
		extends, prepends := clings(r, raw)
		if extends && base {
			out[len(out)-1].text += raw
			continue
		}
		mark := extends || prepends
		base = r != '[' && !mark && content.Visible(raw) == raw
		switch {
		case mark:
			out = append(out, piece{markEscape(r), true})
		case content.Visible(raw) == raw:
			out = append(out, piece{raw, false})
		default:
			out = append(out, piece{content.Visible(raw), true})
		}
	}
	return out
}
