package qr

import "strings"

// Cell is one terminal character cell showing two modules stacked: draw
// HalfBlock with the foreground colour for Top and the background colour
// for Bottom, black when true. Explicit colours for both make the code
// independent of the terminal's theme.
type Cell struct {
	Top, Bottom bool // true: dark module
}

// HalfBlock is the character every Cell is drawn with.
const HalfBlock = '▀'

// Cells lays the symbol and a quiet zone of quiet modules out as rows of
// cells, two module rows per cell row. Terminal cells are about twice as
// tall as wide, so the modules come out square.
func (s *Symbol) Cells(quiet int) [][]Cell {
	if quiet < 0 {
		quiet = 0
	}
	n := s.Size() + 2*quiet
	rows := make([][]Cell, (n+1)/2)
	for r := range rows {
		rows[r] = make([]Cell, n)
		for x := range n {
			rows[r][x] = Cell{
				Top:    s.Dark(x-quiet, 2*r-quiet),
				Bottom: 2*r+1 < n && s.Dark(x-quiet, 2*r+1-quiet),
			}
		}
	}
	return rows
}

// ANSI returns the symbol as text for a plain terminal: half blocks with
// explicit black and white foreground and background colours (SGR 30/97
// and 40/107), each line reset at its end.
func (s *Symbol) ANSI(quiet int) string {
	var b strings.Builder
	for _, row := range s.Cells(quiet) {
		prev := Cell{Top: true, Bottom: true} // force the first escape
		first := true
		for _, c := range row {
			if first || c != prev {
				fg, bg := "97", "107"
				if c.Top {
					fg = "30"
				}
				if c.Bottom {
					bg = "40"
				}
				b.WriteString("\x1b[" + fg + ";" + bg + "m")
				prev, first = c, false
			}
			b.WriteRune(HalfBlock)
		}
		b.WriteString("\x1b[0m\n")
	}
	return b.String()
}
