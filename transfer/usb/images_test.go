package usb

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/transfer/bundle"
	"github.com/google/go-cmp/cmp"
)

// tool finds a program of the image-building packages (dosfstools, mtools,
// e2fsprogs, xorriso, fdisk), also in sbin directories.
func tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("%s is not installed (scripts/install-test-deps.sh installs it)", name)
	return ""
}

func run(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// bundleSource builds a release bundle folder: the testdata bundle (real npm
// tarballs and Sigstore bundles) plus a generated file that spans several
// read buffers and a nested provenance folder.
func bundleSource(t testing.TB) string {
	t.Helper()
	src := t.TempDir()
	err := filepath.WalkDir("testdata/bundle", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/bundle", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(src, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(src, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	big := make([]byte, 2*bundle.BufferSize+4321)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(src, "artifacts", "Native-Addon_v2.node"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "provenance", "slsa", "run-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "provenance", "slsa", "run-1", "statement.json"), []byte(`{"_type":"https://in-toto.io/Statement/v1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "previous"), 0o755); err != nil {
		t.Fatal(err)
	}
	return src
}

// sourceFiles hashes a folder with the standard library.
func sourceFiles(t testing.TB, src string) []bundle.File {
	t.Helper()
	var out []bundle.File
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out = append(out, bundle.File{Path: filepath.ToSlash(rel), Size: int64(len(b)), SHA256: sha256.Sum256(b), SHA512: sha512.Sum512(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func topLevel(t testing.TB, src string) []string {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, filepath.Join(src, e.Name()))
	}
	return out
}

func sized(t testing.TB, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "stick.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return img
}

// fatImage makes a FAT image of the given bits without a partition table
// and copies src's contents to its root with mtools.
func fatImage(t testing.TB, bits string, size int64, src string) string {
	t.Helper()
	img := sized(t, size)
	run(t, "", "mkfs.vfat", "-F", bits, img)
	if src != "" {
		run(t, "", "mcopy", append(append([]string{"-s", "-i", img}, topLevel(t, src)...), "::")...)
	}
	return img
}

// partitionedFAT32 makes an image with a partition table (label "dos" or
// "gpt") whose first partition, at 1 MiB, holds a FAT32 filesystem.
func partitionedFAT32(t testing.TB, label string, src string) string {
	t.Helper()
	const size = 80 << 20
	img := sized(t, size)
	typ := "c"
	if label == "gpt" {
		typ = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
	}
	run(t, "label: "+label+"\nstart=2048, size=153600, type="+typ+"\n", "sfdisk", "-q", img)
	run(t, "", "mkfs.vfat", "-F", "32", "--offset=2048", img, "76800")
	if src != "" {
		run(t, "", "mcopy", append(append([]string{"-s", "-i", img + "@@1M"}, topLevel(t, src)...), "::")...)
	}
	return img
}

func ext4Image(t testing.TB, src string) string {
	t.Helper()
	parent := t.TempDir()
	if err := os.Rename(src, filepath.Join(parent, "airlock-bundle")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "stick.img")
	run(t, "", "mkfs.ext4", "-q", "-F", "-d", parent, img, "16M")
	if err := os.Rename(filepath.Join(parent, "airlock-bundle"), src); err != nil {
		t.Fatal(err)
	}
	return img
}

func isoImage(t testing.TB, src string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "stick.iso")
	run(t, "", "xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "AIRLOCK", "-o", img, src)
	return img
}

func TestImportFromImages(t *testing.T) {
	src := bundleSource(t)
	want := sourceFiles(t, src)
	cases := []struct {
		name      string
		img       func() string
		typ       string
		partition int
		dir       string
	}{
		{"fat32 without partition table", func() string { return fatImage(t, "32", 64<<20, src) }, "FAT32", 0, "."},
		{"fat32 mbr", func() string { return partitionedFAT32(t, "dos", src) }, "FAT32", 1, "."},
		{"fat32 gpt", func() string { return partitionedFAT32(t, "gpt", src) }, "FAT32", 1, "."},
		{"fat16", func() string { return fatImage(t, "16", 20<<20, src) }, "FAT16", 0, "."},
		{"fat12", func() string { return fatImage(t, "12", 4<<20, src) }, "FAT12", 0, "."},
		{"ext4", func() string { return ext4Image(t, src) }, "ext4", 0, "airlock-bundle"},
		{"iso9660", func() string { return isoImage(t, src) }, "ISO9660", 0, "."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img()
			// The image as written, before anything reads it.
			before := sha256File(t, img)
			v, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if v.Type != tc.typ || v.Partition != tc.partition {
				t.Errorf("opened %s on partition %d, want %s on %d", v.Type, v.Partition, tc.typ, tc.partition)
			}
			dirs, err := FindBundles(v.FS)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tc.dir}, dirs); diff != "" {
				t.Fatalf("FindBundles (-want, +got):\n%s", diff)
			}
			sub, err := fs.Sub(v.FS, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := bundle.Import(sub, filepath.Join(t.TempDir(), "work"), bundle.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sortedFiles(want), m.Files); diff != "" {
				t.Errorf("imported files (-source, +imported):\n%s", diff)
			}
			// The image was not changed by reading it, nor by opening it
			// again.
			v.Close()
			if v2, err := Open(img); err == nil {
				v2.Close()
			}
			if sha256File(t, img) != before {
				t.Error("opening read-only changed the image")
			}
		})
	}
}

func sortedFiles(f []bundle.File) []bundle.File {
	out := append([]bundle.File(nil), f...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Path < out[j-1].Path; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func sha256File(t testing.TB, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// exfatBootSector crafts the first sector of an exFAT volume.
func exfatBootSector() []byte {
	bs := make([]byte, 512)
	copy(bs, []byte{0xEB, 0x76, 0x90})
	copy(bs[3:], "EXFAT   ")
	binary.LittleEndian.PutUint64(bs[72:], 2048) // volume length in sectors
	bs[108], bs[109] = 9, 3                      // 512-byte sectors, 8 per cluster
	bs[510], bs[511] = 0x55, 0xAA
	return bs
}

func writeAt(t testing.TB, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestExFATRefused(t *testing.T) {
	whole := sized(t, 1<<20)
	writeAt(t, whole, 0, exfatBootSector())

	part := sized(t, 4<<20)
	run(t, "label: dos\nstart=2048, type=7\n", "sfdisk", "-q", part)
	writeAt(t, part, 1<<20, exfatBootSector())

	for name, img := range map[string]string{"whole": whole, "partition": part} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(img)
			if !errors.Is(err, ErrExFAT) {
				t.Fatalf("err = %v, want ErrExFAT", err)
			}
			if !strings.Contains(err.Error(), "exFAT is not supported: format the stick FAT32") {
				t.Errorf("message %q does not say what to do", err)
			}
			if err := WriteResponse(img, "airlock-response-1", []ResponseFile{{Name: "response.json", Data: []byte("{}")}}); !errors.Is(err, ErrExFAT) {
				t.Errorf("WriteResponse err = %v, want ErrExFAT", err)
			}
		})
	}
}

func TestDamagedImages(t *testing.T) {
	src := bundleSource(t)
	fat := fatImage(t, "32", 64<<20, src)
	fatBytes, err := os.ReadFile(fat)
	if err != nil {
		t.Fatal(err)
	}
	g, err := parseFAT(fatBytes[:512])
	if err != nil {
		t.Fatal(err)
	}

	// A root directory whose cluster chain points back to itself, in both
	// copies of the table (go-diskfs compares them).
	loop := bytes.Clone(fatBytes)
	for i := int64(0); i < g.numFATs; i++ {
		binary.LittleEndian.PutUint32(loop[g.fatOffset+i*g.fatBytes+int64(g.rootCluster)*4:], g.rootCluster)
	}
	// A boot sector that claims a table over the cap, on a medium (a
	// sparse file) large enough to hold the filesystem it claims.
	hugeFAT := bytes.Clone(fatBytes)
	hugeSectors := int64(2 * MaxFATBytes / 512)
	hugeSize := int64(3*MaxFATBytes) * 2
	binary.LittleEndian.PutUint32(hugeFAT[36:], uint32(hugeSectors))
	binary.LittleEndian.PutUint32(hugeFAT[32:], uint32(hugeSize/512))
	// The same garbage over both tables.
	garbage := bytes.Clone(fatBytes)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := g.fatOffset; i < g.fatOffset+g.fatBytes; i++ {
		garbage[i] = byte(rng.Uint32())
		for n := int64(1); n < g.numFATs; n++ {
			garbage[i+n*g.fatBytes] = garbage[i]
		}
	}

	ext := ext4Image(t, src)
	extBytes, err := os.ReadFile(ext)
	if err != nil {
		t.Fatal(err)
	}
	iso := isoImage(t, src)
	isoBytes, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		data []byte
		size int64 // the image is extended (sparse) to this size
		want string
	}{
		{"fat32 truncated", fatBytes[:len(fatBytes)/2], 0, "truncated"},
		{"fat32 cut in the boot sector", fatBytes[:300], 0, "too small"},
		{"fat32 cluster loop", loop, 0, "loops"},
		{"fat32 table over the cap", hugeFAT, hugeSize, "allocation table is 128.0 MiB, over the 64.0 MiB cap"},
		{"fat32 garbage table", garbage, 0, "cannot read the root directory"},
		{"ext4 truncated", extBytes[:len(extBytes)/3], 0, "truncated"},
		{"iso truncated", isoBytes[:len(isoBytes)/2], 0, "truncated"},
		{"zeros", make([]byte, 1<<20), 0, "no readable filesystem"},
		{"random", randomBytes(1 << 20), 0, "no readable filesystem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "bad.img")
			if err := os.WriteFile(img, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.size > 0 {
				if err := os.Truncate(img, tc.size); err != nil {
					t.Fatal(err)
				}
			}
			v, err := Open(img)
			if err == nil {
				// A damaged image may still open; reading it must then fail
				// cleanly or give bytes that do not match the bundle.
				defer v.Close()
				m, ierr := bundle.Import(v.FS, filepath.Join(t.TempDir(), "w"), bundle.Options{})
				if ierr == nil && cmp.Equal(sortedFiles(sourceFiles(t, src)), m.Files) {
					t.Fatalf("damaged image %s read back as the intact bundle", tc.name)
				}
				if tc.want != "" {
					t.Fatalf("opened, want an error containing %q", tc.want)
				}
				return
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "usb: ") || strings.Contains(msg, "\n") {
				t.Errorf("message %q is not one line prefixed usb:", msg)
			}
			if tc.want != "" && !strings.Contains(msg, tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func randomBytes(n int) []byte {
	rng := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestWriteResponse(t *testing.T) {
	resp := []byte(`{"role":"sigstore","version":2,"signatures":[{"keyid":"ab","sig":"cd"}]}`)
	record := bytes.Repeat([]byte(`{"event":"approved","holder":"alice"}`+"\n"), 5000) // spans clusters
	files := []ResponseFile{{Name: "response.json", Data: resp}, {Name: "record.json", Data: record}}
	const dir = "airlock-response-4f2a9c"
	for name, mk := range map[string]func() string{
		"fat32":     func() string { return fatImage(t, "32", 64<<20, "") },
		"fat32 mbr": func() string { return partitionedFAT32(t, "dos", "") },
	} {
		t.Run(name, func(t *testing.T) {
			img := mk()
			mimg := img
			if name == "fat32 mbr" {
				mimg = img + "@@1M"
			}
			// Something already on the stick stays untouched.
			other := filepath.Join(t.TempDir(), "notes.txt")
			if err := os.WriteFile(other, []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, "", "mcopy", "-i", mimg, other, "::")

			if err := WriteResponse(img, dir, files); err != nil {
				t.Fatal(err)
			}
			// mtools is an independent reader.
			if got := run(t, "", "mtype", "-i", mimg, "::/"+dir+"/response.json"); got != string(resp) {
				t.Errorf("mtype response.json = %q, want %q", got, resp)
			}
			out := filepath.Join(t.TempDir(), "record.json")
			run(t, "", "mcopy", "-i", mimg, "::/"+dir+"/record.json", out)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, record) {
				t.Errorf("mcopy record.json: %d bytes differ from the %d written", len(got), len(record))
			}
			if got := run(t, "", "mtype", "-i", mimg, "::/notes.txt"); got != "keep me" {
				t.Errorf("notes.txt = %q", got)
			}
			// dosfstools finds the filesystem consistent.
			if name == "fat32" {
				run(t, "", "fsck.vfat", "-n", img)
			} else {
				part := filepath.Join(t.TempDir(), "part.img")
				run(t, "", "dd", "if="+img, "of="+part, "bs=1M", "skip=1", "status=none")
				run(t, "", "fsck.vfat", "-n", part)
			}
			// And package bundle reads it as a response.
			v, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			sub, _ := fs.Sub(v.FS, dir)
			m, err := bundle.Import(sub, filepath.Join(t.TempDir(), "w"), bundle.Options{Layout: bundle.ResponseLayout})
			v.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Document, resp) {
				t.Errorf("document %q", m.Document)
			}

			// Never overwrite.
			before := sha256File(t, img)
			err = WriteResponse(img, dir, files)
			if !errors.Is(err, ErrExists) {
				t.Errorf("second write: err = %v, want ErrExists", err)
			}
			if err := WriteResponse(img, strings.ToUpper(dir), files); !errors.Is(err, ErrExists) {
				t.Errorf("write differing in case: err = %v, want ErrExists", err)
			}
			if sha256File(t, img) != before {
				t.Error("a refused write changed the image")
			}
		})
	}
}

func TestWriteResponseRefusals(t *testing.T) {
	src := bundleSource(t)
	ok := []ResponseFile{{Name: "response.json", Data: []byte("{}")}}
	fat := fatImage(t, "32", 64<<20, "")
	cases := []struct {
		name  string
		img   string
		dir   string
		files []ResponseFile
		want  string
	}{
		{"ext4", ext4Image(t, src), "airlock-response-1", ok, "no FAT filesystem found: use a FAT32 stick"},
		{"traversal dir", fat, "../x", ok, "folder name"},
		{"slash in dir", fat, "a/b", ok, "folder name"},
		{"traversal file", fat, "airlock-response-1", []ResponseFile{{Name: "../x", Data: nil}}, "file name"},
		{"no files", fat, "airlock-response-1", nil, "1 to 16 files"},
		{"duplicate", fat, "airlock-response-1", []ResponseFile{{Name: "a.json"}, {Name: "A.JSON"}}, "twice"},
		// FAT drops a trailing dot: "x." would be stored and found as "x".
		{"trailing dot dir", fat, "airlock-response-1.", ok, "not ending in '.'"},
		{"trailing dot file", fat, "airlock-response-1", []ResponseFile{{Name: "response.json.", Data: nil}}, "not ending in '.'"},
		{"missing device", filepath.Join(t.TempDir(), "nope"), "airlock-response-1", ok, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteResponse(tc.img, tc.dir, tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestListRemovable(t *testing.T) {
	got, err := ListRemovable("testdata/sysfs", "/dev")
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{
		{Name: "sdb", Path: "/dev/sdb", Size: 30031872 * 512, Vendor: "SanDisk", Model: "Cruzer Blade[31m", Removable: true,
			Partitions: []Partition{
				{Name: "sdb1", Path: "/dev/sdb1", Number: 1, Start: 2048 * 512, Size: 1048576 * 512},
				{Name: "sdb2", Path: "/dev/sdb2", Number: 2, Start: 1050624 * 512, Size: 28981248 * 512},
			}},
		{Name: "sr0", Path: "/dev/sr0", Size: 2097152 * 512, Vendor: "QEMU", Model: "QEMU DVD-ROM", Removable: true, ReadOnly: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListRemovable (-want, +got):\n%s", diff)
	}

	// A stick that says it is not removable but hangs off a USB bus, as
	// many do: sysfs links the block device into the USB device tree.
	root := t.TempDir()
	devdir := filepath.Join(root, "devices", "pci0000:00", "0000:00:14.0", "usb2", "2-1", "2-1:1.0", "host6", "target6:0:0", "6:0:0:0", "block", "sdd")
	if err := os.MkdirAll(filepath.Join(devdir, "device"), 0o755); err != nil {
		t.Fatal(err)
	}
	for attr, v := range map[string]string{"removable": "0", "size": "2048", "ro": "0", "device/vendor": "Kingston", "device/model": "DataTraveler"} {
		if err := os.WriteFile(filepath.Join(devdir, attr), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "block"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(devdir, filepath.Join(root, "block", "sdd")); err != nil {
		t.Fatal(err)
	}
	got, err = ListRemovable(root, "/dev")
	if err != nil {
		t.Fatal(err)
	}
	want = []Device{{Name: "sdd", Path: "/dev/sdd", Size: 2048 * 512, Vendor: "Kingston", Model: "DataTraveler", USB: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListRemovable USB (-want, +got):\n%s", diff)
	}

	if _, err := ListRemovable(filepath.Join(root, "nope"), "/dev"); err == nil {
		t.Error("missing sysfs accepted")
	}
}
