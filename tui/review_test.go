package tui

import (
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/appliance/content"
)

// The file list marks high and warning risks; the diff index finds each
// file header and the line a signal names; hostile paths stay escaped.
func TestFileListAndDiffIndex(t *testing.T) {
	d := &content.Diff{
		Files: []content.FileChange{
			{Path: "a.js", Change: content.Changed, LinesAdded: 1, LinesRemoved: 1, Hunks: []content.Hunk{{OldStart: 1, OldLines: 2, NewStart: 1, NewLines: 2,
				Lines: []content.DiffLine{{Op: content.OpContext, Text: "x"}, {Op: content.OpDelete, Text: "old"}, {Op: content.OpInsert, Text: "eval(y)"}}}}},
			{Path: "b[red].js", Change: content.Added, LinesAdded: 3},
			{Path: "c.js", Change: content.Removed, LinesRemoved: 2},
		},
		Signals: []content.Signal{{Kind: "eval", Severity: content.High, File: "a.js", Line: 2, Detail: "eval"}, {Kind: "x", Severity: content.Warn, File: "c.js"}},
	}
	r := &appliance.Review{ContentAvailable: true, Artifacts: []appliance.ArtifactReview{{Target: "t.tgz", Content: d}}}
	items := fileItems(r)
	if len(items) != 3 || !strings.HasPrefix(items[0], "[white:red]!![-:-] changed") || !strings.HasPrefix(items[2], "[black:yellow]! [-:-] removed") ||
		!strings.HasPrefix(items[1], "   added") || !strings.Contains(items[1], "+3 -0") || strings.Contains(items[1], "[red]") && !strings.Contains(items[1], Escape("b[red].js")) {
		t.Fatalf("file items %q", items)
	}
	_, plain, idx := reviewDiff(r)
	if len(idx.files) != 3 {
		t.Fatalf("file lines %v", idx.files)
	}
	for i, want := range []string{"changed a.js", "added b[red].js", "removed c.js"} {
		if !strings.HasPrefix(plain[idx.files[i]], want) {
			t.Errorf("file %d at line %q, want %q", i, plain[idx.files[i]], want)
		}
	}
	// Risks: a.js's header, its line 2 (the inserted eval), c.js's header.
	if len(idx.risks) != 3 || plain[idx.risks[1]] != "+eval(y)" || !strings.HasPrefix(plain[idx.risks[2]], "removed c.js") {
		var got []string
		for _, l := range idx.risks {
			got = append(got, plain[l])
		}
		t.Fatalf("risk lines %q", got)
	}
	if files, risky := fileCounts(r); files != 3 || risky != 2 {
		t.Fatalf("counts %d %d", files, risky)
	}
}

// The import bar estimates the time left from the rate so far.
func TestImportTimeLeft(t *testing.T) {
	s := newImportScreen()
	t0 := time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)
	if got := s.timeLeft(0, 1000, t0); got != "" {
		t.Fatalf("at the start: %q", got)
	}
	if got := s.timeLeft(250, 1000, t0.Add(10*time.Second)); got != ", about 30s left" {
		t.Fatalf("a quarter in 10s: %q", got)
	}
	if got := s.timeLeft(1000, 1000, t0.Add(40*time.Second)); got != ", done" {
		t.Fatalf("at the end: %q", got)
	}
	if got := s.timeLeft(10, 50, t0.Add(41*time.Second)); got != "" {
		t.Fatalf("a new file restarts the estimate: %q", got)
	}
}
