package content

import (
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/aymanbagabas/go-udiff/lcs"
)

// contextLines is the number of unchanged lines around each hunk.
const contextLines = 3

// Change says what happened to a path between two releases.
type Change string

// Changes.
const (
	Added   Change = "added"
	Removed Change = "removed"
	Changed Change = "changed"
)

// LineOp is the role of a line in a hunk.
type LineOp string

// Line roles, as in a unified diff.
const (
	OpContext LineOp = " "
	OpDelete  LineOp = "-"
	OpInsert  LineOp = "+"
)

// DiffLine is one line of a hunk, without its newline. NoNewline marks a
// last line that had none.
type DiffLine struct {
	Op        LineOp `json:"op"`
	Text      string `json:"text"`
	NoNewline bool   `json:"no_newline,omitempty"`
}

// Hunk is one unified-diff hunk; starts are 1-based line numbers.
type Hunk struct {
	OldStart int        `json:"old_start"`
	OldLines int        `json:"old_lines"`
	NewStart int        `json:"new_start"`
	NewLines int        `json:"new_lines"`
	Lines    []DiffLine `json:"lines"`
}

// FileChange is one path that differs between the two trees.
type FileChange struct {
	Path   string `json:"path"`
	Change Change `json:"change"`
	Old    *File  `json:"old,omitempty"`
	New    *File  `json:"new,omitempty"`
	// What differs, for a changed path: any of "content", "mode", "type",
	// "link".
	What         []string `json:"what,omitempty"`
	Binary       bool     `json:"binary,omitempty"`
	LinesAdded   int      `json:"lines_added"`
	LinesRemoved int      `json:"lines_removed"`
	Hunks        []Hunk   `json:"hunks,omitempty"`
	// Truncated is set when Hunks hold fewer lines than the diff has;
	// Note then says so ("diff truncated at 2000 of 5321 lines").
	Truncated bool `json:"truncated,omitempty"`
	// TooLarge is set when the file has more lines than the line diff
	// takes in (Limits.MaxDiffInputLines); Note says how many.
	TooLarge bool   `json:"too_large,omitempty"`
	Note     string `json:"note,omitempty"`

	diffLines int // lines the full diff would show
	pthLine   int // first import line of a .pth file's new text
}

// Summary describes one side of a Diff.
type Summary struct {
	Name     string `json:"name"`
	Format   Format `json:"format"`
	Files    int    `json:"files"`
	Expanded int64  `json:"expanded"`
}

// Diff is the content part of the review model: what changed inside an
// artifact since the previous release, and the risk signals.
type Diff struct {
	Old          *Summary     `json:"old,omitempty"` // nil when there is no previous release
	New          Summary      `json:"new"`
	Added        int          `json:"added"`
	Removed      int          `json:"removed"`
	Changed      int          `json:"changed"`
	Unchanged    int          `json:"unchanged"`
	LinesAdded   int          `json:"lines_added"`
	LinesRemoved int          `json:"lines_removed"`
	Files        []FileChange `json:"files"`   // sorted by path; unchanged paths are left out
	Signals      []Signal     `json:"signals"` // high severity first
	// Package holds the manifest facts, when the artifact has a
	// package.json at its root.
	Package *Package `json:"package,omitempty"`
	// Note says when the diff text was cut to fit Limits.MaxDiffBytes.
	Note string `json:"note,omitempty"`
}

// Compare diffs two trees. old may be nil for a first release: then every
// file is added. The signals cover everything added or changed, plus what
// the reader found in new.
func Compare(old, new *Tree, lim Limits) *Diff { return compare(old, new, lim, nil) }

// changeOf is the change from o to n (either may be nil, not both) and
// whether there is one.
func changeOf(o, n *File) (FileChange, bool) {
	switch {
	case n == nil:
		return FileChange{Path: o.Path, Change: Removed, Old: o, Binary: o.Binary, LinesRemoved: o.Lines}, true
	case o == nil:
		return FileChange{Path: n.Path, Change: Added, New: n, Binary: n.Binary}, true
	}
	what := differences(o, n)
	if len(what) == 0 {
		return FileChange{}, false
	}
	return FileChange{Path: n.Path, Change: Changed, Old: o, New: n, What: what, Binary: o.Binary || n.Binary}, true
}

