package tuf

import (
	"fmt"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Benchmarks for scripts/bench-tuf.sh: verifying a 2-of-3 role with 1,
// 1,000 and 100,000 targets, Airlock against go-tuf's FromBytes +
// VerifyDelegate on the same bytes, and against the signature checks alone.

type benchCase struct {
	raw    []byte
	parent *metadata.Metadata[metadata.TargetsType]
	d      *Delegation
	sigs   []metadata.Signature
	canon  []byte
}

var benchCases = map[int]*benchCase{}

func benchSetup(b *testing.B, n int) *benchCase {
	if c, ok := benchCases[n]; ok {
		return c
	}
	h := holders(b, "alice", "bob", "carol")
	parent, d := delegation(b, 2, h["alice"], h["bob"], h["carol"])
	m := release(b, 1, n)
	signWith(b, m, d, h["alice"], h["bob"])
	raw, err := m.ToBytes(false)
	if err != nil {
		b.Fatal(err)
	}
	canon, _ := Canonical(m)
	c := &benchCase{raw: raw, parent: parent, d: d, sigs: m.Signatures, canon: canon}
	benchCases[n] = c
	return c
}

var sizes = []int{1, 1000, 100000}

func BenchmarkVerifyAirlock(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			c := benchSetup(b, n)
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m, err := ParseStrict[metadata.TargetsType](c.raw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := VerifyRole(m, c.d, RoleCheck{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyGoTUF(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			c := benchSetup(b, n)
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m, err := metadata.Targets().FromBytes(c.raw)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.parent.VerifyDelegate("proj", m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignatureChecks is the floor: verifying the two signatures over
// already-canonical bytes, nothing else.
func BenchmarkSignatureChecks(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			c := benchSetup(b, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, s := range c.sigs {
					if err := verifySig(c.d.Keys[s.KeyID], c.canon, s.Signature); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
