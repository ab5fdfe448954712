package usb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

// fragmentedImage makes a FAT image whose file big.bin is stored in many
// runs of clusters: small files are written, every other one is deleted,
// and big.bin (of size bytes) is written into the holes.
func fragmentedImage(t *testing.T, bits string, imgSize int64, size int) (img string, want []byte) {
	t.Helper()
	img = sized(t, imgSize)
	run(t, "", "mkfs.vfat", "-F", bits, "-s", "1", img)
	src := t.TempDir()
	var names []string
	for i := range 24 {
		p := filepath.Join(src, fmt.Sprintf("f%02d.bin", i))
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 3000+i*700), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, p)
	}
	run(t, "", "mcopy", append(append([]string{"-i", img}, names...), "::")...)
	var del []string
	for i := 0; i < 24; i += 2 {
		del = append(del, fmt.Sprintf("::f%02d.bin", i))
	}
	run(t, "", "mdel", append([]string{"-i", img}, del...)...)
	if bits == "32" {
		// mtools allocates from the FSInfo next-free hint, past the holes:
		// point it at the start.
		bs := make([]byte, 512)
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(bs, 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		writeAt(t, img, le16(bs, 11)*le16(bs, 48)+492, []byte{2, 0, 0, 0})
	}
	want = randomBytes(size)
	big := filepath.Join(src, "big.bin")
	if err := os.WriteFile(big, want, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "", "mcopy", "-i", img, big, "::")
	return img, want
}

// diskfsRead reads name with go-diskfs's own FAT reader.
func diskfsRead(t *testing.T, img, kind, name string) (data []byte, ranges int) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	b := file.New(f, true)
	var fsys filesystem.FileSystem
	switch kind {
	case "FAT32":
		fsys, err = fat32.Read(b, info.Size(), 0, 0)
	case "FAT16":
		fsys, err = fat16.Read(b, info.Size(), 0, 0)
	default:
		fsys, err = fat12.Read(b, info.Size(), 0, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	ff, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	dr, err := ff.(*fat12.File).GetDiskRanges()
	if err != nil {
		t.Fatal(err)
	}
	data, err = io.ReadAll(ff)
	if err != nil {
		t.Fatal(err)
	}
	return data, len(dr)
}

// TestFATDirectReadFragmented checks that the direct FAT reader gives the
// same bytes as go-diskfs's own reader and as the source, for a file spread
// over many runs of clusters, with reads of many sizes.
func TestFATDirectReadFragmented(t *testing.T) {
	cases := []struct {
		bits, kind string
		imgSize    int64
		size       int
	}{
		{"32", "FAT32", 40 << 20, 3<<20 + 4321},
		{"16", "FAT16", 8 << 20, 1<<20 + 77},
		{"12", "FAT12", 1 << 20, 200<<10 + 5},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			img, want := fragmentedImage(t, tc.bits, tc.imgSize, tc.size)
			ref, ranges := diskfsRead(t, img, tc.kind, "big.bin")
			if ranges < 5 {
				t.Fatalf("big.bin is in %d runs of clusters, want a fragmented file", ranges)
			}
			if !bytes.Equal(ref, want) {
				t.Fatal("go-diskfs's reader differs from the source")
			}
			v, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if v.Type != tc.kind {
				t.Fatalf("type %s, want %s", v.Type, tc.kind)
			}
			for _, bufSize := range []int{1, 511, 4096, 65537, DirectChunk - 1, DirectChunk, 3 << 20, 8 << 20} {
				f, err := v.FS.Open("big.bin")
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := f.(*guardedFile).f.(*fatFile); !ok {
					t.Fatalf("big.bin is read by %T, not the direct FAT reader", f.(*guardedFile).f)
				}
				got, err := readWith(f, bufSize)
				f.Close()
				if err != nil {
					t.Fatalf("reads of %d bytes: %v", bufSize, err)
				}
				if !bytes.Equal(got, ref) {
					t.Fatalf("reads of %d bytes: %d bytes differ from go-diskfs's %d", bufSize, len(got), len(ref))
				}
			}
			// The small files left between the holes read the same too.
			for i := 1; i < 24; i += 2 {
				name := fmt.Sprintf("f%02d.bin", i)
				ref, _ := diskfsRead(t, img, tc.kind, name)
				got, err := readAll(v, name)
				if err != nil || !bytes.Equal(got, ref) {
					t.Fatalf("%s differs from go-diskfs's reader (err %v)", name, err)
				}
			}
		})
	}
}

// readWith reads f to its end with reads of n bytes.
func readWith(f io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := f.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func readAll(v *Volume, name string) ([]byte, error) {
	f, err := v.FS.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// TestFATDirectReadDamaged checks the direct reader's refusals: a chain
// shorter than the file's size and a cluster number past the volume.
func TestFATDirectReadDamaged(t *testing.T) {
	img, _ := fragmentedImage(t, "32", 40<<20, 1<<20)
	bs := make([]byte, 512)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(bs, 0)
	f.Close()
	g, err := parseFAT(bs)
	if err != nil {
		t.Fatal(err)
	}
	// Find big.bin's chain with go-diskfs, then end it early in both FATs.
	fi, _ := os.Stat(img)
	fd, _ := os.Open(img)
	fsys, err := fat32.Read(file.New(fd, true), fi.Size(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ff, err := fsys.Open("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ff.(*fat12.File).GetClusterChain()
	fd.Close()
	if err != nil || len(chain) < 10 {
		t.Fatalf("chain of %d clusters: %v", len(chain), err)
	}
	setFAT := func(c uint32, v uint32) {
		for k := range g.numFATs {
			writeAt(t, img, g.fatOffset+k*g.fatBytes+int64(c)*4, binary.LittleEndian.AppendUint32(nil, v))
		}
	}
	open := func() error {
		v, err := Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		_, err = v.FS.Open("big.bin")
		return err
	}

	// A cluster past the last one of the volume (the table has room for
	// more entries than the volume has clusters).
	if spare := uint32(g.clusters + 2); int64(spare) < g.fatBytes/4 {
		setFAT(chain[5], spare)
		setFAT(spare, 0x0FFFFFFF)
		if err := open(); err == nil || !strings.Contains(err.Error(), "outside the volume") {
			t.Fatalf("cluster past the volume: err = %v", err)
		}
	} else {
		t.Logf("the table has no spare entries (%d clusters): cluster past the volume not tried", g.clusters)
	}

	// A chain that ends before the file's size.
	setFAT(chain[5], 0x0FFFFFFF)
	if err := open(); err == nil || !strings.Contains(err.Error(), "cluster chain holds only") {
		t.Fatalf("short chain: err = %v", err)
	}
}
