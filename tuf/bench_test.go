package tuf

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Benchmarks for scripts/bench-tuf.sh. The fixtures are generated here (a
// 2-of-3 release with 100,000 targets is 26 MB), never committed.
//
//	BenchmarkVerify100k/airlock          ParseTargets + Verify, as Airlock writes it (fast path)
//	BenchmarkVerify100k/airlock-indented the same role indented as python-tuf writes it (compacted, fast path)
//	BenchmarkVerify100k/airlock-slow-path the slow path forced: strict go-tuf decode and canonical re-encoding
//	BenchmarkVerify100k/go-tuf           go-tuf FromBytes + VerifyDelegate on the same bytes
//	BenchmarkVerify100k/signatures       the two signature checks over the canonical bytes alone
//	BenchmarkVerify100k/plain-decode     encoding/json into plain structs, no custom unmarshalers
//	BenchmarkSingleRelease/...           the same for a release of one target
//	BenchmarkRefresh100k/airlock|go-tuf  a full refresh and target lookup from the same files

type benchCase struct {
	raw      []byte // canonical signed part, as Airlock writes it
	indented []byte // the same metadata indented
	parent   *metadata.Metadata[metadata.TargetsType]
	d        *Delegation
	sigs     []metadata.Signature
	canon    []byte
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
	raw, err := EncodeMetadata(m)
	if err != nil {
		b.Fatal(err)
	}
	indented, err := m.ToBytes(true)
	if err != nil {
		b.Fatal(err)
	}
	t, err := ParseTargets(raw)
	if err != nil || t.full != nil {
		b.Fatalf("fixture does not take the fast path: %v", err)
	}
	c := &benchCase{raw: raw, indented: indented, parent: parent, d: d, sigs: m.Signatures, canon: t.payload}
	benchCases[n] = c
	return c
}

// plainTargets is targets metadata as plain structs: the decoding floor.
type plainTargets struct {
	Signatures []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
	Signed struct {
		Type        string `json:"_type"`
		SpecVersion string `json:"spec_version"`
		Version     int64  `json:"version"`
		Expires     string `json:"expires"`
		Targets     map[string]struct {
			Length int64             `json:"length"`
			Hashes map[string]string `json:"hashes"`
			Custom json.RawMessage   `json:"custom"`
		} `json:"targets"`
		Delegations json.RawMessage `json:"delegations"`
	} `json:"signed"`
}

func benchVerify(b *testing.B, n int) {
	c := benchSetup(b, n)
	b.Run("airlock", func(b *testing.B) {
		b.SetBytes(int64(len(c.raw)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := VerifyTargets(c.raw, c.d, RoleCheck{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(c.raw)), "file-bytes")
	})
	b.Run("airlock-indented", func(b *testing.B) {
		b.SetBytes(int64(len(c.indented)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := VerifyTargets(c.indented, c.d, RoleCheck{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("airlock-slow-path", func(b *testing.B) {
		b.SetBytes(int64(len(c.raw)))
		b.ReportAllocs()
		for b.Loop() {
			t, err := parseTargetsSlow(c.raw)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := t.Verify(c.d, RoleCheck{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-tuf", func(b *testing.B) {
		b.SetBytes(int64(len(c.raw)))
		b.ReportAllocs()
		for b.Loop() {
			m, err := metadata.Targets().FromBytes(c.raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.parent.VerifyDelegate("proj", m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signatures", func(b *testing.B) {
		b.SetBytes(int64(len(c.raw)))
		b.ReportAllocs()
		for b.Loop() {
			for _, s := range c.sigs {
				pk := c.d.key(s.KeyID)
				if err := verifyParsed(pk.pub, pk.hash, c.canon, s.Signature); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("plain-decode", func(b *testing.B) {
		b.SetBytes(int64(len(c.raw)))
		b.ReportAllocs()
		for b.Loop() {
			var p plainTargets
			if err := json.Unmarshal(c.raw, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerify100k verifies a 2-of-3 role with 100,000 targets.
func BenchmarkVerify100k(b *testing.B) { benchVerify(b, 100_000) }

// BenchmarkSingleRelease verifies a 2-of-3 release of one target.
func BenchmarkSingleRelease(b *testing.B) { benchVerify(b, 1) }

// dirFetcher serves a repository folder to go-tuf's updater.
type dirFetcher struct{ base, dir string }

func (f dirFetcher) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	name, ok := strings.CutPrefix(u, f.base)
	if !ok {
		return nil, fmt.Errorf("%s is outside %s", u, f.base)
	}
	b, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(name)))
	if err != nil {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: u}
	}
	if int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: u}
	}
	return b, nil
}

var refreshRepo *testRepo

// BenchmarkRefresh100k refreshes from a repository whose role "proj" has
// 100,000 targets and looks one up: Airlock's Updater against go-tuf's,
// from an empty local state each time, on the same files.
func BenchmarkRefresh100k(b *testing.B) {
	if refreshRepo == nil {
		tr := newTestRepo(b)
		next, err := tr.NextTargets("proj", refTime.Add(30*24*time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		big := release(b, next.Signed.Version, 100_000)
		big.Signed.Expires = next.Signed.Expires
		if err := tr.commit(b, "proj", big, "alice", "bob"); err != nil {
			b.Fatal(err)
		}
		refreshRepo = tr
	}
	tr := refreshRepo
	const target = "proj/pkg-99999.tgz"
	meta := filepath.Join(tr.Dir, "metadata")
	b.Run("airlock", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			store := MemStore{}
			if err := InitStore(store, tr.root); err != nil {
				b.Fatal(err)
			}
			u := &Updater{Store: store, Remote: DirFetcher(meta), RefTime: refTime}
			if err := u.Refresh(context.Background()); err != nil {
				b.Fatal(err)
			}
			if _, err := u.GetTargetInfo(context.Background(), target); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-tuf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cfg, err := config.New("http://bench/metadata", tr.root)
			if err != nil {
				b.Fatal(err)
			}
			cfg.Fetcher = dirFetcher{base: "http://bench/metadata/", dir: meta}
			cfg.DisableLocalCache = true
			cfg.LocalMetadataDir = b.TempDir()
			cfg.TargetsMaxLength = MaxMetadataBytes
			up, err := updater.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			up.UnsafeSetRefTime(refTime)
			if err := up.Refresh(); err != nil {
				b.Fatal(err)
			}
			if _, err := up.GetTargetInfo(target); err != nil {
				b.Fatal(err)
			}
		}
	})
}
