package usb

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The response written in these tests: a document, a record spanning
// clusters, and an empty file.
func testResponse() []ResponseFile {
	return []ResponseFile{
		{Name: "response.json", Data: []byte(`{"role":"sigstore","version":2,"signatures":[{"keyid":"ab","sig":"cd"}]}`)},
		{Name: "record.json", Data: bytes.Repeat([]byte(`{"event":"approved","holder":"alice"}`+"\n"), 300)},
		{Name: "EMPTY.TXT", Data: nil},
	}
}

const testDir = "airlock-response-4f2a9c"

// fsckVFAT runs fsck.vfat -n on the FAT image img and returns what it found,
// without its banner, summary and "Leaving filesystem unchanged", and
// whether it exited 0.
func fsckVFAT(t testing.TB, img string) (findings []string, clean bool) {
	t.Helper()
	cmd := exec.Command(tool(t, "fsck.vfat"), "-n", img)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("fsck.vfat: %v", err)
	}
	summary := regexp.MustCompile(`^\S+: \d+ files, \d+/\d+ clusters$`)
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case l == "", strings.HasPrefix(l, "fsck.fat "), l == "Leaving filesystem unchanged.", summary.MatchString(l):
			continue
		}
		findings = append(findings, l)
	}
	return findings, err == nil
}

// mustFsckClean fails unless fsck.vfat -n finds nothing at all.
func mustFsckClean(t testing.TB, img string) {
	t.Helper()
	if findings, clean := fsckVFAT(t, img); !clean || len(findings) > 0 {
		t.Fatalf("fsck.vfat -n %s (exit 0: %v):\n%s", img, clean, strings.Join(findings, "\n"))
	}
}

// afterPull lists what fsck.vfat may report after a write stopped part way:
// clusters in use that no folder lists (reclaimed), copies of the table
// that differ while each is intact (the first is used), and a free-cluster
// count that no longer matches. Nothing else: no cross-linked, truncated or
// out-of-range chain, no bad directory entry, no orphaned long name.
var afterPull = []*regexp.Regexp{
	regexp.MustCompile(`^Reclaimed \d+ unused clusters? \(\d+ bytes\)\.$`),
	regexp.MustCompile(`^FATs differ but appear to be intact\.$`),
	regexp.MustCompile(`^  Using first FAT\.$`),
	regexp.MustCompile(`^Free cluster summary wrong \(\d+ vs\. really \d+\)$`),
	regexp.MustCompile(`^  Auto-correcting\.$`),
}

