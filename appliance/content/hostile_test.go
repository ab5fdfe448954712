package content

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// small are caps low enough to reach with archives built in a test.
func small() Limits {
	l := DefaultLimits()
	l.MaxEntries = 50
	l.MaxExpandedBytes = 4 << 20
	l.MaxFileBytes = 2 << 20
	l.MaxPathBytes = 100
	l.MaxPathDepth = 8
	l.RatioGraceBytes = 256 << 10
	l.MaxCompressionRatio = 50
	return l
}

func zeros(n int) string { return string(make([]byte, n)) }

// TestHostileArchives checks that each hostile archive is refused with an
// error naming what was wrong, never a panic.
func TestHostileArchives(t *testing.T) {
	deep := strings.Repeat("d/", 9) + "f"
	many := make([]ent, 60)
	for i := range many {
		many[i] = ent{name: fmt.Sprintf("f%d", i), body: "x"}
	}
	// A zip whose one entry expands far more than the ratio allows.
	zipBomb := zipBytes(t, []ent{{name: "ok.txt", body: "hi"}, {name: "bomb.bin", body: zeros(1 << 20)}})
	// A zip declaring an absurd size for an entry.
	absurd := zipBytes(t, []ent{{name: "huge.bin", body: "small"}})
	if i := bytes.Index(absurd, []byte("PK\x01\x02")); i > 0 {
		copy(absurd[i+24:i+28], []byte{0xff, 0xff, 0xff, 0x7f}) // central directory uncompressed size
	}
	for _, tc := range []struct {
		name, file string
		data       []byte
		want       string // in the error
	}{
		{"tar.gz bomb", "x.tar.gz", gz(t, tarBytes(t, []ent{{name: "zeros", body: zeros(1800 << 10)}})), `expands more than 50 times (at entry "zeros")`},
		{"npm bomb", "x.tgz", npmTgz(t, []ent{{name: "zeros", body: zeros(1800 << 10)}}), "compression bomb"},
		{"zip bomb", "x.zip", zipBomb, `entry "bomb.bin" expands`},
		{"zip absurd declared size", "x.zip", absurd, `"huge.bin"`},
		{"too many entries", "x.tar", tarBytes(t, many), "more than 50 entries"},
		{"too many zip entries", "x.zip", zipBytes(t, many), "more than the 50 allowed"},
		{"path too long", "x.tar", tarBytes(t, []ent{{name: strings.Repeat("a", 150), body: "x"}}), "name is 150 bytes, more than the 100 allowed"},
		{"path too deep", "x.tar", tarBytes(t, []ent{{name: deep, body: "x"}}), "path has 10 levels"},
		{"file too large", "x.tar", tarBytes(t, []ent{{name: "big", body: zeros(3 << 20)}}), `entry "big" is 3145728 bytes`},
		{"expands too far", "x.tar", tarBytes(t, []ent{{name: "a", body: zeros(2 << 20)}, {name: "b", body: zeros(2 << 20)}, {name: "c", body: "x"}}), `entry "c": archive expands to more than`},
		{"truncated tar", "x.tar", tarBytes(t, []ent{{name: "a", body: zeros(4096)}})[:1024], `entry "a"`},
		{"tgz that is not gzip", "x.tgz", []byte("hello"), "not gzip-compressed"},
		{"whl that is not zip", "x.whl", []byte("hello"), "not a zip archive"},
		{"garbage zip", "x.zip", []byte("PK\x03\x04garbage"), "not a readable zip archive"},
		{"artifact too large", "x.bin", nil, "more than the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := small()
			data := tc.data
			if tc.name == "artifact too large" {
				lim.MaxArchiveBytes = 10
				data = []byte("01234567890")
			}
			_, err := readBytes(tc.file, data, lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
			t.Logf("error: %v", err)
			if strings.ContainsAny(err.Error(), "\x1b\u202e") {
				t.Errorf("error shows raw control characters: %q", err)
			}
		})
	}
}

// TestHostileNames checks names that are read but flagged.
func TestHostileNames(t *testing.T) {
	tr := mustRead(t, "x.tar", tarBytes(t, []ent{
		{name: "/etc/passwd", body: "x"},
		{name: "a/../../b", body: "x"},
		{name: "dir/", typ: tar.TypeDir, mode: 0o777},
		{name: "ok", body: "1"},
		{name: "ok", body: "2"},
		{name: "evil\x1b[31m.js", body: "x"},
	}))
	for _, w := range []struct {
		kind Kind
		file string
	}{
		{KindUnsafePath, "/etc/passwd"},
		{KindUnsafePath, "../b"},
		{KindDuplicate, "ok"},
		{KindInvisibleName, "evil\x1b[31m.js"},
		{KindModeChange, "dir"},
	} {
		found := false
		for _, s := range tr.Signals {
			found = found || (s.Kind == w.kind && s.File == w.file)
		}
		if !found {
			t.Errorf("no %s signal for %q in %+v", w.kind, w.file, tr.Signals)
		}
	}
	if f := tr.File("ok"); f == nil || f.text != "2" {
		t.Errorf("duplicate: want the last copy kept, got %+v", f)
	}
	// The same in a zip, with a backslash name.
	zr := mustRead(t, "x.zip", zipBytes(t, []ent{
		{name: `..\..\evil.dll`, body: "x"},
		{name: "a.txt", body: "1"},
		{name: "a.txt", body: "2"},
		{name: "lnk", typ: tar.TypeSymlink, link: "/etc/shadow"},
	}))
	if !hasSignal(zr.Signals, KindUnsafePath, High, `..\..\evil.dll`, 0) || !hasSignal(zr.Signals, KindDuplicate, High, "a.txt", 0) ||
		!hasSignal(zr.Signals, KindSymlink, High, "lnk", 0) {
		t.Errorf("zip signals: %+v", zr.Signals)
	}
}

