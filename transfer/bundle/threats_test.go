package bundle

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// member is one tar entry as a hostile CI would write it.
type member struct {
	hdr  tar.Header
	data string
}

func reg(name, data string) member {
	return member{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644}, data: data}
}

func dir(name string) member {
	return member{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func mkTar(t testing.TB, ms ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := m.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if int64(len(m.data)) < h.Size {
			// A header that claims more than follows: a truncated archive.
			return buf.Bytes()
		}
		if _, err := io.WriteString(tw, m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func opener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// importTarIn imports into a fresh working directory inside a fresh parent
// and checks that nothing is left anywhere after a refusal.
func importTarIn(t *testing.T, data []byte, opts Options) (*Manifest, error) {
	t.Helper()
	parent := t.TempDir()
	m, err := ImportTar(opener(data), filepath.Join(parent, "work"), opts)
	if err != nil {
		left, _ := os.ReadDir(parent)
		if len(left) != 0 {
			t.Errorf("refused import left %d entries behind", len(left))
		}
	}
	return m, err
}

var req = reg("request.json", "{}")

// The THREATS.md "Bundles" cases, as tar archives.
func TestTarThreats(t *testing.T) {
	small := Limits{MaxEntries: 5, MaxTotalBytes: 10, MaxFileBytes: 6, MaxPathLen: 30, MaxDepth: 3, MaxRequestBytes: 4}
	huge := member{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "artifacts/big.tgz", Size: 3328599654, Mode: 0o644}}
	cases := []struct {
		name    string
		members []member
		limits  Limits
		rule    Rule
		entry   string
		msg     string // exact message, when given
	}{
		{"dotdot", []member{req, reg("artifacts/../x", "x")}, Limits{}, RuleTraversal, "artifacts/../x", "bundle: artifacts/../x: path leaves the bundle"},
		{"dotdot top", []member{req, reg("../etc/passwd", "x")}, Limits{}, RuleTraversal, "../etc/passwd", ""},
		{"dot component", []member{req, reg("artifacts/./x", "x")}, Limits{}, RuleTraversal, "artifacts/./x", ""},
		{"absolute", []member{req, reg("/etc/passwd", "x")}, Limits{}, RuleAbsolute, "/etc/passwd", ""},
		{"drive letter", []member{req, reg("C:/x", "x")}, Limits{}, RuleAbsolute, "C:/x", ""},
		{"backslash", []member{req, reg(`artifacts\..\..\x`, "x")}, Limits{}, RuleBackslash, `artifacts\..\..\x`, ""},
		{"escape sequence", []member{req, reg("artifacts/\x1b[2Jx", "x")}, Limits{}, RuleBadChar, "artifacts/\x1b[2Jx", `bundle: "artifacts/\x1b[2Jx": name contains control character U+001B`},
		{"bidi override", []member{req, reg("artifacts/evil\u202egpj.exe", "x")}, Limits{}, RuleBadChar, "artifacts/evil\u202egpj.exe", ""},
		{"invalid utf8", []member{req, {hdr: tar.Header{Typeflag: tar.TypeReg, Name: "artifacts/\xff\xfe", Format: tar.FormatGNU}}}, Limits{}, RuleBadUTF8, "artifacts/\xff\xfe", ""},
		{"empty component", []member{req, reg("artifacts//x", "x")}, Limits{}, RuleEmptyName, "artifacts//x", ""},
		{"symlink", []member{req, {hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "artifacts/x", Linkname: "/etc/passwd"}}}, Limits{}, RuleSymlink, "artifacts/x", ""},
		{"hard link", []member{req, {hdr: tar.Header{Typeflag: tar.TypeLink, Name: "artifacts/x", Linkname: "request.json"}}}, Limits{}, RuleHardLink, "artifacts/x", ""},
		{"char device", []member{req, {hdr: tar.Header{Typeflag: tar.TypeChar, Name: "artifacts/null", Devmajor: 1, Devminor: 3}}}, Limits{}, RuleSpecial, "artifacts/null", ""},
		{"block device", []member{req, {hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "artifacts/sda"}}}, Limits{}, RuleSpecial, "artifacts/sda", ""},
		{"fifo", []member{req, {hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "artifacts/p"}}}, Limits{}, RuleSpecial, "artifacts/p", ""},
		{"duplicate", []member{req, reg("artifacts/a", "1"), reg("artifacts/a", "2")}, Limits{}, RuleDuplicate, "artifacts/a", ""},
		{"duplicate request", []member{req, reg("request.json", "{}")}, Limits{}, RuleDuplicate, "request.json", ""},
		{"duplicate via ./", []member{req, reg("artifacts/a", "1"), reg("./artifacts/a", "2")}, Limits{}, RuleDuplicate, "artifacts/a", ""},
		{"case duplicate", []member{req, reg("artifacts/A.tgz", "1"), reg("artifacts/a.tgz", "2")}, Limits{}, RuleDuplicate, "artifacts/a.tgz", ""},
		{"normalisation duplicate", []member{req, reg("artifacts/caf\u00e9", "1"), reg("artifacts/cafe\u0301", "2")}, Limits{}, RuleDuplicate, "artifacts/cafe\u0301", ""},
		{"compatibility duplicate", []member{req, reg("artifacts/ﬁle", "1"), reg("artifacts/file", "2")}, Limits{}, RuleDuplicate, "artifacts/file", ""},
		{"file then dir", []member{req, reg("artifacts/a", "1"), reg("artifacts/a/b", "2")}, Limits{}, RuleWrongType, "artifacts/a/b", ""},
		{"unknown top file", []member{req, reg("evil.sh", "x")}, Limits{}, RuleUnknownTop, "evil.sh", ""},
		{"unknown top dir", []member{req, reg("etc/passwd", "x")}, Limits{}, RuleUnknownTop, "etc/passwd", ""},
		{"request is a dir", []member{dir("request.json/")}, Limits{}, RuleWrongType, "request.json", ""},
		{"artifacts is a file", []member{req, reg("artifacts", "x")}, Limits{}, RuleWrongType, "artifacts", ""},
		{"missing request", []member{reg("artifacts/a", "x")}, Limits{}, RuleMissing, "request.json", ""},
		{"single size", []member{req, huge}, Limits{}, RuleFileBytes, "artifacts/big.tgz", "bundle: artifacts/big.tgz: 3.1 GiB is over the 2 GiB single-file cap (Limits.MaxFileBytes)"},
		{"single size small", []member{req, reg("artifacts/a", "1234567")}, small, RuleFileBytes, "artifacts/a", ""},
		{"total size", []member{req, reg("artifacts/a", "123456"), reg("artifacts/b", "123456")}, small, RuleTotalBytes, "artifacts/b", ""},
		{"entries", []member{req, reg("artifacts/1", ""), reg("artifacts/2", ""), reg("artifacts/3", ""), reg("artifacts/4", "")}, small, RuleEntries, "artifacts/4", ""},
		{"depth", []member{req, reg("provenance/a/b/c.json", "")}, small, RuleDepth, "provenance/a/b/c.json", ""},
		{"depth dir", []member{req, dir("provenance/a/b/")}, small, RuleDepth, "provenance/a/b", ""},
		{"default depth", []member{req, reg("provenance/a/b/c/d.json", "")}, Limits{}, RuleDepth, "provenance/a/b/c/d.json", ""},
		{"path length", []member{req, reg("artifacts/"+strings.Repeat("x", 30), "")}, small, RulePathLen, "artifacts/" + strings.Repeat("x", 30), ""},
		{"gigantic request", []member{reg("request.json", "{\"a\":1}")}, small, RuleRequestBytes, "request.json", ""},
		{"gigantic request default", []member{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "request.json", Size: 17 << 20}}}, Limits{}, RuleRequestBytes, "request.json", "bundle: request.json: 17 MiB is over the 16 MiB cap (Limits.MaxRequestBytes)"},
		{"global header", []member{req, {hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"comment": "x"}}}}, Limits{}, RuleSpecial, "g", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := mkTar(t, tc.members...)
			_, err := importTarIn(t, data, Options{Limits: tc.limits})
			checkRefusal(t, err, tc.rule, tc.entry)
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message %q, want %q", err.Error(), tc.msg)
			}
		})
	}
}

