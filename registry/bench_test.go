package registry

import (
	"context"
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

// BenchmarkSubmissionVerify is the gate's verification of a submission,
// the code the submit handler runs (TUFReleaser.Verify): parse both
// responses, find the role's delegation in the repository, combine the
// responses against it (each signature verified once, threshold by
// distinct keys, groups), check the tarball's exact length and hashes
// against the signed target and encode the signed role. The stored
// request and the repository's root chain and delegators were parsed
// and verified before (when the gate made the bundle, at earlier
// submissions), as in a running gate; BenchmarkSubmissionVerifyCold
// does without.
func BenchmarkSubmissionVerify(b *testing.B) {
	br := newBenchRelease(b)
	rel := TUFReleaser{Dev: true}
	if _, err := rel.Verify(br.repo, br.request, br.subs, br.target, br.tarball); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := rel.Verify(br.repo, br.request, br.subs, br.target, br.tarball); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmissionVerifyCold is BenchmarkSubmissionVerify with every
// cache emptied first: the request parsed and canonicalised, the root
// chain and the delegating targets role verified again (a gate that just
// restarted, or a replica that did not make the bundle).
func BenchmarkSubmissionVerifyCold(b *testing.B) {
	br := newBenchRelease(b)
	rel := TUFReleaser{Dev: true}
	b.ResetTimer()
	for b.Loop() {
		clearCaches()
		if _, err := rel.Verify(br.repo, br.request, br.subs, br.target, br.tarball); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmissionVerifyRestarted is BenchmarkSubmissionVerifyCold for
// a gate whose store keeps the delegations verified before (a restarted
// gate, or another replica): the caches are emptied each time, the
// delegation is read back from a SQLite store instead of verifying the
// root chain and targets again.
func BenchmarkSubmissionVerifyRestarted(b *testing.B) {
	br := newBenchRelease(b)
	store, err := Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "gate.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	rel := TUFReleaser{Dev: true, Record: store}
	if _, err := rel.Verify(br.repo, br.request, br.subs, br.target, br.tarball); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		clearCaches()
		if _, err := rel.Verify(br.repo, br.request, br.subs, br.target, br.tarball); err != nil {
			b.Fatal(err)
		}
	}
}

func clearCaches() {
	requestCache.Lock()
	clear(requestCache.m)
	requestCache.Unlock()
	targetsParsed.Lock()
	clear(targetsParsed.m)
	targetsParsed.Unlock()
	uniqueKeysChecked.Lock()
	clear(uniqueKeysChecked.m)
	uniqueKeysChecked.Unlock()
	verified.Lock()
	clear(verified.roots)
	clear(verified.targets)
	clear(verified.delegations)
	clear(verified.kept)
	verified.Unlock()
}

// BenchmarkSignatureChecksOnly is the floor: exactly the signature
// verifications the submission needs and nothing else. The signatures
// are those of the submitted responses, each checked with the key its key
// ID names in the role's delegation (here two ECDSA P-256 keys for a
// 2-of-2 role), over the request's canonical bytes.
func BenchmarkSignatureChecksOnly(b *testing.B) {
	br := newBenchRelease(b)
	req, _ := tuf.ParseRequest(br.request)
	p, _ := req.Payload()
	var sigs [][]byte
	var keys []*ecdsa.PublicKey
	for _, s := range br.subs {
		r, err := tuf.ParseResponse(s)
		if err != nil {
			b.Fatal(err)
		}
		for _, rs := range r.Signatures {
			sig, err := hex.DecodeString(rs.Sig)
			if err != nil {
				b.Fatal(err)
			}
			k := br.delegated.Keys[rs.KeyID]
			if k == nil || k.Type != "ecdsa" || k.Scheme != "ecdsa-sha2-nistp256" {
				b.Fatalf("response key %s is not an ECDSA P-256 key of the role", rs.KeyID)
			}
			pub, err := k.ToPublicKey()
			if err != nil {
				b.Fatal(err)
			}
			sigs, keys = append(sigs, sig), append(keys, pub.(*ecdsa.PublicKey))
		}
	}
	if len(sigs) != br.delegated.Threshold || len(sigs) != len(br.keys) {
		b.Fatalf("%d signatures for a threshold of %d", len(sigs), br.delegated.Threshold)
	}
	b.ResetTimer()
	for b.Loop() {
		for i, k := range keys {
			sum := sha256.Sum256(p.Canonical)
			if !ecdsa.VerifyASN1(k, sum[:], sigs[i]) {
				b.Fatal("signature does not verify")
			}
		}
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
