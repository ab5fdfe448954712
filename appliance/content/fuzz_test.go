package content

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzLimits keep each fuzz input cheap.
func fuzzLimits() Limits {
	l := small()
	l.MaxTextBytes = 64 << 10
	l.MaxRetainedBytes = 1 << 20
	return l
}

// checkTree runs what the review does with a tree and checks the reader's
// invariants.
func checkTree(t *testing.T, tr *Tree, lim Limits) {
	t.Helper()
	var total int64
	for i, f := range tr.Files {
		if i > 0 && tr.Files[i-1].Path >= f.Path {
			t.Fatalf("files not sorted and unique: %q then %q", tr.Files[i-1].Path, f.Path)
		}
		if f.Size > lim.MaxFileBytes {
			t.Fatalf("%q: size %d over the cap", f.Path, f.Size)
		}
		total += f.Size
	}
	if total > lim.MaxExpandedBytes || len(tr.Files) > lim.MaxEntries {
		t.Fatalf("caps exceeded: %d bytes, %d files", total, len(tr.Files))
	}
	d := Compare(nil, tr, lim)
	for _, c := range d.Files {
		if c.New == nil {
			t.Fatalf("first release with a non-added file %q", c.Path)
		}
		if text, ok := c.New.Text(); ok && !c.Truncated {
			got, err := applyHunks("", c.Hunks)
			if err != nil || got != text {
				t.Fatalf("%q: hunks do not rebuild the file (%v)", c.Path, err)
			}
		}
	}
	for _, s := range d.Signals {
		_ = Visible(s.File) + Visible(s.Detail)
	}
}

func seedFixtures(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.tgz")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func hostileEnts() [][]ent {
	return [][]ent{
		{{name: "package/package.json", body: `{"name":"l0dash","scripts":{"postinstall":"x"}}`}, {name: "package/a.node", body: "\x7fELF"}},
		{{name: "../x", body: "1"}, {name: "l", typ: tar.TypeSymlink, link: "/etc"}, {name: "h", typ: tar.TypeLink, link: "../x"}},
		{{name: "a", body: "1"}, {name: "a", body: "2"}, {name: "A", body: "3"}, {name: "p", typ: tar.TypeFifo}},
		{{name: "bidi\u202e.js", body: "x\u2066\n\x1b[2J"}, {name: "x.pth", body: "import os\n"}},
	}
}

func FuzzReadTar(f *testing.F) {
	for _, es := range hostileEnts() {
		f.Add(tarBytes(f, es))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := fuzzLimits()
		tr, err := readBytes("x.tar", b, lim)
		if err == nil {
			checkTree(t, tr, lim)
		}
	})
}

func FuzzReadNPM(f *testing.F) {
	seedFixtures(f)
	for _, es := range hostileEnts() {
		f.Add(gz(f, tarBytes(f, es)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := fuzzLimits()
		tr, err := readBytes("x.tgz", b, lim)
		if err == nil {
			checkTree(t, tr, lim)
		}
		tr, err = readBytes("x.tar.gz", b, lim)
		if err == nil {
			checkTree(t, tr, lim)
		}
	})
}

func FuzzReadZip(f *testing.F) {
	for _, es := range hostileEnts() {
		f.Add(zipBytes(f, es))
	}
	f.Add(zipBytes(f, []ent{{name: "bomb", body: zeros(300 << 10)}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := fuzzLimits()
		for _, name := range []string{"x.zip", "x-1.0-py3-none-any.whl"} {
			tr, err := readBytes(name, b, lim)
			if err == nil {
				checkTree(t, tr, lim)
			}
		}
	})
}

func FuzzReadFile(f *testing.F) {
	f.Add([]byte("#!/bin/sh\necho hi\n"))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add([]byte("MZ" + strings.Repeat("\x00", 0x3a) + "\x40\x00\x00\x00PE\x00\x00"))
	f.Add([]byte("a\u202eb\n\xff\ufe00\ufe01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := fuzzLimits()
		tr, err := readBytes("artifact.js", b, lim)
		if err == nil {
			checkTree(t, tr, lim)
		}
	})
}

func FuzzManifest(f *testing.F) {
	f.Add([]byte(basePkg))
	f.Add([]byte(`{"scripts":{"a":"1","a":"2"},"bin":"x.js","bundledDependencies":true,"dependencies":{"x":1}}`))
	f.Add([]byte(`{"bin":{"a":["x"]},"bundleDependencies":["a"],"optionalDependencies":null}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		old := mustRead(t, "demo-1.0.0.tgz", npmTgz(t, base()))
		nt, err := readBytes("demo-1.0.1.tgz", npmTgz(t, []ent{{name: "package.json", body: string(b)}}), DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		_ = Compare(old, nt, DefaultLimits())
		_, _ = parseManifest(b)
	})
}

// FuzzDiffLines checks that hunks always turn the old text into the new,
// and that the line diff agrees with the reference one.
func FuzzDiffLines(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nc\nd")
	f.Add("", "x\n")
	f.Add("same\n", "same\n")
	f.Add("x\ny\nx\ny\nx\n", "y\nx\ny\n")
	ld := newLineDiffer()
	f.Fuzz(func(t *testing.T, a, b string) {
		checkLineDiff(t, ld, a, b)
		la, lb, edits, err := ld.diff(a, b)
		if err != nil {
			t.Fatal(err)
		}
		hs, total := hunks(la, lb, edits, 1<<30)
		if hunkLines(hs) != total {
			t.Fatalf("uncapped hunks hold %d of %d lines", hunkLines(hs), total)
		}
		got, err := applyHunks(a, hs)
		if err != nil || got != b {
			t.Fatalf("hunks do not rebuild the new text: %v %q", err, got)
		}
	})
}