func TestTarAccepted(t *testing.T) {
	data := mkTar(t,
		dir("./"),
		reg("./request.json", "{}"),
		reg("./artifacts/a.tgz", "aaa"),
		dir("./artifacts/"), // listed after its contents: allowed once
		reg("provenance/x/y.json", "{}"),
	)
	m, err := importTarIn(t, data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range m.Files {
		paths = append(paths, f.Path)
	}
	if got := strings.Join(paths, ","); got != "artifacts/a.tgz,provenance/x/y.json,request.json" {
		t.Errorf("files %s", got)
	}
	if got := strings.Join(m.Dirs, ","); got != "artifacts,provenance,provenance/x" {
		t.Errorf("dirs %s", got)
	}
	// A directory listed twice is a duplicate.
	_, err = importTarIn(t, mkTar(t, req, dir("artifacts/"), dir("artifacts/")), Options{})
	checkRefusal(t, err, RuleDuplicate, "artifacts")
}

func TestTarMalformed(t *testing.T) {
	good := mkTar(t, req, reg("artifacts/a", "hello"))
	cases := map[string][]byte{
		"truncated header":  good[:700],
		"truncated content": good[:512+512+512+2],
		"junk":              bytes.Repeat([]byte("junk"), 300),
		"trailing data":     append(append([]byte{}, good...), []byte("surprise")...),
		"long trailer":      append(append([]byte{}, good...), make([]byte, MaxTarTrailer+1)...),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := importTarIn(t, data, Options{})
			if !IsRule(err, RuleTar) && !IsRule(err, RuleMissing) {
				t.Fatalf("err = %v, want a malformed-tar refusal", err)
			}
		})
	}
	// Zero padding after the end, as tar(1) writes, is fine.
	if _, err := importTarIn(t, append(append([]byte{}, good...), make([]byte, 10240)...), Options{}); err != nil {
		t.Fatal(err)
	}
}