// volumeImage returns the FAT volume of img as its own file (the
// partition at off copied out, or img itself).
func volumeImage(t testing.TB, img string, off int64) string {
	t.Helper()
	if off == 0 {
		return img
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(t.TempDir(), "part.img")
	if err := os.WriteFile(part, b[off:], 0o600); err != nil {
		t.Fatal(err)
	}
	return part
}

// readBack reads the files of folder dir through Open, failing the test if
// it cannot.
func readBack(t testing.TB, img, dir string, names []string) map[string][]byte {
	t.Helper()
	v, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	out := map[string][]byte{}
	for _, n := range names {
		b, err := fs.ReadFile(v.FS, filepath.ToSlash(filepath.Join(dir, n)))
		if err != nil {
			t.Fatalf("read %s/%s: %v", dir, n, err)
		}
		out[n] = b
	}
	return out
}

// addFiles copies files (name -> contents) to the root of the FAT image at
// mimg (an mtools image spec) with mtools.
func addFiles(t testing.TB, mimg string, files map[string][]byte) {
	t.Helper()
	src := t.TempDir()
	var paths []string
	for n, b := range files {
		p := filepath.Join(src, n)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	run(t, "", "mcopy", append(append([]string{"-i", mimg}, paths...), "::")...)
}

// existing is what each test puts on a stick before writing to it.
var existing = map[string][]byte{
	"notes.txt":          []byte("keep me"),
	"release-v1.2.3.tgz": bytes.Repeat([]byte("0123456789abcdef"), 700),
	"README":             []byte("top level"),
}

func existingNames() []string {
	var out []string
	for n := range existing {
		out = append(out, n)
	}
	return out
}

func checkExisting(t testing.TB, img string) {
	t.Helper()
	got := readBack(t, img, ".", existingNames())
	for n, want := range existing {
		if !bytes.Equal(got[n], want) {
			t.Fatalf("%s changed: %d bytes, want %d", n, len(got[n]), len(want))
		}
	}
}

// openVolume finds the FAT volume of img for the writer's own checks.
func openVolume(t testing.TB, img string) (*fatVolume, func()) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := findFAT(f)
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	return v, func() { f.Close() }
}

func rootClusters(t testing.TB, img string) int {
	t.Helper()
	v, done := openVolume(t, img)
	defer done()
	chain, err := v.rootChain()
	if err != nil {
		t.Fatal(err)
	}
	return len(chain)
}

// fillRoot adds long-named files to the FAT32 root folder of img until its
// clusters hold no room for the response folder's three entries.
func fillRoot(t testing.TB, img string) {
	t.Helper()
	for i := 0; ; i++ {
		v, done := openVolume(t, img)
		root, _, err := v.rootDir()
		done()
		if err != nil {
			t.Fatal(err)
		}
		if scanDir(root).freeRun(root, 3, int(v.bps)) < 0 {
			return
		}
		if i > 200 {
			t.Fatal("cannot fill the root folder")
		}
		addFiles(t, img, map[string][]byte{fmt.Sprintf("filler-%03d.txt", i): []byte("x")})
	}
}

// fragment writes files to img and deletes every other one, leaving free
// space in many small holes.
func fragment(t testing.TB, img string) {
	t.Helper()
	// One file at a time, in order, so that they lie in order on the stick.
	var del []string
	for i := range 24 {
		n := fmt.Sprintf("frag%02d.bin", i)
		addFiles(t, img, map[string][]byte{n: bytes.Repeat([]byte{byte(i)}, 600+i*100)})
		if i%2 == 0 {
			del = append(del, "::"+n)
		}
	}
	run(t, "", "mdel", append([]string{"-i", img}, del...)...)
}

type writeCase struct {
	name    string
	img     func(t *testing.T) string // the stick, with existing files
	off     int64                     // the volume's offset
	typ     string
	prepare func(t *testing.T, img string) // before the write
}

func writeCases() []writeCase {
	plain := func(bits string, size int64, mkfs ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			img := sized(t, size)
			run(t, "", "mkfs.vfat", append(append([]string{"-F", bits}, mkfs...), img)...)
			addFiles(t, img, existing)
			return img
		}
	}
	return []writeCase{
		{name: "fat12", img: plain("12", 4<<20), typ: "FAT12"},
		{name: "fat16", img: plain("16", 20<<20), typ: "FAT16"},
		{name: "fat32", img: plain("32", 40<<20, "-s", "1"), typ: "FAT32"},
		{name: "fat32 mbr", img: func(t *testing.T) string {
			img := partitionedFAT32(t, "dos", "")
			addFiles(t, img+"@@1M", existing)
			return img
		}, off: 1 << 20, typ: "FAT32"},
		{name: "fat12 fragmented", img: plain("12", 2<<20, "-s", "1"), typ: "FAT12", prepare: func(t *testing.T, img string) { fragment(t, img) }},
		{name: "fat16 fragmented", img: plain("16", 20<<20, "-s", "1"), typ: "FAT16", prepare: func(t *testing.T, img string) { fragment(t, img) }},
		{name: "fat32 fragmented", img: plain("32", 40<<20, "-s", "1"), typ: "FAT32", prepare: func(t *testing.T, img string) { fragment(t, img) }},
		{name: "fat32 root extended", img: plain("32", 40<<20, "-s", "1"), typ: "FAT32", prepare: func(t *testing.T, img string) { fillRoot(t, img) }},
		{name: "fat16 root with a hole", img: plain("16", 20<<20), typ: "FAT16", prepare: func(t *testing.T, img string) {
			// Deleted entries early in the root folder are reused.
			addFiles(t, img, map[string][]byte{"a-long-name-1.txt": {1}, "a-long-name-2.txt": {2}, "a-long-name-3.txt": {3}})
			run(t, "", "mdel", "-i", img, "::a-long-name-1.txt", "::a-long-name-2.txt")
		}},
	}
}

func mtoolsSpec(img string, off int64) string {
	if off == 0 {
		return img
	}
	return fmt.Sprintf("%s@@%d", img, off)
}

