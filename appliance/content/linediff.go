package content

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"

	"github.com/aymanbagabas/go-udiff/lcs"
)

// Line diffs. Lines are interned to integers; unique common lines anchor
// the files (patience diff) so that large files with many scattered changes
// split into small regions, and go-udiff's bounded Myers LCS diffs each
// region. The result is a list of line-index replacements.
//
// A file's lines are int32 offsets into its text, and interning goes
// through an open-addressing table of line hashes, so that the diff of a
// file of n lines takes a few int32 slices of n entries. A lineDiffer keeps
// these slices from one file to the next.

// patienceDepth bounds the recursion of anchor finding.
const patienceDepth = 8

// maxLineDiffBytes is the largest text the line diff takes: offsets are
// int32.
const maxLineDiffBytes = math.MaxInt32 - 1

// textLines is a text split after each newline; the last line may lack one.
// Line i is text[off[i]:off[i+1]].
type textLines struct {
	text string
	off  []int32 // len(lines)+1 offsets; nil when there are no lines
}

func (l textLines) len() int {
	if len(l.off) == 0 {
		return 0
	}
	return len(l.off) - 1
}

func (l textLines) at(i int) string { return l.text[l.off[i]:l.off[i+1]] }

// splitOffsets splits s into lines, reusing off's storage. len(s) must be
// at most maxLineDiffBytes.
func splitOffsets(s string, off []int32) textLines {
	off = off[:0]
	if s == "" {
		return textLines{text: s, off: off}
	}
	n := countLines(s)
	off = slices.Grow(off, n+1)
	off = append(off, 0)
	for p := 0; p < len(s); {
		i := strings.IndexByte(s[p:], '\n')
		if i < 0 {
			p = len(s)
		} else {
			p += i + 1
		}
		off = append(off, int32(p))
	}
	return textLines{text: s, off: off}
}

// lineEnt locates a line: its offset, length and index in old's text, or
// in new's when n has its top bit set.
type lineEnt struct{ off, n, line uint32 }

const entNew = 1 << 31

// lineDiffer diffs the lines of two texts. Its slices are scratch memory,
// reused by the next diff; one lineDiffer serves one goroutine.
type lineDiffer struct {
	seed       maphash.Seed
	offA, offB []int32
	a, b       []rune    // interned line ids of the region being diffed
	slots      []uint32  // hash table of ids (see intern)
	ent        []lineEnt // per id: where a line with it is
	count      []uint8   // per id: occurrences in a region, saturating (a: low nibble, b: high)
	posB       []int32   // per id: a line of b with it
	out        []lcs.Diff
	pairs      [][2]int32 // scratch for anchors
	prev       []int32
	tails      []int32
	stack      [][2]int32 // anchors of the regions being recursed into

	touch  uint64    // keeps the reads of table slots ahead of use
	la, lb textLines // the texts being diffed
	a0, b0 int       // the first line of la, lb that ids index
}

func newLineDiffer() *lineDiffer { return &lineDiffer{seed: maphash.MakeSeed()} }

var errTextTooLarge = errors.New("text too large for the line diff")

// diff returns the replacements that turn the lines of old into the lines
// of new, in order, as line-index ranges, with the lines themselves. The
// returned slices are valid until the next call.
func (d *lineDiffer) diff(old, new string) (a, b textLines, out []lcs.Diff, err error) {
	defer func() {
		// go-udiff's LCS documents an internal panic as unreachable; a
		// hostile file must still not bring the review down.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("line diff failed: %v", r)
		}
	}()
	defer func() { d.la, d.lb = textLines{}, textLines{} }() // keep no text
	if len(old) > maxLineDiffBytes || len(new) > maxLineDiffBytes {
		return a, b, nil, fmt.Errorf("line diff failed: %w", errTextTooLarge)
	}
	a = splitOffsets(old, d.offA)
	b = splitOffsets(new, d.offB)
	d.offA, d.offB = a.off, b.off
	d.la, d.lb = a, b
	d.out = d.out[:0]
	// Common head and tail lines need no ids.
	a0, a1, b0, b1 := 0, a.len(), 0, b.len()
	for a0 < a1 && b0 < b1 && a.at(a0) == b.at(b0) {
		a0, b0 = a0+1, b0+1
	}
	for a0 < a1 && b0 < b1 && a.at(a1-1) == b.at(b1-1) {
		a1, b1 = a1-1, b1-1
	}
	if a0 == a1 || b0 == b1 {
		d.emit(lcs.Diff{Start: a0, End: a1, ReplStart: b0, ReplEnd: b1})
		return a, b, d.out, nil
	}
	d.intern(a0, a1, b0, b1)
	// ids are indexed from a0 and b0.
	d.a0, d.b0 = a0, b0
	d.run(0, a1-a0, 0, b1-b0, 0)
	return a, b, d.out, nil
}