// A tar that changes between the checking pass and the copying pass.
func TestTarChangedBetweenPasses(t *testing.T) {
	first := mkTar(t, req, reg("artifacts/a", "hello"))
	second := mkTar(t, req, reg("artifacts/a", "hello, longer"), reg("artifacts/b", "x"))
	n := 0
	open := func() (io.ReadCloser, error) {
		n++
		if n == 1 {
			return io.NopCloser(bytes.NewReader(first)), nil
		}
		return io.NopCloser(bytes.NewReader(second)), nil
	}
	parent := t.TempDir()
	_, err := ImportTar(open, filepath.Join(parent, "w"), Options{})
	checkRefusal(t, err, RuleChanged, "artifacts/a")
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("left %d entries behind", len(left))
	}
}

// The THREATS.md "Bundles" cases, as filesystems (what a USB stick yields).
func TestFSThreats(t *testing.T) {
	r := &fstest.MapFile{Data: []byte("{}")}
	cases := []struct {
		name  string
		fsys  fstest.MapFS
		rule  Rule
		entry string
	}{
		{"dotdot", fstest.MapFS{"request.json": r, "artifacts/../../x": {}}, RuleTraversal, "artifacts/.."},
		{"backslash", fstest.MapFS{"request.json": r, `artifacts/..\x`: {}}, RuleBackslash, `artifacts/..\x`},
		{"nul", fstest.MapFS{"request.json": r, "artifacts/a\x00": {}}, RuleBadChar, "artifacts/a\x00"},
		{"newline", fstest.MapFS{"request.json": r, "artifacts/a\nb": {}}, RuleBadChar, "artifacts/a\nb"},
		{"del", fstest.MapFS{"request.json": r, "artifacts/a\x7f": {}}, RuleBadChar, "artifacts/a\x7f"},
		{"zero width", fstest.MapFS{"request.json": r, "artifacts/le\u200bft-pad.tgz": {}}, RuleBadChar, "artifacts/le\u200bft-pad.tgz"},
		{"trailing space", fstest.MapFS{"request.json": r, "artifacts/a.tgz ": {}}, RuleBadChar, "artifacts/a.tgz "},
		{"invalid utf8", fstest.MapFS{"request.json": r, "artifacts/\xc3\x28": {}}, RuleBadUTF8, "artifacts/\xc3\x28"},
		{"symlink", fstest.MapFS{"request.json": r, "artifacts/l": {Data: []byte("/etc/passwd"), Mode: fs.ModeSymlink}}, RuleSymlink, "artifacts/l"},
		{"device", fstest.MapFS{"request.json": r, "artifacts/d": {Mode: fs.ModeDevice}}, RuleSpecial, "artifacts/d"},
		{"socket", fstest.MapFS{"request.json": r, "artifacts/s": {Mode: fs.ModeSocket}}, RuleSpecial, "artifacts/s"},
		{"case duplicate top", fstest.MapFS{"request.json": r, "REQUEST.JSON": r}, RuleUnknownTop, "REQUEST.JSON"},
		{"case duplicate", fstest.MapFS{"request.json": r, "artifacts/X": {}, "artifacts/x": {}}, RuleDuplicate, "artifacts/x"},
		{"unknown top", fstest.MapFS{"request.json": r, ".git/config": {}}, RuleUnknownTop, ".git"},
		{"missing request", fstest.MapFS{"artifacts/a": {}}, RuleMissing, "request.json"},
		{"too deep", fstest.MapFS{"request.json": r, "provenance/a/b/c/d": {}}, RuleDepth, "provenance/a/b/c"},
		{"too big", fstest.MapFS{"request.json": {Data: make([]byte, DefaultMaxRequestBytes+1)}}, RuleRequestBytes, "request.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			_, err := Import(tc.fsys, filepath.Join(parent, "w"), Options{})
			checkRefusal(t, err, tc.rule, tc.entry)
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("left %d entries behind", len(left))
			}
			_, err = WriteTar(io.Discard, tc.fsys, Options{})
			checkRefusal(t, err, tc.rule, tc.entry)
		})
	}
}

