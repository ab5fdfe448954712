package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// sample returns a release bundle's contents: path -> bytes.
func sample(t testing.TB) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 3*BufferSize+12345) // crosses several buffers
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		"request.json":                     []byte(`{"version":1,"role":"pkg-left-pad"}`),
		"artifacts/left-pad-1.3.1.tgz":     big,
		"artifacts/README.md":              []byte("hello\n"),
		"previous/left-pad-1.3.0.tgz":      []byte("old tarball"),
		"provenance/npm/left-pad.sigstore": []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.2"}`),
		"provenance/slsa/a/empty.json":     {},
	}
}

func writeTree(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// wantFiles computes the manifest entries of files with the standard library.
func wantFiles(files map[string][]byte) []File {
	var out []File
	for p, b := range files {
		out = append(out, File{Path: p, Size: int64(len(b)), SHA256: sha256.Sum256(b), SHA512: sha512.Sum512(b)})
	}
	sortFiles(out)
	return out
}

func sortFiles(f []File) {
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j].Path < f[j-1].Path; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
}

func checkWorkdir(t *testing.T, dir string, files map[string][]byte, perm os.FileMode) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		want, ok := files[filepath.ToSlash(rel)]
		if !ok {
			t.Errorf("unexpected file %s in working directory", rel)
			return nil
		}
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: contents differ", rel)
		}
		info, _ := d.Info()
		if info.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", rel, info.Mode().Perm(), perm)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(files) {
		t.Errorf("working directory holds %d files, want %d", n, len(files))
	}
}

