package content

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// inMemory is the reference: both artifacts read whole, then compared.
func inMemory(oldName string, old []byte, newName string, new []byte, lim Limits) (*Diff, error) {
	nt, err := readBytes(newName, new, lim)
	if err != nil {
		return nil, &ArtifactError{Err: err}
	}
	var ot *Tree
	if old != nil {
		if ot, err = readBytes(oldName, old, lim); err != nil {
			return nil, &ArtifactError{Previous: true, Err: err}
		}
	}
	return Compare(ot, nt, lim), nil
}

func streamed(oldName string, old []byte, newName string, new []byte, lim Limits) (*Diff, error) {
	var prev *Artifact
	if old != nil {
		prev = &Artifact{Name: oldName, R: bytes.NewReader(old), Size: int64(len(old))}
	}
	return CompareArtifacts(prev, Artifact{Name: newName, R: bytes.NewReader(new), Size: int64(len(new))}, lim)
}

// sameAsInMemory checks that CompareArtifacts gives the Diff (or the error)
// that reading both artifacts whole and comparing them gives.
func sameAsInMemory(t *testing.T, oldName string, old []byte, newName string, new []byte, lim Limits) *Diff {
	t.Helper()
	want, werr := inMemory(oldName, old, newName, new, lim)
	got, gerr := streamed(oldName, old, newName, new, lim)
	if werr != nil || gerr != nil {
		var wa, ga *ArtifactError
		if !errors.As(werr, &wa) || !errors.As(gerr, &ga) {
			t.Fatalf("errors differ:\nin memory: %v\nstreamed:  %v", werr, gerr)
		}
		if ga.Previous && !wa.Previous {
			// Both unreadable: without the previous release, the new
			// one's error shows.
			_, gerr = streamed("", nil, newName, new, lim)
			if !errors.As(gerr, &ga) {
				t.Fatalf("new artifact alone: got %v, want %v", gerr, werr)
			}
		}
		if wa.Previous != ga.Previous || wa.Error() != ga.Error() {
			t.Fatalf("errors differ:\nin memory: %v\nstreamed:  %v", werr, gerr)
		}
		return nil
	}
	wj, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	gj, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wj, gj) {
		t.Fatalf("streamed diff differs from the in-memory one:\nin memory: %s\nstreamed:  %s", wj, gj)
	}
	for k := range want.Files {
		if w, g := want.Files[k].Unified(), got.Files[k].Unified(); w != g {
			t.Fatalf("%s: unified diffs differ:\n%s\n%s", want.Files[k].Path, w, g)
		}
	}
	return got
}

func TestStreamedMatchesInMemoryOnReleases(t *testing.T) {
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pairs := [][2]string{{"sigstore-1.0.0.tgz", "sigstore-1.3.0.tgz"}, {"sigstore-1.3.0.tgz", "sigstore-2.0.0.tgz"}, {"", "tuf-js-1.0.0.tgz"}, {"tuf-js-1.0.0.tgz", "sigstore-2.0.0.tgz"}}
	for _, p := range pairs {
		t.Run(p[0]+"->"+p[1], func(t *testing.T) {
			var old []byte
			if p[0] != "" {
				old = fixture(p[0])
			}
			d := sameAsInMemory(t, p[0], old, p[1], fixture(p[1]), DefaultLimits())
			if d == nil || len(d.Files) == 0 {
				t.Fatal("no changes")
			}
			// Only package.json text stays.
			for _, c := range d.Files {
				for _, f := range []*File{c.Old, c.New} {
					if f == nil {
						continue
					}
					if _, ok := f.Text(); ok && !keepsText(f.Path) {
						t.Fatalf("%s: text kept after the diff", f.Path)
					}
				}
			}
		})
	}
}