// growingFS lists a file with one size and then serves more bytes.
type growingFS struct{ fstest.MapFS }

func (g growingFS) Open(name string) (fs.File, error) {
	f, err := g.MapFS.Open(name)
	if err != nil || name != "artifacts/a" {
		return f, err
	}
	return &growingFile{File: f}, nil
}

type growingFile struct {
	fs.File
}

func (g *growingFile) Read(b []byte) (int, error) {
	// Serves an endless stream while Stat still says 3 bytes.
	for i := range b {
		b[i] = 'x'
	}
	return len(b), nil
}

func TestFSChangedWhileRead(t *testing.T) {
	src := growingFS{fstest.MapFS{"request.json": {Data: []byte("{}")}, "artifacts/a": {Data: []byte("abc")}}}
	parent := t.TempDir()
	_, err := Import(src, filepath.Join(parent, "w"), Options{})
	checkRefusal(t, err, RuleChanged, "artifacts/a")
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("left %d entries behind", len(left))
	}
}

// Sizes whose sum overflows int64 are refused, not wrapped.
func TestTotalOverflow(t *testing.T) {
	c := newChecker(Limits{MaxFileBytes: 1 << 62, MaxTotalBytes: 1<<63 - 1}, Layout{})
	if err := c.add([]string{"artifacts", "a"}, false, 1<<62); err != nil {
		t.Fatal(err)
	}
	if err := c.add([]string{"artifacts", "b"}, false, 1<<62-1); err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, c.add([]string{"artifacts", "c"}, false, 2), RuleTotalBytes, "artifacts/c")
}