// compare is Compare; diffed, when not nil, holds the changes a streamed
// comparison already diffed, by path, and the trees keep no text.
func compare(old, new *Tree, lim Limits, diffed map[string]*FileChange) *Diff {
	d := &Diff{New: summary(new)}
	if old == nil {
		old = &Tree{}
	} else {
		s := summary(old)
		d.Old = &s
	}
	// Walk both sorted file lists.
	i, j := 0, 0
	for i < len(old.Files) || j < len(new.Files) {
		var o, n *File
		switch {
		case j == len(new.Files) || (i < len(old.Files) && old.Files[i].Path < new.Files[j].Path):
			o = old.Files[i]
			i++
		case i == len(old.Files) || new.Files[j].Path < old.Files[i].Path:
			n = new.Files[j]
			j++
		default:
			o, n = old.Files[i], new.Files[j]
			i, j = i+1, j+1
		}
		c, differs := changeOf(o, n)
		if !differs {
			d.Unchanged++
			continue
		}
		d.Files = append(d.Files, c)
	}
	if diffed == nil {
		diffContents(d.Files, lim)
	} else {
		for k := range d.Files {
			if c := diffed[d.Files[k].Path]; c != nil {
				d.Files[k] = *c
			} else {
				// Nothing here needs text (see needsText).
				diffFile(&d.Files[k], "", "", false, lim, nil)
			}
		}
	}
	capDiffText(d, lim)
	for k := range d.Files {
		c := &d.Files[k]
		switch c.Change {
		case Added:
			d.Added++
		case Removed:
			d.Removed++
		case Changed:
			d.Changed++
		}
		d.LinesAdded += c.LinesAdded
		d.LinesRemoved += c.LinesRemoved
	}
	d.Signals = append(d.Signals, new.Signals...)
	for _, c := range d.Files {
		if c.TooLarge {
			d.Signals = append(d.Signals, Signal{Kind: KindDiffTooLarge, Severity: Warn, File: c.Path, Detail: c.Note + ": its changes were not shown line by line"})
		}
	}
	d.Signals = append(d.Signals, fileSignals(d.Files, lim)...)
	pkgSignals(d, old, new, lim)
	sortSignals(d.Signals)
	return d
}

func summary(t *Tree) Summary {
	return Summary{Name: t.Name, Format: t.Format, Files: len(t.Files), Expanded: t.Expanded}
}

func differences(o, n *File) []string {
	var what []string
	if o.Type != n.Type {
		what = append(what, "type")
	}
	if o.SHA256 != n.SHA256 || o.Size != n.Size {
		what = append(what, "content")
	}
	if o.Mode != n.Mode {
		what = append(what, "mode")
	}
	if o.Link != n.Link {
		what = append(what, "link")
	}
	return what
}

// diffContents computes the line diffs, spreading files over the CPUs.
// The result does not depend on the number of CPUs.
func diffContents(files []FileChange, lim Limits) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ld := newLineDiffer()
			for k := range work {
				c := &files[k]
				var oldText, newText string
				if c.Old != nil {
					oldText = c.Old.text
				}
				if c.New != nil {
					newText = c.New.text
				}
				diffFile(c, oldText, newText, true, lim, ld)
			}
		}()
	}
	// Largest first, so that one huge file does not finish last alone.
	order := make([]int, 0, len(files))
	for k := range files {
		order = append(order, k)
	}
	size := func(c *FileChange) int64 {
		var s int64
		if c.Old != nil {
			s += c.Old.Size
		}
		if c.New != nil {
			s += c.New.Size
		}
		return s
	}
	sortIndexes(order, func(x, y int) bool { return size(&files[x]) > size(&files[y]) })
	for _, k := range order {
		work <- k
	}
	close(work)
	wg.Wait()
}

