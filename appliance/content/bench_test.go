package content

import (
	"path/filepath"
	"testing"
)

// BenchmarkSigstore reads two real releases and compares them.
func BenchmarkSigstore(b *testing.B) {
	lim := DefaultLimits()
	for b.Loop() {
		old, err := ReadFile(filepath.Join("testdata", "sigstore-1.3.0.tgz"), lim)
		if err != nil {
			b.Fatal(err)
		}
		nw, err := ReadFile(filepath.Join("testdata", "sigstore-2.0.0.tgz"), lim)
		if err != nil {
			b.Fatal(err)
		}
		if d := Compare(old, nw, lim); d.Changed == 0 {
			b.Fatal("no changes")
		}
	}
}