func TestWriteResponseFAT(t *testing.T) {
	files := testResponse()
	for _, tc := range writeCases() {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img(t)
			if tc.prepare != nil {
				tc.prepare(t, img)
			}
			mustFsckClean(t, volumeImage(t, img, tc.off))
			var rootBefore int
			if tc.typ == "FAT32" {
				rootBefore = rootClusters(t, img)
			}
			// The plan shows where the data goes.
			v, done := openVolume(t, img)
			p, err := v.planResponse(testDir, files, time.Now())
			done()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tc.name, "fragmented") && len(p.data) < 6 {
				t.Errorf("the response went to %d runs of clusters, want it spread over the holes", len(p.data))
			}

			if err := WriteResponse(img, testDir, files); err != nil {
				t.Fatal(err)
			}
			mustFsckClean(t, volumeImage(t, img, tc.off))
			checkExisting(t, img)
			vol, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			if vol.Type != tc.typ {
				t.Errorf("type %s, want %s", vol.Type, tc.typ)
			}
			vol.Close()
			if strings.Contains(tc.name, "root extended") {
				if got := rootClusters(t, img); got != rootBefore+1 {
					t.Errorf("root folder of %d clusters, want %d", got, rootBefore+1)
				}
			}
			// mtools reads what was written.
			m := mtoolsSpec(img, tc.off)
			listing := run(t, "", "mdir", "-b", "-i", m, "::/"+testDir)
			for _, f := range files {
				out := filepath.Join(t.TempDir(), f.Name)
				run(t, "", "mcopy", "-i", m, "::/"+testDir+"/"+f.Name, out)
				if got, _ := os.ReadFile(out); !bytes.Equal(got, f.Data) {
					t.Errorf("mcopy %s: %d bytes, want %d", f.Name, len(got), len(f.Data))
				}
				if !strings.Contains(listing, "/"+f.Name+"\n") {
					t.Errorf("mdir does not list %s under its long name:\n%s", f.Name, listing)
				}
			}
			if root := run(t, "", "mdir", "-b", "-i", m, "::/"); !strings.Contains(root, "::/"+testDir+"/\n") {
				t.Errorf("mdir does not list the folder:\n%s", root)
			}

			// A second folder goes next to the first.
			if err := WriteResponse(img, "airlock-response-2", files[:1]); err != nil {
				t.Fatal(err)
			}
			mustFsckClean(t, volumeImage(t, img, tc.off))
			// Never overwrite, whatever the case.
			before := sha256File(t, img)
			for _, d := range []string{testDir, strings.ToUpper(testDir), "notes.txt", "NOTES.TXT"} {
				if err := WriteResponse(img, d, files); !errors.Is(err, ErrExists) {
					t.Errorf("write %s: err = %v, want ErrExists", d, err)
				}
			}
			if sha256File(t, img) != before {
				t.Error("a refused write changed the image")
			}
		})
	}
}

// TestWriteResponseFixedRootFull checks that a FAT12 stick whose fixed root
// folder is full is refused before anything is written.
func TestWriteResponseFixedRootFull(t *testing.T) {
	img := sized(t, 1<<20)
	run(t, "", "mkfs.vfat", "-F", "12", "-r", "16", img)
	files := map[string][]byte{}
	for i := range 16 {
		files[fmt.Sprintf("F%02d.TXT", i)] = []byte{byte(i)}
	}
	addFiles(t, img, files)
	before := sha256File(t, img)
	err := WriteResponse(img, testDir, testResponse())
	if err == nil || !strings.Contains(err.Error(), "the stick's top-level folder is full (16 entries): remove files from its top level or use another stick") {
		t.Fatalf("err = %v, want a full root folder refused", err)
	}
	if sha256File(t, img) != before {
		t.Error("the refused write changed the image")
	}
	mustFsckClean(t, img)
}