// needsText reports whether diffing c needs the text of its files: its
// new file is kept text and its content is new (what diffFile scans and
// diffs and fileSignals reports on).
func needsText(c *FileChange) bool {
	if c.New == nil || !c.New.kept {
		return false
	}
	return c.Change == Added || c.Old.SHA256 != c.New.SHA256 || c.Old.Type != c.New.Type
}

// diffFile fills in c's line counts, hunks and notes. With have, oldText
// and newText are the text of the files that are kept (the rest is
// ignored); without, the files' texts are not available, which needsText
// says is fine for c. ld does the line diff; it may be nil without have.
func diffFile(c *FileChange, oldText, newText string, have bool, lim Limits, ld *lineDiffer) {
	if c.New != nil {
		if have {
			c.New.factsOf(newText, true, lim.MaxHitsPerFile) // scan here, in parallel
		} else {
			c.New.facts(lim.MaxHitsPerFile)
		}
		if have && isPth(c.Path) {
			c.pthLine = importLine(newText)
		}
	}
	if c.Change == Removed {
		return
	}
	if c.Change == Changed && c.Old.SHA256 == c.New.SHA256 && c.Old.Size == c.New.Size {
		return // mode, type or link only
	}
	if c.New.Type != TypeFile || (c.Old != nil && c.Old.Type != TypeFile) {
		return
	}
	if c.Binary {
		c.Note = "binary file"
		return
	}
	na := 0
	if c.Old != nil {
		if !c.Old.kept {
			c.Note = "previous version too large to diff (" + c.Old.Note + ")"
			return
		}
		na = c.Old.Lines
	} else {
		oldText = ""
	}
	if !c.New.kept {
		c.Note = "too large to diff (" + c.New.Note + ")"
		return
	}
	if nb := c.New.Lines; lim.MaxDiffInputLines > 0 && max(na, nb) > lim.MaxDiffInputLines {
		c.TooLarge = true
		c.Note = fmt.Sprintf("diff too large to show: %d lines before, %d after (the review diffs at most %d lines a file)", na, nb, lim.MaxDiffInputLines)
		return
	}
	if !have {
		c.Note = "not diffed: its text was not available" // not reached: see needsText
		return
	}
	a, b, edits, err := ld.diff(oldText, newText)
	if err != nil {
		c.Note = err.Error()
		return
	}
	for _, e := range edits {
		c.LinesRemoved += e.End - e.Start
		c.LinesAdded += e.ReplEnd - e.ReplStart
	}
	c.Hunks, c.diffLines = hunks(a, b, edits, lim.MaxDiffLines)
	if shown := hunkLines(c.Hunks); shown < c.diffLines {
		c.Truncated = true
		c.Note = fmt.Sprintf("diff truncated at %d of %d lines", shown, c.diffLines)
	}
}

// countLines counts lines as the line diff splits them, without allocating.
func countLines(s string) int {
	if s == "" {
		return 0
	}
	n := strings.Count(s, "\n")
	if s[len(s)-1] != '\n' {
		n++
	}
	return n
}

func hunkLines(hs []Hunk) int {
	n := 0
	for _, h := range hs {
		n += len(h.Lines)
	}
	return n
}