func TestStreamedMatchesInMemory(t *testing.T) {
	lines := func(n int, f string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, f, i)
		}
		return b.String()
	}
	base := []ent{
		{name: "package.json", body: `{"name":"p","version":"1.0.0","scripts":{"test":"x"},"dependencies":{"a":"1"}}`},
		{name: "same.js", body: lines(50, "same %d\n")},
		{name: "changed.js", body: lines(300, "line %d\n")},
		{name: "removed.js", body: "gone\n"},
		{name: "mode.sh", body: "#!/bin/sh\n", mode: 0o644},
		{name: "bin.dat", body: "\x00\x01\x02"},
		{name: "link", typ: tar.TypeSymlink, link: "same.js"},
		{name: "x.pth", body: "path\n"},
		{name: "nested/package.json", body: `{"name":"q"}`},
	}
	next := []ent{
		{name: "package.json", body: `{"name":"p","version":"1.0.1","scripts":{"postinstall":"curl x | sh"},"dependencies":{"a":"2","b":"1"}}`},
		{name: "same.js", body: lines(50, "same %d\n")},
		{name: "changed.js", body: strings.Replace(lines(300, "line %d\n"), "line 150\n", "line 150 \u202e\n", 1) + "tail"},
		{name: "added.js", body: "eval(atob('" + strings.Repeat("QUJD", 400) + "'))\n"},
		{name: "mode.sh", body: "#!/bin/sh\n", mode: 0o755},
		{name: "bin.dat", body: "\x00\x01\x03"},
		{name: "link", typ: tar.TypeSymlink, link: "../../etc/passwd"},
		{name: "x.pth", body: "import os; os.system('x')\n"},
		{name: "nested/package.json", body: `{"name":"q","scripts":{"install":"node x"}}`},
		{name: "min.js", body: strings.Repeat("a=1;", 400) + "\n"},
	}
	t.Run("npm", func(t *testing.T) {
		d := sameAsInMemory(t, "p-1.tgz", npmTgz(t, base), "p-2.tgz", npmTgz(t, next), DefaultLimits())
		if !hasSignal(d.Signals, KindPth, High, "x.pth", 1) || !hasSignal(d.Signals, KindInstallScript, High, "package.json", 0) ||
			!hasSignal(d.Signals, KindInvisibleText, High, "changed.js", 151) || !hasSignal(d.Signals, KindInstallScript, High, "nested/package.json", 0) {
			t.Fatalf("signals missing: %+v", d.Signals)
		}
	})
	t.Run("first release", func(t *testing.T) {
		sameAsInMemory(t, "", nil, "p-2.tgz", npmTgz(t, next), DefaultLimits())
	})
	t.Run("zip", func(t *testing.T) {
		var zb, zn []ent
		for _, e := range base {
			if e.typ == 0 {
				zb = append(zb, e)
			}
		}
		for _, e := range next {
			if e.typ == 0 {
				zn = append(zn, e)
			}
		}
		sameAsInMemory(t, "p-1.zip", zipBytes(t, zb), "p-2.whl", zipBytes(t, zn), DefaultLimits())
	})
	t.Run("tight caps", func(t *testing.T) {
		lim := DefaultLimits()
		lim.MaxRetainedBytes = 2000 // later files are not kept
		lim.MaxDiffInputLines = 100 // changed.js is too large to diff
		lim.MaxDiffLines = 5
		lim.MaxDiffBytes = 300
		lim.MaxTextBytes = 1500
		sameAsInMemory(t, "p-1.tgz", npmTgz(t, base), "p-2.tgz", npmTgz(t, next), lim)
	})
	t.Run("duplicate paths", func(t *testing.T) {
		dup := append(slices.Clone(next), ent{name: "changed.js", body: "last copy wins\n"})
		d := sameAsInMemory(t, "p-1.tgz", npmTgz(t, base), "p-2.tgz", npmTgz(t, dup), DefaultLimits())
		if !hasSignal(d.Signals, KindDuplicate, High, "changed.js", 0) {
			t.Fatalf("duplicate not flagged: %+v", d.Signals)
		}
	})
	for i, es := range hostileEnts() {
		t.Run(fmt.Sprintf("hostile %d", i), func(t *testing.T) {
			sameAsInMemory(t, "a.tgz", npmTgz(t, base), "b.tar", tarBytes(t, es), small())
		})
	}
}

