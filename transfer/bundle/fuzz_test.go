package bundle

import (
	"archive/tar"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// checkImported verifies the invariants of a successful import: every path
// is a clean bundle path and the working directory holds exactly the hashed
// bytes, nothing else.
func checkImported(t *testing.T, m *Manifest, work string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			t.Errorf("symlink %s in working directory", p)
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(m.Files) {
		t.Fatalf("working directory holds %d files, manifest %d", n, len(m.Files))
	}
	for _, f := range m.Files {
		if _, err := splitPath(f.Path); err != nil {
			t.Fatalf("accepted bad path %q: %v", f.Path, err)
		}
		if strings.Count(f.Path, "/")+1 > DefaultMaxDepth {
			t.Fatalf("accepted %q past the depth cap", f.Path)
		}
		b, err := os.ReadFile(filepath.Join(work, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != f.Size || sha256.Sum256(b) != f.SHA256 {
			t.Fatalf("%s: working copy differs from manifest", f.Path)
		}
	}
}

func FuzzImportTar(f *testing.F) {
	f.Add(mkTar(f, reg("request.json", "{}"), reg("artifacts/a.tgz", "aaa"), reg("provenance/x/y.json", "{}")))
	f.Add(mkTar(f, dir("./"), reg("./request.json", "{}"), dir("./artifacts/"), reg("./artifacts/a", "x")))
	f.Add(mkTar(f, reg("request.json", "{}"), reg("artifacts/../x", "x")))
	f.Add(mkTar(f, reg("request.json", "{}"), member{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "artifacts/l", Linkname: "/"}}))
	f.Add(mkTar(f, reg("request.json", "{}"), member{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "artifacts/caf\u00e9", Format: tar.FormatPAX}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		work := filepath.Join(t.TempDir(), "w")
		m, err := ImportTar(opener(data), work, Options{Limits: Limits{MaxTotalBytes: 1 << 20, MaxFileBytes: 1 << 20}})
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "bundle: ") || strings.ContainsAny(msg, "\n\x1b") {
				t.Fatalf("error %q is not one safe line", msg)
			}
			if _, serr := os.Stat(work); !os.IsNotExist(serr) {
				t.Fatalf("working directory left behind after %v", err)
			}
			return
		}
		checkImported(t, m, work)
	})
}

// FuzzImportFS feeds Import a filesystem whose names and modes come from the
// input: each line is "MODE NAME" where MODE is f (file), d (directory), l
// (symlink) or p (fifo); a file's contents are its own name.
func FuzzImportFS(f *testing.F) {
	f.Add("f request.json\nf artifacts/a.tgz\nf provenance/p/q.json\nd previous")
	f.Add("f request.json\nf artifacts/../../x")
	f.Add("f request.json\nf artifacts/A\nf artifacts/a")
	f.Add("f request.json\nl artifacts/l")
	f.Add("f request.json\np artifacts/p\nf artifacts/\xff")
	f.Fuzz(func(t *testing.T, spec string) {
		fsys := fstest.MapFS{}
		for _, line := range strings.Split(spec, "\n") {
			mode, name, ok := strings.Cut(line, " ")
			if !ok || name == "" {
				continue
			}
			mf := &fstest.MapFile{Data: []byte(name)}
			switch mode {
			case "d":
				mf = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
			case "l":
				mf.Mode = fs.ModeSymlink
			case "p":
				mf.Mode = fs.ModeNamedPipe
			}
			fsys[name] = mf
		}
		work := filepath.Join(t.TempDir(), "w")
		m, err := Import(fsys, work, Options{})
		if err != nil {
			if _, serr := os.Stat(work); !os.IsNotExist(serr) {
				t.Fatalf("working directory left behind after %v", err)
			}
			return
		}
		checkImported(t, m, work)
	})
}