func TestPlainFileAndDir(t *testing.T) {
	tr := mustRead(t, "tool.js", []byte("console.log(1)\n"))
	if tr.Format != FormatFile || len(tr.Files) != 1 || tr.Files[0].Path != "tool.js" || tr.Files[0].Lines != 1 {
		t.Fatalf("plain file: %+v", tr.Files)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.js"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	dt, err := ReadDir(dir, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(dt.Files) != 2 || !hasSignal(dt.Signals, KindSymlink, High, "l", 0) {
		t.Errorf("dir: %+v %+v", dt.Files, dt.Signals)
	}
}

// TestDiffCaps checks that cut diffs say so.
func TestDiffCaps(t *testing.T) {
	var a, b strings.Builder
	for i := range 500 {
		fmt.Fprintf(&a, "line %d\n", i)
		fmt.Fprintf(&b, "line %d changed\n", i)
	}
	old := mustRead(t, "x.tar", tarBytes(t, []ent{{name: "f", body: a.String()}, {name: "g", body: a.String()}}))
	nw := mustRead(t, "x.tar", tarBytes(t, []ent{{name: "f", body: b.String()}, {name: "g", body: b.String()}}))
	lim := DefaultLimits()
	lim.MaxDiffLines = 100
	d := Compare(old, nw, lim)
	f := d.Files[0]
	if !f.Truncated || hunkLines(f.Hunks) != 100 || f.Note != "diff truncated at 100 of 1000 lines" || f.LinesAdded != 500 || f.LinesRemoved != 500 {
		t.Errorf("per-file cap: truncated=%v lines=%d note=%q +%d -%d", f.Truncated, hunkLines(f.Hunks), f.Note, f.LinesAdded, f.LinesRemoved)
	}
	lim = DefaultLimits()
	lim.MaxDiffBytes = 5000
	d = Compare(old, nw, lim)
	if !d.Files[0].Truncated || d.Files[1].Hunks != nil || !strings.Contains(d.Files[1].Note, "diff omitted (1000 lines)") || !strings.Contains(d.Note, `diff text cut at "f"`) {
		t.Errorf("total cap: %q / %q / %q", d.Files[0].Note, d.Files[1].Note, d.Note)
	}
	if !strings.Contains(d.Files[0].Unified(), "# diff truncated at") {
		t.Errorf("unified text does not say it was cut")
	}
}

// TestLargeFileStreamed checks that a file over MaxTextBytes is hashed
// without being kept and is reported as not diffed.
func TestLargeFileStreamed(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxTextBytes = 1000
	body := strings.Repeat("abcdefghi\n", 300)
	tr, err := readBytes("x.tar", tarBytes(t, []ent{{name: "big.txt", body: body}}), lim)
	if err != nil {
		t.Fatal(err)
	}
	f := tr.Files[0]
	if _, kept := f.Text(); kept || f.Size != 3000 {
		t.Fatalf("big file: %+v", f)
	}
	if sum := sha256.Sum256([]byte(body)); f.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("big file sha256 %q, want %x (streamed files are still hashed)", f.SHA256, sum)
	}
	d := Compare(nil, tr, lim)
	if !strings.HasPrefix(d.Files[0].Note, "too large to diff") || !hasSignal(d.Signals, KindUnscanned, Info, "big.txt", 0) {
		t.Errorf("note %q signals %+v", d.Files[0].Note, d.Signals)
	}
}

// TestZipEntryLongerThanDeclared builds a zip whose local data inflates to
// more than its header says.
func TestZipEntryLongerThanDeclared(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "liar.txt", Method: zip.Store, UncompressedSize64: 3, CompressedSize64: 10, CRC32: 0})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "0123456789")
	zw.Close()
	_, err = readBytes("x.zip", buf.Bytes(), DefaultLimits())
	if err == nil || !strings.Contains(err.Error(), `"liar.txt"`) {
		t.Fatalf("got %v, want an error naming liar.txt", err)
	}
}
