package content

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aymanbagabas/go-udiff/lcs"
)

// splitLines splits s after each newline; the last line may lack one.
func splitLines(s string) []string {
	var lines []string
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

// refDiffLines is the straightforward line diff the lineDiffer must agree
// with: lines interned through a map of strings, anchors found the same
// way, go-udiff's LCS for what lies between.
func refDiffLines(a, b []string) []lcs.Diff {
	ids := map[string]rune{}
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
	ia, ib := intern(a), intern(b)
	var out []lcs.Diff
	emit := func(x lcs.Diff) {
		if x.Start == x.End && x.ReplStart == x.ReplEnd {
			return
		}
		if n := len(out); n > 0 && out[n-1].End == x.Start && out[n-1].ReplEnd == x.ReplStart {
			out[n-1].End, out[n-1].ReplEnd = x.End, x.ReplEnd
			return
		}
		out = append(out, x)
	}
	anchors := func(a0, a1, b0, b1 int) [][2]int {
		ca, cb, pos := map[rune]int{}, map[rune]int{}, map[rune]int{}
		for _, id := range ia[a0:a1] {
			ca[id]++
		}
		for j := b0; j < b1; j++ {
			cb[ib[j]]++
			pos[ib[j]] = j
		}
		var pairs [][2]int
		for i := a0; i < a1; i++ {
			if id := ia[i]; ca[id] == 1 && cb[id] == 1 {
				pairs = append(pairs, [2]int{i, pos[id]})
			}
		}
		if len(pairs) == 0 {
			return nil
		}
		var tails []int
		prev := make([]int, len(pairs))
		for k, p := range pairs {
			n := sort.Search(len(tails), func(t int) bool { return pairs[tails[t]][1] >= p[1] })
			prev[k] = -1
			if n > 0 {
				prev[k] = tails[n-1]
			}
			if n == len(tails) {
				tails = append(tails, k)
			} else {
				tails[n] = k
			}
		}
		out := make([][2]int, len(tails))
		for k, t := len(tails)-1, tails[len(tails)-1]; k >= 0; k, t = k-1, prev[t] {
			out[k] = pairs[t]
		}
		return out
	}
	var run func(a0, a1, b0, b1, depth int)
	run = func(a0, a1, b0, b1, depth int) {
		for a0 < a1 && b0 < b1 && ia[a0] == ib[b0] {
			a0, b0 = a0+1, b0+1
		}
		for a0 < a1 && b0 < b1 && ia[a1-1] == ib[b1-1] {
			a1, b1 = a1-1, b1-1
		}
		if a0 == a1 || b0 == b1 {
			emit(lcs.Diff{Start: a0, End: a1, ReplStart: b0, ReplEnd: b1})
			return
		}
		if depth < patienceDepth {
			if an := anchors(a0, a1, b0, b1); len(an) > 0 {
				pa, pb := a0, b0
				for _, k := range an {
					run(pa, k[0], pb, k[1], depth+1)
					pa, pb = k[0]+1, k[1]+1
				}
				run(pa, a1, pb, b1, depth+1)
				return
			}
		}
		for _, x := range lcs.DiffRunes(ia[a0:a1], ib[b0:b1]) {
			emit(lcs.Diff{Start: a0 + x.Start, End: a0 + x.End, ReplStart: b0 + x.ReplStart, ReplEnd: b0 + x.ReplEnd})
		}
	}
	run(0, len(a), 0, len(b), 0)
	return out
}

// checkLineDiff diffs a and b with ld and checks the lines and the edits
// against splitLines and refDiffLines.
func checkLineDiff(t testing.TB, ld *lineDiffer, a, b string) {
	t.Helper()
	la, lb, edits, err := ld.diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got  textLines
		want []string
	}{{la, splitLines(a)}, {lb, splitLines(b)}} {
		var got []string
		for i := range c.got.len() {
			got = append(got, c.got.at(i))
		}
		if !slices.Equal(got, c.want) {
			t.Fatalf("lines %q, want %q", got, c.want)
		}
	}
	if want := refDiffLines(splitLines(a), splitLines(b)); !slices.Equal(edits, want) {
		t.Fatalf("edits %v, want %v", edits, want)
	}
}

// TestLineDifferMatchesReference diffs random texts with many repeated
// lines, and scattered edits of larger ones, with one lineDiffer reused
// throughout, and checks each result against the reference.
func TestLineDifferMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ld := newLineDiffer()
	text := func(n, distinct int) string {
		var sb strings.Builder
		for range n {
			fmt.Fprintf(&sb, "l%d\n", rng.IntN(distinct))
		}
		if rng.IntN(2) == 0 {
			sb.WriteString("tail")
		}
		return sb.String()
	}
	edit := func(s string) string {
		lines := splitLines(s)
		var sb strings.Builder
		for _, l := range lines {
			switch rng.IntN(12) {
			case 0:
			case 1:
				sb.WriteString("new " + l)
			case 2:
				sb.WriteString(l)
				fmt.Fprintf(&sb, "ins%d\n", rng.IntN(50))
			default:
				sb.WriteString(l)
			}
		}
		return sb.String()
	}
	for range 300 {
		n := rng.IntN(60)
		checkLineDiff(t, ld, text(n, 1+rng.IntN(8)), text(rng.IntN(60), 1+rng.IntN(8)))
		a := text(200+rng.IntN(3000), 10+rng.IntN(5000))
		checkLineDiff(t, ld, a, edit(a))
	}
	// Mostly distinct lines on both sides: the line table grows.
	checkLineDiff(t, ld, text(2000, 1<<30), text(5000, 1<<30))
	checkLineDiff(t, ld, "", "")
	checkLineDiff(t, ld, "x", "")
	checkLineDiff(t, ld, "\n\n\n", "\n\n")
}

// BenchmarkLineDiff diffs two versions of a generated 200k-line file with
// scattered edits, with one reused lineDiffer.
func BenchmarkLineDiff(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	var ob, nb strings.Builder
	for i := range 200_000 {
		line := fmt.Sprintf("    const v%d = f%d(v%d, %d);\n", rng.IntN(5000), rng.IntN(500), rng.IntN(5000), i%977)
		if i%7 == 0 {
			line = "    }\n"
		}
		ob.WriteString(line)
		switch rng.IntN(60) {
		case 0:
			nb.WriteString(strings.Replace(line, "const", "let", 1))
		case 1:
		case 2:
			nb.WriteString(line + "    debugger;\n")
		default:
			nb.WriteString(line)
		}
	}
	old, new := ob.String(), nb.String()
	ld := newLineDiffer()
	b.SetBytes(int64(len(old) + len(new)))
	for b.Loop() {
		if _, _, edits, err := ld.diff(old, new); err != nil || len(edits) == 0 {
			b.Fatal(len(edits), err)
		}
	}
}