// intern fills d.a and d.b with the ids of lines a0..a1 and b0..b1.
func (d *lineDiffer) intern(a0, a1, b0, b1 int) {
	// A slot holds id+1 in its low idBits bits, 0 when free, and the top
	// bits of the line's hash above them, so that most probes of other
	// lines end without looking at their text. The table starts sized
	// for the lines of old and doubles before it is three quarters full.
	n := (a1 - a0) + (b1 - b0)
	idBits := uint(bits.Len(uint(n)))
	idMask := uint32(1)<<idBits - 1
	tagOf := func(h uint64) uint32 { return uint32(h>>32) &^ idMask }
	size := 1 << bits.Len(uint(max(a1-a0, 8)*4/3))
	d.slots = grown(d.slots, size)
	clear(d.slots)
	mask := uint64(size - 1)
	ent, slots := d.ent[:0], d.slots
	la, lb := d.la, d.lb
	text := func(e lineEnt) string {
		if e.n&entNew != 0 {
			return lb.text[e.off : e.off+e.n&^entNew]
		}
		return la.text[e.off : e.off+e.n]
	}
	grow := func() {
		size *= 2
		mask = uint64(size - 1)
		slots = grown(d.slots[:0], size)
		clear(slots)
		d.slots = slots
		for id, e := range ent {
			h := maphash.String(d.seed, text(e))
			k := h & mask
			for slots[k] != 0 {
				k = (k + 1) & mask
			}
			slots[k] = tagOf(h) | uint32(id+1)
		}
	}
	intern := func(l textLines, i int, side uint32, h uint64) rune {
		off, end := l.off[i], l.off[i+1]
		s := l.text[off:end]
		tag := tagOf(h)
		for k := h & mask; ; k = (k + 1) & mask {
			v := slots[k]
			if v == 0 {
				ent = append(ent, lineEnt{uint32(off), uint32(end-off) | side, uint32(i)})
				slots[k] = tag | uint32(len(ent))
				if len(ent) >= size/4*3 {
					grow()
				}
				return rune(len(ent) - 1)
			}
			if v&^idMask != tag {
				continue
			}
			id := v&idMask - 1
			if text(ent[id]) == s {
				return rune(id)
			}
		}
	}
	// The lines of old go in batches: the table slots of a batch are read
	// first, so that their cache misses overlap.
	const batch = 32
	var hs [batch]uint64
	var touch uint64
	ids := slices.Grow(d.a[:0], a1-a0)
	for i := a0; i < a1; i += batch {
		m := min(batch, a1-i)
		for k := range m {
			h := maphash.String(d.seed, la.at(i+k))
			hs[k] = h
			touch += uint64(slots[h&mask])
		}
		for k := range m {
			ids = append(ids, intern(la, i+k, 0, hs[k]))
		}
	}
	d.a = ids
	// Most lines of new follow the line of old that the line before
	// matched: try that line first.
	ids = slices.Grow(d.b[:0], b1-b0)
	next := -1 // the line of old after the one the last line matched, or -1
	for j := b0; j < b1; j++ {
		s := lb.at(j)
		if next >= a0 && next < a1 && la.at(next) == s {
			ids = append(ids, d.a[next-a0])
			next++
			continue
		}
		id := intern(lb, j, entNew, maphash.String(d.seed, s))
		ids = append(ids, id)
		next = -1
		if e := ent[id]; e.n&entNew == 0 {
			next = int(e.line) + 1
		}
	}
	d.b = ids
	d.touch = touch
	d.ent = ent
	d.count = grown(d.count, len(ent))
	clear(d.count)
	d.posB = grown(d.posB, len(ent))
}

