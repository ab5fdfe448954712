package content

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"testing"
)

// ent describes one archive entry built at test time.
type ent struct {
	name string
	body string
	mode int64
	typ  byte   // tar type flag; 0 means a regular file
	link string // link target
	size int64  // declared size when >0 and body is empty (tar only, no content written)
}

func tarBytes(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: e.typ, Linkname: e.link, Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// npmTgz builds an npm tarball: every name gets the package/ prefix.
func npmTgz(t testing.TB, ents []ent) []byte {
	t.Helper()
	pre := make([]ent, len(ents))
	for i, e := range ents {
		e.name = "package/" + e.name
		pre[i] = e
	}
	return gz(t, tarBytes(t, pre))
}

func zipBytes(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(fsMode(mode, e.typ))
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		body := e.body
		if e.typ == tar.TypeSymlink {
			body = e.link
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readBytes(name string, b []byte, lim Limits) (*Tree, error) {
	return Read(name, bytes.NewReader(b), int64(len(b)), lim)
}

func mustRead(t testing.TB, name string, b []byte) *Tree {
	t.Helper()
	tr, err := readBytes(name, b, DefaultLimits())
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return tr
}

// hasSignal reports whether want (kind, severity, file, and line when
// non-zero) is among got.
func hasSignal(got []Signal, kind Kind, sev Severity, file string, line int) bool {
	for _, s := range got {
		if s.Kind == kind && s.Severity == sev && s.File == file && (line == 0 || s.Line == line) {
			return true
		}
	}
	return false
}

func kinds(ss []Signal) map[Kind]int {
	m := map[Kind]int{}
	for _, s := range ss {
		m[s.Kind]++
	}
	return m
}

// fsMode is the inverse of unixMode for a tar type flag, for building zip archives.
func fsMode(perm int64, typ byte) fs.FileMode {
	m := fs.FileMode(perm & 0o777)
	if perm&int64(ModeSetuid) != 0 {
		m |= fs.ModeSetuid
	}
	if perm&int64(ModeSetgid) != 0 {
		m |= fs.ModeSetgid
	}
	switch typ {
	case tar.TypeSymlink:
		m |= fs.ModeSymlink
	case tar.TypeFifo:
		m |= fs.ModeNamedPipe
	}
	return m
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func init() {
	// Every streamed comparison in the tests pools all its texts and fills
	// each dropped one with junk: a string of a dropped text that is kept
	// shows as a difference from the in-memory comparison.
	textPoolMinBytes = 1
	poisonDroppedText = true
}
