package usb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestISOHostileSizes checks that ISO9660 size fields go-diskfs would
// allocate blindly are refused first.
func TestISOHostileSizes(t *testing.T) {
	src := bundleSource(t)
	base, err := os.ReadFile(isoImage(t, src))
	if err != nil {
		t.Fatal(err)
	}
	const pvd = 16 * isoBlock
	root := binary.LittleEndian.Uint32(base[pvd+156+2:]) * isoBlock
	cases := []struct {
		name  string
		patch func(b []byte)
		want  string
	}{
		{"path table of 4 GiB", func(b []byte) { binary.LittleEndian.PutUint32(b[pvd+132:], 0xFFFFFFF0) }, "path table of"},
		{"path table past the end", func(b []byte) { binary.LittleEndian.PutUint32(b[pvd+140:], 0x00FFFFFF) }, "path table lies past the end"},
		{"root directory of 4 GiB", func(b []byte) { binary.LittleEndian.PutUint32(b[pvd+156+10:], 0xFFFFFFF0) }, "over the 4.0 MiB cap"},
		{"listed directory of 4 GiB", func(b []byte) { binary.LittleEndian.PutUint32(b[root+10:], 0xFFFFFFF0) }, "over the 4.0 MiB cap"},
		{"no terminator", func(b []byte) {
			// A primary descriptor with an empty path table and root,
			// then boot records only.
			binary.LittleEndian.PutUint32(b[pvd+132:], 0)
			binary.LittleEndian.PutUint32(b[pvd+156+10:], 0)
			for i := int64(1); i <= MaxISODescriptors; i++ {
				d := b[pvd+i*isoBlock : pvd+(i+1)*isoBlock]
				clear(d)
				copy(d[1:], "CD001\x01")
			}
		}, "no volume descriptor terminator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(base)
			tc.patch(b)
			_, err := OpenImage(bytes.NewReader(b), int64(len(b)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestReadBudget checks that a call into the filesystem code that reads
// without end fails with an error instead of stalling.
func TestReadBudget(t *testing.T) {
	data := make([]byte, 4096)
	b := newBudgetStorage(&memBackend{r: bytes.NewReader(data), size: int64(len(data))})
	loop := func() (err error) {
		defer recoverTo(&err, "read")
		b.reset(0)
		buf := make([]byte, 512)
		for {
			b.ReadAt(buf, 0)
		}
	}
	err := loop()
	if err == nil || !strings.Contains(err.Error(), "more than 65536 reads") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
	// A fresh budget allows reads again.
	b.reset(0)
	if _, err := b.ReadAt(make([]byte, 512), 0); err != nil {
		t.Fatal(err)
	}
}

// TestExt4ExtentLoop checks that an ext4 extent tree whose index node points
// at itself (go-diskfs would recurse without end) gives an error.
func TestExt4ExtentLoop(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "artifacts"), 0o755)
	os.WriteFile(filepath.Join(src, "request.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(src, "artifacts", "a.tgz"), randomBytes(20000), 0o644)
	img := filepath.Join(t.TempDir(), "stick.img")
	run(t, "", "mkfs.ext4", "-q", "-F", "-b", "1024", "-d", src, img, "2M")
	stat := run(t, "", "debugfs", "-R", "stat /artifacts/a.tgz", img)
	e := regexp.MustCompile(`\(0-\d+\):(\d+)-`).FindStringSubmatch(stat)
	if e == nil {
		t.Fatalf("cannot find the file's extent:\n%s", stat)
	}
	leaf, _ := strconv.ParseInt(e[1], 10, 64)
	// The inode's extent root becomes an index node (depth 1) whose one
	// entry points at block leaf; debugfs keeps the inode checksum right.
	words := []uint32{0x0001F30A, 0x00010004, 0, 0, uint32(leaf), 0}
	var cmds strings.Builder
	for i, w := range words {
		fmt.Fprintf(&cmds, "sif /artifacts/a.tgz block[%d] 0x%x\n", i, w)
	}
	run(t, cmds.String(), "debugfs", "-w", "-f", "-", img)
	// Block leaf becomes an index node pointing at itself.
	node := binary.LittleEndian.AppendUint16(nil, 0xF30A)
	node = binary.LittleEndian.AppendUint16(node, 1)  // entries
	node = binary.LittleEndian.AppendUint16(node, 84) // max
	node = binary.LittleEndian.AppendUint16(node, 1)  // depth
	node = binary.LittleEndian.AppendUint32(node, 0)  // generation
	node = binary.LittleEndian.AppendUint32(node, 0)  // first file block
	node = binary.LittleEndian.AppendUint32(node, uint32(leaf))
	node = binary.LittleEndian.AppendUint32(node, 0)
	writeAt(t, img, leaf*1024, node)

	v, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	_, err = fs.ReadFile(v.FS, "artifacts/a.tgz")
	if err == nil || !strings.Contains(err.Error(), "took more than") {
		t.Fatalf("err = %v, want the read budget to stop the loop", err)
	}
}
