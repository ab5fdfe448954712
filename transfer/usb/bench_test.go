package usb

import (
	"crypto/sha256"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"airlock.dev/airlock/transfer/bundle"
)

// benchImage builds a FAT32 image holding a bundle with one artifact of
// size bytes, and returns the image and the artifact's source path.
func benchImage(b *testing.B, size int) (img, artifact string) {
	b.Helper()
	src := b.TempDir()
	os.MkdirAll(filepath.Join(src, "artifacts"), 0o755)
	os.WriteFile(filepath.Join(src, "request.json"), []byte("{}"), 0o644)
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i+8 <= len(data); i += 8 {
		v := rng.Uint64()
		for k := range 8 {
			data[i+k] = byte(v >> (8 * k))
		}
	}
	artifact = filepath.Join(src, "artifacts", "release.tgz")
	if err := os.WriteFile(artifact, data, 0o644); err != nil {
		b.Fatal(err)
	}
	img = fatImage(b, "32", int64(size+size/16+(40<<20)), src)
	return img, artifact
}

func benchmarkImport(b *testing.B, size int) {
	img, _ := benchImage(b, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := Open(img)
		if err != nil {
			b.Fatal(err)
		}
		work := filepath.Join(b.TempDir(), "w")
		if _, err := bundle.Import(v.FS, work, bundle.Options{}); err != nil {
			b.Fatal(err)
		}
		v.Close()
		b.StopTimer()
		os.RemoveAll(work)
		b.StartTimer()
	}
}

func BenchmarkImportFAT32_16MiB(b *testing.B)  { benchmarkImport(b, 16<<20) }
func BenchmarkImportFAT32_128MiB(b *testing.B) { benchmarkImport(b, 128<<20) }

// BenchmarkReadFAT32 reads the artifact through go-diskfs only, to separate
// filesystem cost from hashing and copying.
func BenchmarkReadFAT32_128MiB(b *testing.B) {
	img, _ := benchImage(b, 128<<20)
	b.SetBytes(128 << 20)
	buf := make([]byte, bundle.BufferSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := Open(img)
		if err != nil {
			b.Fatal(err)
		}
		f, err := v.FS.Open("artifacts/release.tgz")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
		v.Close()
	}
}

// BenchmarkSHA256File is the baseline: SHA-256 of the same bytes from a
// plain file, as sha256sum computes it.
func BenchmarkSHA256File_128MiB(b *testing.B) {
	_, artifact := benchImage(b, 128<<20)
	b.SetBytes(128 << 20)
	buf := make([]byte, bundle.BufferSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Open(artifact)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

var _ fs.FS = (*guardedFS)(nil)
