package appliance

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/appliance/content"
)

// The review's memory budget, measured the way an operator would see it:
// the peak resident set of a separate process that reviews one hostile
// artifact exactly as verify does (open within the cap, stream the hashes,
// read the archive at offsets, diff against the previous release).

const memCaseEnv = "AIRLOCK_REVIEW_MEMCASE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(memCaseEnv); dir != "" {
		LimitMemory()
		if err := reviewMemCase(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// reviewMemCase reviews dir/new (against dir/old when present).
func reviewMemCase(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "new", "*"))
	if err != nil || len(names) != 1 {
		return fmt.Errorf("case %s: want one file in new/", dir)
	}
	files := os.DirFS(dir)
	newName := "new/" + filepath.Base(names[0])
	prev := ""
	if olds, _ := filepath.Glob(filepath.Join(dir, "old", "*")); len(olds) == 1 {
		prev = "old/" + filepath.Base(olds[0])
	}
	f, err := openCapped(files, newName, content.DefaultMaxArchiveBytes)
	if err != nil {
		return err
	}
	defer f.Close()
	tf := &metadata.TargetFiles{Length: f.size, Hashes: metadata.Hashes{}}
	art, err := checkTargetFile(newName, &metadata.TargetFiles{Length: f.size, Hashes: metadata.Hashes{"sha256": make([]byte, 32)}}, f)
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		return fmt.Errorf("hash check: %v", err)
	}
	tf.Hashes["sha256"] = art.SHA256
	if _, err := checkTargetFile(newName, tf, f); err != nil {
		return err
	}
	d, note, _ := diffContent(files, newName, f, prev)
	if d == nil {
		// Refused within a reading cap: the review shows the note.
		fmt.Printf("not read: %s\n", note)
		return nil
	}
	fmt.Printf("files %d, signals %d\n", len(d.Files), len(d.Signals))
	return nil
}

func writeFile(t *testing.T, p string, fill func(w io.Writer) error) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// tgzOf writes an npm tarball of files, each of size bytes from gen.
func tgzOf(names []string, size int64, gen func(i int) io.Reader) func(w io.Writer) error {
	return func(w io.Writer) error {
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		tw := tar.NewWriter(zw)
		for i, n := range names {
			if err := tw.WriteHeader(&tar.Header{Name: "package/" + n, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := io.CopyN(tw, gen(i), size); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return zw.Close()
	}
}

// twoLetters reads random lines "a\n" and "b\n".
type twoLetters struct{ r *rand.Rand }

func (l *twoLetters) Read(p []byte) (int, error) {
	for i := 0; i+1 < len(p); i += 2 {
		p[i], p[i+1] = "ab"[l.r.IntN(2)], '\n'
	}
	if len(p)%2 == 1 {
		p[len(p)-1] = '\n'
	}
	return len(p), nil
}

// repeat reads s over and over.
type repeat struct {
	s   string
	off int
}

func (r *repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.s[r.off]
		r.off = (r.off + 1) % len(r.s)
	}
	return len(p), nil
}

func TestReviewMemoryBudget(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name  string
		build func(t *testing.T, dir string)
	}{
		{"480 MiB non-archive artifact", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "new", "blob.bin"), func(w io.Writer) error {
				_, err := io.CopyN(w, &repeat{s: "\x00\x01binary payload\xff"}, 480*mib)
				return err
			})
		}},
		{"two 20 MiB two-letter files diffed", func(t *testing.T, dir string) {
			// Random two-letter lines compress about 16 times, within the
			// compression-ratio cap, and defeat the diff's anchors.
			writeFile(t, filepath.Join(dir, "old", "p-1.0.0.tgz"), tgzOf([]string{"a.txt"}, 20*mib, func(int) io.Reader { return &twoLetters{rand.New(rand.NewPCG(1, 2))} }))
			writeFile(t, filepath.Join(dir, "new", "p-1.0.1.tgz"), tgzOf([]string{"a.txt"}, 20*mib, func(int) io.Reader { return &twoLetters{rand.New(rand.NewPCG(3, 4))} }))
		}},
		{"two-letter files just under the diff's line cap", func(t *testing.T, dir string) {
			const size = 2 * (content.DefaultMaxDiffInputLines - 1000)
			writeFile(t, filepath.Join(dir, "old", "p-1.0.0.tgz"), tgzOf([]string{"a.txt"}, size, func(int) io.Reader { return &twoLetters{rand.New(rand.NewPCG(5, 6))} }))
			writeFile(t, filepath.Join(dir, "new", "p-1.0.1.tgz"), tgzOf([]string{"a.txt"}, size, func(int) io.Reader { return &twoLetters{rand.New(rand.NewPCG(7, 8))} }))
		}},
		{"eight 31 MiB text files", func(t *testing.T, dir string) {
			names := []string{"1.js", "2.js", "3.js", "4.js", "5.js", "6.js", "7.js", "8.js"}
			writeFile(t, filepath.Join(dir, "old", "p-1.0.0.tgz"), tgzOf(names, 31*mib, func(i int) io.Reader { return &repeat{s: fmt.Sprintf("var x%d = 1;\n", i)} }))
			writeFile(t, filepath.Join(dir, "new", "p-1.0.1.tgz"), tgzOf(names, 31*mib, func(i int) io.Reader { return &repeat{s: fmt.Sprintf("let y%d = 2;\n", i)} }))
		}},
		{"six 15 MiB text files, over the retained-text cap", func(t *testing.T, dir string) {
			names := []string{"1.js", "2.js", "3.js", "4.js", "5.js", "6.js"}
			writeFile(t, filepath.Join(dir, "old", "p-1.0.0.tgz"), tgzOf(names, 15*mib, func(i int) io.Reader { return &repeat{s: fmt.Sprintf("console.log(%d);\n", i)} }))
			writeFile(t, filepath.Join(dir, "new", "p-1.0.1.tgz"), tgzOf(names, 15*mib, func(i int) io.Reader { return &repeat{s: fmt.Sprintf("console.log(%d + 1);\n", i)} }))
		}},
	}
	var worst int64
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			tc.build(t, dir)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), memCaseEnv+"="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("review process: %v\n%s", err, out)
			}
			peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
			worst = max(worst, peak)
			t.Logf("%s: peak RSS %d MiB (budget %d MiB); %s", tc.name, peak/mib, content.MemoryBudget/mib, strings.TrimSpace(string(out)))
			if peak > content.MemoryBudget {
				t.Errorf("%s: the review peaked at %d MiB, over the %d MiB budget", tc.name, peak/mib, content.MemoryBudget/mib)
			}
		})
	}
	t.Logf("worst-case peak RSS of the review over the hostile cases: %d MiB", worst/mib)
}