// TestWriteResponseNoSpace fills sticks to within a few clusters of full:
// a response that does not fit is refused, counted from the allocation
// table, before any byte changes; one that fits exactly is written.
func TestWriteResponseNoSpace(t *testing.T) {
	files := testResponse()
	for _, tc := range []struct {
		bits, spc string
		size      int64
	}{{"12", "4", 2 << 20}, {"16", "4", 20 << 20}, {"32", "1", 40 << 20}} {
		v0img := sized(t, tc.size)
		run(t, "", "mkfs.vfat", "-F", tc.bits, "-s", tc.spc, v0img)
		addFiles(t, v0img, existing)
		v, done := openVolume(t, v0img)
		free := int64(len(v.freeClusters()))
		p, err := v.planResponse(testDir, files, time.Now())
		bpc := v.bpc
		done()
		if err != nil {
			t.Fatal(err)
		}
		need := int64(0)
		for _, w := range p.data {
			need += int64(len(w.b)) / bpc
		}
		for _, left := range []int64{0, 1, need - 1, need} {
			t.Run(fmt.Sprintf("fat%s with %d free", tc.bits, left), func(t *testing.T) {
				b, err := os.ReadFile(v0img)
				if err != nil {
					t.Fatal(err)
				}
				img := filepath.Join(t.TempDir(), "stick.img")
				if err := os.WriteFile(img, b, 0o600); err != nil {
					t.Fatal(err)
				}
				addFiles(t, img, map[string][]byte{"filler.bin": make([]byte, (free-left)*bpc)})
				mustFsckClean(t, img)
				before := sha256File(t, img)
				err = WriteResponse(img, testDir, files)
				if left == need {
					if err != nil {
						t.Fatalf("a response that fits exactly: %v", err)
					}
					mustFsckClean(t, img)
					checkExisting(t, img)
					return
				}
				want := fmt.Sprintf("the allocation table shows %d free clusters (%s) but the response needs %d (%s): use another stick",
					left, formatSize(left*bpc), need, formatSize(need*bpc))
				if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want ErrNoSpace saying %q", err, want)
				}
				if sha256File(t, img) != before {
					t.Fatal("the refused write changed the image")
				}
				mustFsckClean(t, img)
			})
		}
	}
}

// TestWriteResponseFSInfoLies sets a FAT32 stick's FSInfo record to say it
// is full and that the next free cluster is the root folder's: the writer
// counts the table instead, writes, and leaves the record true.
func TestWriteResponseFSInfoLies(t *testing.T) {
	img := sized(t, 40<<20)
	run(t, "", "mkfs.vfat", "-F", "32", "-s", "1", img)
	addFiles(t, img, existing)
	bs := make([]byte, 512)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(bs, 0)
	f.Close()
	g, err := parseFAT(bs)
	if err != nil {
		t.Fatal(err)
	}
	lie := make([]byte, 8)
	copy(lie[4:], []byte{byte(g.rootCluster), 0, 0, 0}) // 0 free, next free: the root
	writeAt(t, img, le16(bs, 48)*g.bytesPerSector+488, lie)
	if findings, _ := fsckVFAT(t, img); len(findings) == 0 {
		t.Fatal("fsck.vfat does not see the planted free count")
	}
	if err := WriteResponse(img, testDir, testResponse()); err != nil {
		t.Fatal(err)
	}
	mustFsckClean(t, img)
	checkExisting(t, img)
}

// TestWriteResponseExFAT checks that a real exFAT stick is refused before
// anything is written, with a message saying what to do.
func TestWriteResponseExFAT(t *testing.T) {
	img := sized(t, 8<<20)
	run(t, "", "mkfs.exfat", img)
	before := sha256File(t, img)
	err := WriteResponse(img, testDir, testResponse())
	if !errors.Is(err, ErrExFAT) || !strings.Contains(err.Error(), "cannot write the response: exFAT is not supported: format the stick FAT32") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want ErrExFAT saying to format the stick FAT32", err)
	}
	if sha256File(t, img) != before {
		t.Error("the refused write changed the image")
	}
	run(t, "", "fsck.exfat", "-n", img)
}

// pulledStick is a medium that stops working part way through a write: the
// first writes calls go through whole, then the next one lands only its
// first torn bytes and fails, as does everything after.
type pulledStick struct {
	f      *os.File
	writes int
	torn   int
	pulled bool
}

var errPulled = errors.New("the stick was pulled")

func (p *pulledStick) ReadAt(b []byte, off int64) (int, error) { return p.f.ReadAt(b, off) }

func (p *pulledStick) WriteAt(b []byte, off int64) (int, error) {
	if p.pulled {
		return 0, errPulled
	}
	if p.writes == 0 {
		p.pulled = true
		n, _ := p.f.WriteAt(b[:min(p.torn, len(b))], off)
		return n, errPulled
	}
	p.writes--
	return p.f.WriteAt(b, off)
}

func (p *pulledStick) Sync() error {
	if p.pulled {
		return errPulled
	}
	return nil
}

