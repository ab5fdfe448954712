package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func openTemp(t *testing.T) *Dir {
	t.Helper()
	d, err := OpenDir(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func listTemps(t *testing.T, d *Dir) []string {
	t.Helper()
	ents, err := os.ReadDir(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestWriteReadRoundTrip(t *testing.T) {
	d := openTemp(t)
	for _, want := range [][]byte{[]byte("one"), []byte("second, longer content"), {}} {
		if err := d.WriteFile("f", want); err != nil {
			t.Fatal(err)
		}
		got, err := d.ReadFile("f", 1<<10)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	fi, err := os.Stat(filepath.Join(d.Path(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %04o, want 0600", perm)
	}
	if temps := listTemps(t, d); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}

// A failure at any step of WriteFile leaves the old content whole and no
// temporary file behind.
func TestWriteFileFailureKeepsOldContent(t *testing.T) {
	for _, op := range []Op{OpCreate, OpWrite, OpSync, OpRename} {
		t.Run(string(op), func(t *testing.T) {
			d := openTemp(t)
			if err := d.WriteFile("f", []byte("old")); err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected")
			d.SetTestOnlyHook(func(o Op, name string) error {
				if o == op {
					return injected
				}
				return nil
			})
			err := d.WriteFile("f", []byte("new content"))
			if !errors.Is(err, injected) {
				t.Fatalf("WriteFile error %v, want the injected one", err)
			}
			d.SetTestOnlyHook(nil)
			got, err := d.ReadFile("f", 100)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "old" {
				t.Fatalf("content %q after failed write, want %q", got, "old")
			}
			if temps := listTemps(t, d); len(temps) != 0 {
				t.Errorf("temporary files left: %v", temps)
			}
		})
	}
}

// A failure after the rename (directory fsync) reports an error, and the file
// may already hold the new content; it never holds a mix.
func TestWriteFileFailureAfterRename(t *testing.T) {
	d := openTemp(t)
	if err := d.WriteFile("f", []byte("old")); err != nil {
		t.Fatal(err)
	}
	d.SetTestOnlyHook(func(o Op, _ string) error {
		if o == OpSyncDir {
			return errors.New("injected")
		}
		return nil
	})
	if err := d.WriteFile("f", []byte("new")); err == nil {
		t.Fatal("WriteFile succeeded despite a failed directory fsync")
	}
	got, _ := d.ReadFile("f", 100)
	if string(got) != "old" && string(got) != "new" {
		t.Fatalf("content %q is neither version", got)
	}
}

func TestLockExcludesSecondOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenDir(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenDir: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("error %q does not name the holder's pid", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := OpenDir(path)
	if err != nil {
		t.Fatalf("OpenDir after Close: %v", err)
	}
	d2.Close()
}

func TestOpenDirRefusesWritableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(path); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("OpenDir of a 0777 directory: %v, want a refusal telling to chmod", err)
	}
}

func TestOpenDirRefusesSymlink(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(link); err == nil {
		t.Fatal("OpenDir followed a symlink")
	}
}

func TestOpenDirRemovesLeftoverTemps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	left := filepath.Join(path, tempPrefix+"ledger.json-0011223344556677")
	if err := os.WriteFile(left, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("leftover temporary file still there: %v", err)
	}
}

func TestReadFileCap(t *testing.T) {
	d := openTemp(t)
	if err := d.WriteFile("f", bytes.Repeat([]byte("x"), 101)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadFile("f", 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadFile over cap: %v, want ErrTooLarge", err)
	}
	if b, err := d.ReadFile("f", 101); err != nil || len(b) != 101 {
		t.Fatalf("ReadFile at cap: %d bytes, %v", len(b), err)
	}
	if _, err := d.ReadFile("missing", 100); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestReadFileRefusesSymlink(t *testing.T) {
	d := openTemp(t)
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(d.Path(), "f")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadFile("f", 100); err == nil {
		t.Fatal("ReadFile followed a symlink")
	}
}

func TestNamesChecked(t *testing.T) {
	d := openTemp(t)
	for _, name := range []string{"", ".", "..", "a/b", "../x", "a\x00b", tempPrefix + "x", LockFileName, strings.Repeat("a", MaxNameLen+1)} {
		if err := d.WriteFile(name, nil); err == nil {
			t.Errorf("WriteFile(%q) accepted", name)
		}
		if err := d.AppendFile(name, nil); err == nil {
			t.Errorf("AppendFile(%q) accepted", name)
		}
		if _, err := d.ReadFile(name, 1); err == nil {
			t.Errorf("ReadFile(%q) accepted", name)
		}
	}
}

func TestAppendFile(t *testing.T) {
	d := openTemp(t)
	for _, s := range []string{"a", "bc", "def"} {
		if err := d.AppendFile("log", []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.ReadFile("log", 100)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "abcdef" {
		t.Fatalf("log %q, want %q", got, "abcdef")
	}
	if err := d.Truncate("log", 3); err != nil {
		t.Fatal(err)
	}
	got, _ = d.ReadFile("log", 100)
	if string(got) != "abc" {
		t.Fatalf("log after truncate %q, want %q", got, "abc")
	}
}

func BenchmarkWriteFile(b *testing.B) {
	d, err := OpenDir(filepath.Join(b.TempDir(), "state"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	data := bytes.Repeat([]byte("x"), 4096)
	for b.Loop() {
		if err := d.WriteFile("f", data); err != nil {
			b.Fatal(err)
		}
	}
}

const (
	envCrashHelper = "AIRLOCK_STORE_CRASH_HELPER"
	envCrashDir    = "AIRLOCK_STORE_CRASH_DIR"
)

// crashContent is version n of the file: a header naming n and the SHA-256
// of a body whose length varies with n, so any mix of two versions or any
// prefix is recognisable.
func crashContent(n int) []byte {
	body := bytes.Repeat([]byte{byte('a' + n%26)}, 1000+(n*7919)%30000)
	return append(fmt.Appendf(nil, "%d %x\n", n, sha256.Sum256(body)), body...)
}

func parseCrashContent(b []byte) (int, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return 0, fmt.Errorf("no header in %d bytes", len(b))
	}
	var n int
	var sum string
	if _, err := fmt.Sscanf(string(b[:i]), "%d %s", &n, &sum); err != nil {
		return 0, err
	}
	if !bytes.Equal(b, crashContent(n)) {
		return 0, fmt.Errorf("content is not a whole version %d", n)
	}
	return n, nil
}

// TestHelperWriteLoop rewrites one file forever; it runs only as the child
// of TestCrashWriteFile.
func TestHelperWriteLoop(t *testing.T) {
	if os.Getenv(envCrashHelper) != "1" {
		return
	}
	d, err := OpenDir(os.Getenv(envCrashDir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	b, err := d.ReadFile("f", 1<<20)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	n, err := parseCrashContent(b)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	for {
		n++
		if err := d.WriteFile("f", crashContent(n)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		fmt.Printf("%d\n", n) // acknowledged: the next reader must see n or later
	}
}

// TestCrashWriteFile kills a process that rewrites a file in a loop at
// random instants and checks that the file always holds one whole version,
// never older than the last acknowledged one.
func TestCrashWriteFile(t *testing.T) {
	runs := 100
	if testing.Short() {
		runs = 20
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state")
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("f", crashContent(0)); err != nil {
		t.Fatal(err)
	}
	d.Close()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	acked := 0
	for run := range runs {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(exe, "-test.run=^TestHelperWriteLoop$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashHelper+"=1", envCrashDir+"="+path)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(time.Duration(rng.IntN(50_000))*time.Microsecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
		werr := cmd.Wait()
		timer.Stop()
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() {
			t.Fatalf("run %d: helper ended with %v, not a kill\n%s", run, werr, stderr.Bytes())
		}
		for _, f := range strings.Fields(stdout.String()) {
			if n, err := strconv.Atoi(f); err == nil && n > acked {
				acked = n
			}
		}
		d, err := OpenDir(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.ReadFile("f", 1<<20)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		n, err := parseCrashContent(b)
		if err != nil {
			t.Fatalf("run %d: torn file after a kill: %v", run, err)
		}
		if n < acked {
			t.Fatalf("run %d: file holds version %d, but version %d was acknowledged", run, n, acked)
		}
		if temps := listTemps(t, d); len(temps) != 0 {
			t.Fatalf("run %d: temporary files survived OpenDir: %v", run, temps)
		}
		d.Close()
	}
	t.Logf("%d kills, %d versions acknowledged", runs, acked)
}
