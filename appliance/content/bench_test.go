package content

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
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

// largeRelease builds two releases of a synthetic package shaped like a
// big compiler's: three large generated files (about 4 MiB, 100k lines
// each) with scattered edits, and 300 small files of which a few change.
func largeRelease(b *testing.B) (old, new []byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string { return fmt.Sprintf("v%d", rng.IntN(5000)) }
	var olds, news []ent
	for f := range 3 {
		var ob, nb strings.Builder
		for i := range 100_000 {
			line := fmt.Sprintf("    const %s = %s(%s, %d); // %d\n", word(), word(), word(), i, f)
			ob.WriteString(line)
			switch rng.IntN(60) {
			case 0: // changed
				nb.WriteString(strings.Replace(line, "const", "let", 1))
			case 1: // removed
			case 2: // added
				nb.WriteString(line)
				nb.WriteString("    debugger;\n")
			default:
				nb.WriteString(line)
			}
		}
		name := fmt.Sprintf("lib/big%d.js", f)
		olds = append(olds, ent{name: name, body: ob.String()})
		news = append(news, ent{name: name, body: nb.String()})
	}
	for i := range 300 {
		body := strings.Repeat(fmt.Sprintf("export declare const x%d: number;\n", i), 20+i%50)
		olds = append(olds, ent{name: fmt.Sprintf("lib/d/%03d.d.ts", i), body: body})
		if i%25 == 0 {
			body += "export declare const added: string;\n"
		}
		news = append(news, ent{name: fmt.Sprintf("lib/d/%03d.d.ts", i), body: body})
	}
	return npmTgz(b, olds), npmTgz(b, news)
}

// peakHeap samples the bytes of heap objects (live and not yet swept)
// until stop is closed, then sends the largest value seen.
func peakHeap(stop <-chan struct{}, peak chan<- uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var max uint64
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > max {
			max = v
		}
		select {
		case <-stop:
			peak <- max
			return
		case <-t.C:
		}
	}
}

// BenchmarkCompareLargeRelease compares the streamed comparison the
// appliance uses with reading both trees whole, reporting allocations and
// the peak heap in MiB.
func BenchmarkCompareLargeRelease(b *testing.B) {
	old, new := largeRelease(b)
	lim := DefaultLimits()
	for _, mode := range []string{"streamed", "in-memory"} {
		b.Run(mode, func(b *testing.B) {
			runtime.GC()
			b.ReportAllocs()
			b.SetBytes(int64(len(old) + len(new)))
			stop, peak := make(chan struct{}), make(chan uint64)
			go peakHeap(stop, peak)
			for b.Loop() {
				var d *Diff
				var err error
				if mode == "streamed" {
					d, err = streamed("p-1.tgz", old, "p-2.tgz", new, lim)
				} else {
					d, err = inMemory("p-1.tgz", old, "p-2.tgz", new, lim)
				}
				if err != nil || d.Changed != 15 {
					b.Fatalf("changed %v, error %v", d, err)
				}
			}
			close(stop)
			b.ReportMetric(float64(<-peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
