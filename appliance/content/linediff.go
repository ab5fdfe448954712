package content

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aymanbagabas/go-udiff/lcs"
)

// Line diffs. Lines are interned to integers; unique common lines anchor
// the files (patience diff) so that large files with many scattered changes
// split into small regions, and go-udiff's bounded Myers LCS diffs each
// region. The result is a list of line-index replacements.

// patienceDepth bounds the recursion of anchor finding.
const patienceDepth = 8

// splitLines splits s after each newline; the last line may lack one.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	n := strings.Count(s, "\n")
	if s[len(s)-1] != '\n' {
		n++
	}
	lines := make([]string, 0, n)
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

type lineDiffer struct {
	a, b   []rune // interned line ids
	countA []int32
	countB []int32
	posB   []int32
	out    []lcs.Diff
	pairs  [][2]int32 // scratch for anchors
	prev   []int32
	tails  []int32
}

// diffLines returns the replacements that turn lines a into lines b, in
// order, as line-index ranges.
func diffLines(a, b []string) (out []lcs.Diff, err error) {
	defer func() {
		// go-udiff's LCS documents an internal panic as unreachable; a
		// hostile file must still not bring the review down.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("line diff failed: %v", r)
		}
	}()
	// Most lines of two releases of a file are shared: the larger side
	// is a good estimate of the distinct lines.
	ids := make(map[string]rune, max(len(a), len(b)))
	intern := func(lines []string) []rune {
		r := make([]rune, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = rune(len(ids))
				ids[l] = id
			}
			r[i] = id
		}
		return r
	}
	d := &lineDiffer{a: intern(a), b: intern(b)}
	d.countA = make([]int32, len(ids))
	d.countB = make([]int32, len(ids))
	d.posB = make([]int32, len(ids))
	d.run(0, len(a), 0, len(b), 0)
	return d.out, nil
}

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

func (d *lineDiffer) run(a0, a1, b0, b1, depth int) {
	for a0 < a1 && b0 < b1 && d.a[a0] == d.b[b0] {
		a0, b0 = a0+1, b0+1
	}
	for a0 < a1 && b0 < b1 && d.a[a1-1] == d.b[b1-1] {
		a1, b1 = a1-1, b1-1
	}
	if a0 == a1 || b0 == b1 {
		d.emit(lcs.Diff{Start: a0, End: a1, ReplStart: b0, ReplEnd: b1})
		return
	}
	if depth < patienceDepth {
		if anchors := d.anchors(a0, a1, b0, b1); len(anchors) > 0 {
			pa, pb := a0, b0
			for _, k := range anchors {
				d.run(pa, k[0], pb, k[1], depth+1)
				pa, pb = k[0]+1, k[1]+1
			}
			d.run(pa, a1, pb, b1, depth+1)
			return
		}
	}
	for _, x := range lcs.DiffRunes(d.a[a0:a1], d.b[b0:b1]) {
		d.emit(lcs.Diff{Start: a0 + x.Start, End: a0 + x.End, ReplStart: b0 + x.ReplStart, ReplEnd: b0 + x.ReplEnd})
	}
}

// anchors returns pairs (i, j) with a[i] == b[j] occurring exactly once in
// each region, forming the longest sequence increasing in both.
func (d *lineDiffer) anchors(a0, a1, b0, b1 int) [][2]int {
	for _, id := range d.a[a0:a1] {
		d.countA[id]++
	}
	for j := b0; j < b1; j++ {
		id := d.b[j]
		d.countB[id]++
		d.posB[id] = int32(j)
	}
	pairs := d.pairs[:0]
	for i := a0; i < a1; i++ {
		id := d.a[i]
		if d.countA[id] == 1 && d.countB[id] == 1 {
			pairs = append(pairs, [2]int32{int32(i), d.posB[id]})
		}
	}
	d.pairs = pairs
	for _, id := range d.a[a0:a1] {
		d.countA[id] = 0
	}
	for _, id := range d.b[b0:b1] {
		d.countB[id] = 0
	}
	if len(pairs) == 0 {
		return nil
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
	out := make([][2]int, len(tails))
	for k, t := len(tails)-1, tails[len(tails)-1]; k >= 0; k, t = k-1, prev[t] {
		out[k] = [2]int{int(pairs[t][0]), int(pairs[t][1])}
	}
	return out
}