// hunks groups edits into unified-diff hunks with contextLines of context,
// keeping at most maxLines lines; it returns the hunks and the number of
// lines the complete diff has.
func hunks(a, b textLines, edits []lcs.Diff, maxLines int) ([]Hunk, int) {
	var out []Hunk
	total := 0
	var h *Hunk
	put := func(op LineOp, s string) {
		total++
		if total > maxLines {
			return
		}
		line := DiffLine{Op: op, Text: strings.TrimSuffix(s, "\n"), NoNewline: !strings.HasSuffix(s, "\n")}
		h.Lines = append(h.Lines, line)
		switch op {
		case OpContext:
			h.OldLines++
			h.NewLines++
		case OpDelete:
			h.OldLines++
		case OpInsert:
			h.NewLines++
		}
	}
	flush := func() {
		if h != nil && len(h.Lines) > 0 {
			out = append(out, *h)
		}
		h = nil
	}
	for k := 0; k < len(edits); {
		// Edits k..m-1 share a hunk when the gap between them is small.
		m := k + 1
		for m < len(edits) && edits[m].Start-edits[m-1].End <= 2*contextLines {
			m++
		}
		first, last := edits[k], edits[m-1]
		ctx := min(contextLines, first.Start)
		h = &Hunk{OldStart: first.Start - ctx + 1, NewStart: first.ReplStart - ctx + 1}
		for x := first.Start - ctx; x < first.Start; x++ {
			put(OpContext, a.at(x))
		}
		for e := k; e < m; e++ {
			if e > k {
				for x := edits[e-1].End; x < edits[e].Start; x++ {
					put(OpContext, a.at(x))
				}
			}
			for x := edits[e].Start; x < edits[e].End; x++ {
				put(OpDelete, a.at(x))
			}
			for x := edits[e].ReplStart; x < edits[e].ReplEnd; x++ {
				put(OpInsert, b.at(x))
			}
		}
		for x := last.End; x < min(a.len(), last.End+contextLines); x++ {
			put(OpContext, a.at(x))
		}
		// Empty side: unified diffs number it from the line before.
		if h.OldLines == 0 {
			h.OldStart--
		}
		if h.NewLines == 0 {
			h.NewStart--
		}
		flush()
		k = m
	}
	return out, total
}

// capDiffText cuts hunks so that the whole Diff's diff text stays within
// Limits.MaxDiffBytes, in path order, saying where it was cut.
func capDiffText(d *Diff, lim Limits) {
	var used int64
	for k := range d.Files {
		c := &d.Files[k]
		for h := range c.Hunks {
			for l := range c.Hunks[h].Lines {
				n := int64(len(c.Hunks[h].Lines[l].Text) + 2)
				if used+n <= lim.MaxDiffBytes {
					used += n
					continue
				}
				// Cut here: keep lines before l of this hunk.
				hk := c.Hunks[h]
				hk.Lines = hk.Lines[:l]
				hk.OldLines, hk.NewLines = 0, 0
				for _, x := range hk.Lines {
					if x.Op != OpInsert {
						hk.OldLines++
					}
					if x.Op != OpDelete {
						hk.NewLines++
					}
				}
				c.Hunks = append(c.Hunks[:h], hk)
				if len(hk.Lines) == 0 {
					c.Hunks = c.Hunks[:h]
				}
				shown := hunkLines(c.Hunks)
				c.Truncated = true
				c.Note = fmt.Sprintf("diff truncated at %d of %d lines: the review's diff text reached its cap of %d bytes", shown, c.diffLines, lim.MaxDiffBytes)
				for r := k + 1; r < len(d.Files); r++ {
					if len(d.Files[r].Hunks) > 0 {
						d.Files[r].Hunks = nil
						d.Files[r].Truncated = true
						d.Files[r].Note = fmt.Sprintf("diff omitted (%d lines): the review's diff text reached its cap of %d bytes", d.Files[r].diffLines, lim.MaxDiffBytes)
					}
				}
				d.Note = fmt.Sprintf("diff text cut at %s: the review's diff text reached its cap of %d bytes", q(c.Path), lim.MaxDiffBytes)
				return
			}
		}
	}
}

// Unified renders the change as unified diff text. The text holds the
// artifact's own bytes: show it through VisibleLine, line by line.
func (c *FileChange) Unified() string {
	var b strings.Builder
	from, to := "a/"+c.Path, "b/"+c.Path
	if c.Change == Added {
		from = "/dev/null"
	}
	if c.Change == Removed {
		to = "/dev/null"
	}
	fmt.Fprintf(&b, "--- %s\n+++ %s\n", from, to)
	for _, h := range c.Hunks {
		fmt.Fprintf(&b, "@@ -%d,%d +%d,%d @@\n", h.OldStart, h.OldLines, h.NewStart, h.NewLines)
		for _, l := range h.Lines {
			b.WriteString(string(l.Op))
			b.WriteString(l.Text)
			b.WriteByte('\n')
			if l.NoNewline {
				b.WriteString("\\ No newline at end of file\n")
			}
		}
	}
	if c.Note != "" {
		fmt.Fprintf(&b, "# %s\n", c.Note)
	}
	return b.String()
}