// grown returns s with length n, reusing its storage when it is large
// enough; the contents are not kept.
func grown[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// emit appends a replacement of lines (indexes into the whole texts).
func (d *lineDiffer) emit(x lcs.Diff) {
	if x.Start == x.End && x.ReplStart == x.ReplEnd {
		return
	}
	if n := len(d.out); n > 0 && d.out[n-1].End == x.Start && d.out[n-1].ReplEnd == x.ReplStart {
		d.out[n-1].End, d.out[n-1].ReplEnd = x.End, x.ReplEnd
		return
	}
	d.out = append(d.out, x)
}

// run diffs the id regions a0..a1 and b0..b1 (indexes into d.a, d.b).
func (d *lineDiffer) run(a0, a1, b0, b1, depth int) {
	for a0 < a1 && b0 < b1 && d.a[a0] == d.b[b0] {
		a0, b0 = a0+1, b0+1
	}
	for a0 < a1 && b0 < b1 && d.a[a1-1] == d.b[b1-1] {
		a1, b1 = a1-1, b1-1
	}
	oa, ob := d.a0, d.b0
	if a0 == a1 || b0 == b1 {
		d.emit(lcs.Diff{Start: oa + a0, End: oa + a1, ReplStart: ob + b0, ReplEnd: ob + b1})
		return
	}
	if depth < patienceDepth {
		// The anchors are pushed on d.stack; the recursion pushes and
		// pops above them.
		if s0, s1 := d.anchors(a0, a1, b0, b1); s1 > s0 {
			pa, pb := a0, b0
			for x := s0; x < s1; x++ {
				k := d.stack[x]
				d.run(pa, int(k[0]), pb, int(k[1]), depth+1)
				pa, pb = int(k[0])+1, int(k[1])+1
			}
			d.run(pa, a1, pb, b1, depth+1)
			d.stack = d.stack[:s0]
			return
		}
	}
	for _, x := range lcs.DiffRunes(d.a[a0:a1], d.b[b0:b1]) {
		d.emit(lcs.Diff{Start: oa + a0 + x.Start, End: oa + a0 + x.End, ReplStart: ob + b0 + x.ReplStart, ReplEnd: ob + b0 + x.ReplEnd})
	}
}

// anchors finds pairs (i, j) with a[i] == b[j] occurring exactly once in
// each region, forming the longest sequence increasing in both, and pushes
// them on d.stack, at s0..s1.
func (d *lineDiffer) anchors(a0, a1, b0, b1 int) (s0, s1 int) {
	count := d.count
	for _, id := range d.a[a0:a1] {
		if c := count[id]; c&0x0f < 2 {
			count[id] = c + 1
		}
	}
	for j := b0; j < b1; j++ {
		id := d.b[j]
		if c := count[id]; c>>4 < 2 {
			count[id] = c + 0x10
		}
		d.posB[id] = int32(j)
	}
	pairs := d.pairs[:0]
	for i := a0; i < a1; i++ {
		id := d.a[i]
		if count[id] == 0x11 {
			pairs = append(pairs, [2]int32{int32(i), d.posB[id]})
		}
	}
	d.pairs = pairs
	for _, id := range d.a[a0:a1] {
		count[id] = 0
	}
	for _, id := range d.b[b0:b1] {
		count[id] = 0
	}
	if len(pairs) == 0 {
		return 0, 0
	}
	// Longest increasing subsequence on j, by patience sorting.
	tails := d.tails[:0] // index into pairs of the smallest tail of each length
	prev := slices.Grow(d.prev[:0], len(pairs))[:len(pairs)]
	for k, p := range pairs {
		n := sort.Search(len(tails), func(t int) bool { return pairs[tails[t]][1] >= p[1] })
		if n > 0 {
			prev[k] = tails[n-1]
		} else {
			prev[k] = -1
		}
		if n == len(tails) {
			tails = append(tails, int32(k))
		} else {
			tails[n] = int32(k)
		}
	}
	d.tails, d.prev = tails, prev
	s0 = len(d.stack)
	d.stack = slices.Grow(d.stack, len(tails))[:s0+len(tails)]
	out := d.stack[s0:]
	for k, t := len(tails)-1, tails[len(tails)-1]; k >= 0; k, t = k-1, prev[t] {
		out[k] = pairs[t]
	}
	return s0, len(d.stack)
}