func TestImportDir(t *testing.T) {
	files := sample(t)
	src := t.TempDir()
	writeTree(t, src, files)
	root, err := os.OpenRoot(src)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	work := filepath.Join(t.TempDir(), "work")
	var last Progress
	var calls int
	m, err := Import(root.FS(), work, Options{Progress: func(p Progress) {
		if p.Done < last.Done || p.Total <= 0 || p.Done > p.Total {
			t.Errorf("progress went from %+v to %+v", last, p)
		}
		last = p
		calls++
	}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantFiles(files), m.Files); diff != "" {
		t.Errorf("manifest files (-want, +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"artifacts", "previous", "provenance", "provenance/npm", "provenance/slsa", "provenance/slsa/a"}, m.Dirs); diff != "" {
		t.Errorf("manifest dirs (-want, +got):\n%s", diff)
	}
	if !bytes.Equal(m.Document, files["request.json"]) {
		t.Errorf("document = %q", m.Document)
	}
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}
	if last.Done != total || last.Total != total || calls < 6 {
		t.Errorf("last progress %+v after %d calls, want done = total = %d", last, calls, total)
	}
	checkWorkdir(t, work, files, 0o600)
	if f, ok := m.File("artifacts/README.md"); !ok || f.Size != 6 {
		t.Errorf("File(artifacts/README.md) = %+v, %v", f, ok)
	}
	if _, ok := m.File("artifacts/nope"); ok {
		t.Error("File found a file that is not there")
	}

	again, err := Open(work, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, again); diff != "" {
		t.Errorf("Open (-import, +open):\n%s", diff)
	}

	// A file changed in the work area after import is noticed on Open.
	if err := os.WriteFile(filepath.Join(work, "artifacts", "README.md"), []byte("HELLO\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := Open(work, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := changed.File("artifacts/README.md"); f.SHA256 == sha256.Sum256([]byte("hello\n")) {
		t.Error("Open did not hash the file again")
	}
}

func TestImportRefusesNonEmptyWorkdir(t *testing.T) {
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := fstest.MapFS{"request.json": {Data: []byte("{}")}}
	_, err := Import(src, work, Options{})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v, want a refusal of a non-empty working directory", err)
	}
}

func TestWriteTarDeterministicAndRoundTrip(t *testing.T) {
	files := sample(t)
	src := t.TempDir()
	writeTree(t, src, files)
	var a, b bytes.Buffer
	ma, err := WriteTar(&a, os.DirFS(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The same contents from another source give the same bytes.
	mapfs := fstest.MapFS{}
	for p, d := range files {
		mapfs[p] = &fstest.MapFile{Data: d, Mode: 0o640}
	}
	if _, err := WriteTar(&b, mapfs, Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("WriteTar is not deterministic")
	}
	if diff := cmp.Diff(wantFiles(files), ma.Files); diff != "" {
		t.Errorf("manifest (-want, +got):\n%s", diff)
	}

	tr := tar.NewReader(bytes.NewReader(a.Bytes()))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		wantMode := int64(0o644)
		if hdr.Typeflag == tar.TypeDir {
			wantMode = 0o755
		}
		if hdr.Mode != wantMode || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" || !hdr.ModTime.Equal(TarModTime) {
			t.Errorf("%s: header %+v is not normalised", hdr.Name, hdr)
		}
	}
	for i := 1; i < len(names); i++ {
		if strings.TrimSuffix(names[i-1], "/") >= strings.TrimSuffix(names[i], "/") {
			t.Errorf("entries not sorted: %q before %q", names[i-1], names[i])
		}
	}

	work := filepath.Join(t.TempDir(), "work")
	data := a.Bytes()
	m, err := ImportTar(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, work, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ma.Files, m.Files); diff != "" {
		t.Errorf("imported tar (-written, +imported):\n%s", diff)
	}
	checkWorkdir(t, work, files, 0o600)
}

func TestWriteDir(t *testing.T) {
	files := sample(t)
	mapfs := fstest.MapFS{}
	for p, d := range files {
		mapfs[p] = &fstest.MapFile{Data: d}
	}
	dst := filepath.Join(t.TempDir(), "out")
	m, err := WriteDir(dst, mapfs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkWorkdir(t, dst, files, 0o644)
	m2, err := Import(os.DirFS(dst), filepath.Join(t.TempDir(), "w"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Files, m2.Files); diff != "" {
		t.Errorf("(-written, +imported):\n%s", diff)
	}
}

func TestResponseLayout(t *testing.T) {
	src := fstest.MapFS{
		"response.json": {Data: []byte(`{"role":"x"}`)},
		"record.json":   {Data: []byte(`[]`)},
	}
	m, err := Import(src, filepath.Join(t.TempDir(), "w"), Options{Layout: ResponseLayout})
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Document) != `{"role":"x"}` || len(m.Files) != 2 {
		t.Errorf("manifest = %+v", m)
	}
	delete(src, "record.json")
	_, err = Import(src, filepath.Join(t.TempDir(), "w"), Options{Layout: ResponseLayout})
	if !IsRule(err, RuleMissing) {
		t.Errorf("err = %v, want %s", err, RuleMissing)
	}
	// A release bundle is not a response.
	_, err = Import(fstest.MapFS{"request.json": {}}, filepath.Join(t.TempDir(), "w"), Options{Layout: ResponseLayout})
	if !IsRule(err, RuleUnknownTop) {
		t.Errorf("err = %v, want %s", err, RuleUnknownTop)
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1 KiB", 2 << 30: "2 GiB", 3328599654: "3.1 GiB", 1<<63 - 1: "8 EiB",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// The refusals of the local-folder source that only a real folder can show.
func TestImportDirRefusals(t *testing.T) {
	base := map[string][]byte{"request.json": []byte("{}"), "artifacts/a.tgz": []byte("a")}
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		setup func(dir string) error
		rule  Rule
		entry string
	}{
		{"symlink out", func(dir string) error {
			return os.Symlink(secret, filepath.Join(dir, "artifacts", "link.tgz"))
		}, RuleSymlink, "artifacts/link.tgz"},
		{"symlink dir", func(dir string) error {
			return os.Symlink(outside, filepath.Join(dir, "provenance"))
		}, RuleSymlink, "provenance"},
		{"hard link", func(dir string) error {
			return os.Link(secret, filepath.Join(dir, "artifacts", "hard.tgz"))
		}, RuleHardLink, "artifacts/hard.tgz"},
		{"fifo", func(dir string) error {
			return syscall.Mkfifo(filepath.Join(dir, "artifacts", "fifo"), 0o600)
		}, RuleSpecial, "artifacts/fifo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, base)
			if err := tc.setup(dir); err != nil {
				t.Fatal(err)
			}
			for _, src := range []fs.FS{os.DirFS(dir), mustRoot(t, dir)} {
				work := filepath.Join(t.TempDir(), "w")
				_, err := Import(src, work, Options{})
				checkRefusal(t, err, tc.rule, tc.entry)
				if _, err := os.Stat(work); !os.IsNotExist(err) {
					t.Errorf("working directory left behind after a refusal: %v", err)
				}
			}
		})
	}
}

func mustRoot(t *testing.T, dir string) fs.FS {
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.FS()
}

func checkRefusal(t *testing.T, err error, rule Rule, entry string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want a refusal for %q", rule)
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("err = %v (%T), want *Error for %q", err, err, rule)
	}
	if e.Rule != rule || e.Entry != entry {
		t.Fatalf("err = %v (rule %q, entry %q), want rule %q for entry %q", err, e.Rule, e.Entry, rule, entry)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "bundle: ") || strings.ContainsAny(msg, "\n\x00\x1b") {
		t.Errorf("message %q is not one safe line", msg)
	}
}
