package registry

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// benchRelease is a repository with role tuf-js delegated 2-of-2, the
// bundle of tuf-js 1.0.0 and both holders' responses.
type benchRelease struct {
	repo      map[string][]byte
	request   []byte
	subs      [][]byte
	tarball   []byte
	online    hsm.Signer
	keys      []*ecdsa.PublicKey
	now       time.Time
	target    string
	delegated *tuf.Delegation
}

func newBenchRelease(b *testing.B) *benchRelease {
	dir := b.TempDir()
	now := time.Now()
	k := map[string]hsm.Signer{}
	for _, n := range []string{"root", "targets", "online", "alice", "bob"} {
		s, err := hsm.GenerateFileKey(filepath.Join(dir, n+".pem"), hsm.ECDSAP256, n, nil)
		if err != nil {
			b.Fatal(err)
		}
		k[n] = s
	}
	repoDir := filepath.Join(dir, "repo")
	repo, err := tuf.Init(repoDir, tuf.InitOptions{Root: []hsm.Signer{k["root"]}, RootThreshold: 1, Targets: []hsm.Signer{k["targets"]}, TargetsThreshold: 1, Online: k["online"], Now: now})
	if err != nil {
		b.Fatal(err)
	}
	next, _ := repo.NextTargets("targets", now.Add(24*time.Hour))
	ka, _ := tuf.KeyFromSigner(k["alice"])
	kb, _ := tuf.KeyFromSigner(k["bob"])
	tuf.SetDelegation(next, tuf.DelegationSpec{Name: "tuf-js", Keys: []*metadata.Key{ka, kb}, Threshold: 2, Paths: []string{"tuf-js/-/*"}})
	td, _ := repo.Delegation("targets")
	tuf.SignAll(next, td, []hsm.Signer{k["targets"]})
	if err := repo.CommitTargets("targets", next, k["online"], now); err != nil {
		b.Fatal(err)
	}
	files, _ := ReadTree(repoDir)
	tgz, err := os.ReadFile("testdata/tuf-js-1.0.0.tgz")
	if err != nil {
		b.Fatal(err)
	}
	target := TargetPath("tuf-js", "1.0.0")
	bundle, err := TUFReleaser{}.Bundle(files, "tuf-js", target, tgz, nil, now)
	if err != nil {
		b.Fatal(err)
	}
	req, _ := tuf.ParseRequest(bundle["request.json"])
	br := &benchRelease{repo: files, request: bundle["request.json"], tarball: tgz, online: k["online"], now: now, target: target}
	for _, n := range []string{"alice", "bob"} {
		r, err := online.Sign(req, []hsm.Signer{k[n]}, now)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := r.Marshal()
		br.subs = append(br.subs, raw)
		br.keys = append(br.keys, k[n].Public().(*ecdsa.PublicKey))
	}
	br.delegated, _ = repo.Delegation("tuf-js")
	return br
}

// BenchmarkSubmissionVerify is the gate's verification of a submission:
// parse the request and both responses, combine them against the role's
// delegation (threshold by distinct keys), and check the tarball's length
// and hashes against the signed target.
func BenchmarkSubmissionVerify(b *testing.B) {
	br := newBenchRelease(b)
	b.ResetTimer()
	for b.Loop() {
		req, err := tuf.ParseRequest(br.request)
		if err != nil {
			b.Fatal(err)
		}
		p, err := req.Payload()
		if err != nil {
			b.Fatal(err)
		}
		var resps []*tuf.Response
		for _, s := range br.subs {
			r, err := tuf.ParseResponse(s)
			if err != nil {
				b.Fatal(err)
			}
			resps = append(resps, r)
		}
		if _, err := tuf.Combine(p, "tuf-js", br.delegated, nil, resps); err != nil {
			b.Fatal(err)
		}
		if err := p.Targets.Signed.Targets[br.target].VerifyLengthHashes(br.tarball); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignatureChecksOnly is the floor: the two ECDSA P-256
// verifications over the payload and the tarball's SHA-256, nothing else.
func BenchmarkSignatureChecksOnly(b *testing.B) {
	br := newBenchRelease(b)
	req, _ := tuf.ParseRequest(br.request)
	p, _ := req.Payload()
	var sigs [][]byte
	for _, s := range br.subs {
		r, _ := tuf.ParseResponse(s)
		sig, _ := hex.DecodeString(r.Signatures[0].Sig)
		sigs = append(sigs, sig)
	}
	b.ResetTimer()
	for b.Loop() {
		sum := sha256.Sum256(p.Canonical)
		for i, k := range br.keys {
			if !ecdsa.VerifyASN1(k, sum[:], sigs[i]) {
				b.Fatal("signature does not verify")
			}
		}
		sha256.Sum256(br.tarball)
	}
}

// BenchmarkRelease is the whole approval: verification, the new role,
// snapshot and timestamp signed with the online key, and the full client
// check of the resulting repository.
func BenchmarkRelease(b *testing.B) {
	br := newBenchRelease(b)
	rel := TUFReleaser{Dev: true}
	b.ResetTimer()
	for b.Loop() {
		if _, err := rel.Release(br.repo, br.request, br.subs, br.target, br.tarball, br.online, br.now); err != nil {
			b.Fatal(err)
		}
	}
}