// writeWith runs the writer on img through wrap.
func writeWith(t testing.TB, img string, files []ResponseFile, wrap func(*os.File) medium) error {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := findFAT(f)
	if err != nil {
		t.Fatal(err)
	}
	v.m = wrap(f)
	p, err := v.planResponse(testDir, files, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p.run(v.m)
}

// recorder is a medium that records the length of every write.
type recorder struct {
	*os.File
	lens []int
}

func (r *recorder) WriteAt(b []byte, off int64) (int, error) {
	r.lens = append(r.lens, len(b))
	return r.File.WriteAt(b, off)
}

// TestWriteResponsePulled pulls the stick after every number of writes,
// and part way through each long write at sector boundaries: every time,
// the files already on the stick read back the same, fsck.vfat finds at
// most unused clusters, differing table copies or a wrong free count, and
// the new folder is either absent or whole.
func TestWriteResponsePulled(t *testing.T) {
	files := testResponse()
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	for _, tc := range writeCases() {
		if tc.off != 0 {
			continue // the same writer; fsck needs the volume on its own
		}
		t.Run(tc.name, func(t *testing.T) {
			base := tc.img(t)
			if tc.prepare != nil {
				tc.prepare(t, base)
			}
			baseBytes, err := os.ReadFile(base)
			if err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), "pulled.img")
			reset := func() {
				if err := os.WriteFile(img, baseBytes, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			reset()
			rec := &recorder{}
			if err := writeWith(t, img, files, func(f *os.File) medium { rec.File = f; return rec }); err != nil {
				t.Fatal(err)
			}
			if err := verifyResponse(img, testDir, files); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			complete, absent, disagree := 0, 0, 0
			for n := 0; n <= len(rec.lens); n++ {
				tears := []int{0}
				if n < len(rec.lens) && rec.lens[n] > 512 {
					tears = append(tears, 512, rec.lens[n]/1024*512)
				}
				for _, torn := range tears {
					reset()
					err := writeWith(t, img, files, func(f *os.File) medium { return &pulledStick{f: f, writes: n, torn: torn} })
					if n == len(rec.lens) {
						if err != nil {
							t.Fatal(err)
						}
					} else if !errors.Is(err, errPulled) || !strings.Contains(err.Error(), fmt.Sprintf("writing stopped after %d of %d writes", n, len(rec.lens))) {
						t.Fatalf("pulled after %d writes: err = %v", n, err)
					}
					findings, _ := fsckVFAT(t, img)
				check:
					for _, l := range findings {
						for _, ok := range afterPull {
							if ok.MatchString(l) {
								seen[l] = true
								continue check
							}
						}
						t.Fatalf("pulled after %d writes (+%d bytes): fsck.vfat -n reports %q:\n%s", n, torn, l, strings.Join(findings, "\n"))
					}
					checkExisting(t, img)
					v, err := Open(img)
					if err != nil {
						t.Fatalf("pulled after %d writes (+%d bytes): %v", n, torn, err)
					}
					list, err := fs.ReadDir(v.FS, ".")
					v.Close()
					visible := slices.ContainsFunc(list, func(e fs.DirEntry) bool { return strings.EqualFold(e.Name(), testDir) })
					switch {
					case err == nil && !visible:
						absent++
					case err == nil:
						if err := verifyResponse(img, testDir, files); err != nil {
							t.Fatalf("pulled after %d writes (+%d bytes): the folder is visible but %v", n, torn, err)
						}
						complete++
					default:
						t.Fatalf("pulled after %d writes (+%d bytes): %v", n, torn, err)
					}
					if torn != 0 {
						continue
					}
					// Writing again on the pulled stick: refused as existing,
					// or written whole, or (pulled while a grown root folder
					// was linked in one table copy but not the other) refused
					// unchanged.
					before := sha256File(t, img)
					err = WriteResponse(img, testDir, files)
					switch {
					case visible && errors.Is(err, ErrExists), !visible && err == nil:
					case !visible && err != nil && strings.Contains(err.Error(), "copies 1 and 2 of the allocation table disagree about the root folder") && sha256File(t, img) == before:
						disagree++
					default:
						t.Fatalf("pulled after %d writes, then written again: %v", n, err)
					}
					findings, _ = fsckVFAT(t, img)
				recheck:
					for _, l := range findings {
						for _, ok := range afterPull {
							if ok.MatchString(l) {
								continue recheck
							}
						}
						t.Fatalf("pulled after %d writes, then written again: fsck.vfat -n reports %q", n, l)
					}
					checkExisting(t, img)
				}
			}
			if complete == 0 || absent == 0 {
				t.Errorf("%d runs left the folder whole and %d left it absent, want both", complete, absent)
			}
			if disagree > 0 && !strings.Contains(tc.name, "root extended") {
				t.Errorf("%d writes again refused for table copies that disagree about a root folder that did not grow", disagree)
			}
			t.Logf("%d writes; %d runs left the folder absent, %d whole; %d writes again refused; fsck reported %q", len(rec.lens), absent, complete, disagree, keys(seen))
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
