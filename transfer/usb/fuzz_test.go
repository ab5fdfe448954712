package usb

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// smallImages builds tiny real images as fuzz seeds (FAT12, FAT16, ext4,
// ISO9660), each holding a small bundle. Missing tools just mean fewer seeds.
func smallImages(f *testing.F) [][]byte {
	src := f.TempDir()
	for p, data := range map[string]string{
		"request.json":        `{"v":1}`,
		"artifacts/a.tgz":     strings.Repeat("a", 1500),
		"provenance/p/q.json": "{}",
	} {
		full := filepath.Join(src, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte(data), 0o644)
	}
	var out [][]byte
	try := func(build func(img string) error, size int64) {
		img := filepath.Join(f.TempDir(), "seed.img")
		if size > 0 {
			if err := os.WriteFile(img, nil, 0o600); err != nil || os.Truncate(img, size) != nil {
				return
			}
		}
		if build(img) != nil {
			return
		}
		if b, err := os.ReadFile(img); err == nil {
			out = append(out, b)
		}
	}
	sh := func(name string, args ...string) error {
		p, err := exec.LookPath(name)
		if err != nil {
			p = filepath.Join("/usr/sbin", name)
		}
		cmd := exec.Command(p, args...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		return cmd.Run()
	}
	fatSeed := func(bits string) func(string) error {
		return func(img string) error {
			if err := sh("mkfs.vfat", "-F", bits, img); err != nil {
				return err
			}
			return sh("mcopy", "-s", "-i", img, filepath.Join(src, "request.json"), filepath.Join(src, "artifacts"), filepath.Join(src, "provenance"), "::")
		}
	}
	try(fatSeed("12"), 160<<10)
	try(fatSeed("16"), 2200<<10)
	try(func(img string) error { return sh("mkfs.ext4", "-q", "-F", "-d", src, img, "256K") }, 0)
	try(func(img string) error { return sh("xorriso", "-as", "mkisofs", "-quiet", "-R", "-o", img, src) }, 0)
	return out
}

func FuzzOpenImage(f *testing.F) {
	for _, seed := range smallImages(f) {
		f.Add(seed)
	}
	f.Add(exfatBootSector())
	f.Add(make([]byte, 4096))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := OpenImage(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "usb: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not one line prefixed usb:", msg)
			}
			return
		}
		defer v.Close()
		// Walk and read everything, within caps, as an import would.
		entries := 0
		var walk func(dir string, depth int)
		walk = func(dir string, depth int) {
			list, err := fs.ReadDir(v.FS, dir)
			if err != nil || depth > 4 {
				return
			}
			for _, e := range list {
				if entries++; entries > 200 {
					return
				}
				name := e.Name()
				if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
					continue
				}
				p := name
				if dir != "." {
					p = dir + "/" + name
				}
				if e.IsDir() {
					walk(p, depth+1)
					continue
				}
				info, err := e.Info()
				if err != nil || info.Size() > 1<<20 {
					continue
				}
				f, err := v.FS.Open(p)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, io.LimitReader(f, 1<<20))
				f.Close()
			}
		}
		walk(".", 0)
	})
}