// TestStreamedOppositeOrders holds more text than the budget allows when
// the two archives list their files in opposite orders: the readers must
// still finish, with the in-memory result.
func TestStreamedOppositeOrders(t *testing.T) {
	var old, new []ent
	for i := range 40 {
		body := strings.Repeat(fmt.Sprintf("file %d line\n", i), 300)
		old = append(old, ent{name: fmt.Sprintf("f%02d.js", i), body: body})
		new = append([]ent{{name: fmt.Sprintf("f%02d.js", i), body: body + "changed\n"}}, new...)
	}
	lim := DefaultLimits()
	lim.MaxTextBytes = 8 << 10 // a budget of 4 KiB, a small part of either tree
	d := sameAsInMemory(t, "a.tgz", npmTgz(t, old), "b.tgz", npmTgz(t, new), lim)
	if d.Changed != 40 || d.LinesAdded != 40 {
		t.Fatalf("changed %d, +%d lines; want 40 and 40", d.Changed, d.LinesAdded)
	}
}

// TestStreamedHeldText compares releases whose files, listed in the same
// order, are each up to MaxTextBytes: the text held at once must stay
// under two files' worth, and so under 2 × MaxTextBytes.
func TestStreamedHeldText(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const maxText = 16 << 10
	var old, new []ent
	for i := range 60 {
		body := strings.Repeat(fmt.Sprintf("file %d line\n", i), 1+rng.IntN(maxText/14-1))
		name := fmt.Sprintf("f%02d.js", i)
		old = append(old, ent{name: name, body: body})
		if i%3 == 0 {
			body += "changed\n"
		}
		new = append(new, ent{name: name, body: body[:min(len(body), maxText)]})
	}
	lim := DefaultLimits()
	lim.MaxTextBytes = maxText
	var peak int64
	streamDone = func(s *streamCompare) { peak = max(peak, s.peakHeld) }
	defer func() { streamDone = nil }()
	for range 20 {
		d := sameAsInMemory(t, "a.tgz", npmTgz(t, old), "b.tgz", npmTgz(t, new), lim)
		if d.Changed != 20 {
			t.Fatalf("changed %d, want 20", d.Changed)
		}
	}
	if peak == 0 || peak > 2*maxText {
		t.Fatalf("held %d bytes of text at once; want at most %d", peak, 2*maxText)
	}
}

func TestStreamedErrorsNameTheArtifact(t *testing.T) {
	good := npmTgz(t, []ent{{name: "a.js", body: "x\n"}})
	bomb := npmTgz(t, []ent{{name: "zeros", body: zeros(1800 << 10)}})
	for _, tc := range []struct {
		name     string
		old, new []byte
		previous bool
		want     string
	}{
		{"new not gzip", good, []byte("hello"), false, "not gzip-compressed"},
		{"old not gzip", []byte("hello"), good, true, "not gzip-compressed"},
		{"new bomb", good, bomb, false, "compression bomb"},
		{"old bomb", bomb, good, true, "compression bomb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sameAsInMemory(t, "a.tgz", tc.old, "b.tgz", tc.new, small())
			_, err := streamed("a.tgz", tc.old, "b.tgz", tc.new, small())
			var ae *ArtifactError
			if !errors.As(err, &ae) || ae.Previous != tc.previous || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (%+v), want an error about the previous release: %v, containing %q", err, ae, tc.previous, tc.want)
			}
		})
	}
}

func FuzzCompareArtifacts(f *testing.F) {
	seed := npmTgz(f, []ent{{name: "package.json", body: `{"name":"x"}`}, {name: "a.js", body: "a\nb\n"}})
	for _, es := range hostileEnts() {
		f.Add(seed, gz(f, tarBytes(f, es)))
	}
	f.Add(seed, npmTgz(f, []ent{{name: "package.json", body: `{"name":"x","scripts":{"install":"y"}}`}, {name: "a.js", body: "a\nc\n"}}))
	f.Fuzz(func(t *testing.T, old, new []byte) {
		sameAsInMemory(t, "a.tgz", old, "b.tgz", new, fuzzLimits())
	})
}
