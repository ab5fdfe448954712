package registry

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// bundleByCheckout is how a bundle is made with the repository code: the
// repository written out to a folder, online.CreateBundle on it, the
// bundle folder written and read back.
func bundleByCheckout(t *testing.T, repo map[string][]byte, role, target string, tarball, provenance []byte, now time.Time) (map[string][]byte, error) {
	dir, r, err := checkout(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ci := filepath.Join(dir, "ci")
	os.Mkdir(ci, 0o755)
	tgz := filepath.Join(ci, path.Base(target))
	os.WriteFile(tgz, tarball, 0o644)
	o := online.BundleOptions{Role: role, Now: now, Add: []online.FileArg{{File: tgz, Target: target}},
		Note: "staged at the registry gate: " + target}
	if provenance != nil {
		pf := filepath.Join(ci, path.Base(target)+".sigstore.json")
		os.WriteFile(pf, provenance, 0o644)
		o.Provenance = []online.FileArg{{File: pf, Target: target}}
	}
	b, err := online.CreateBundle(r, o)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "bundle")
	if err := b.WriteDir(out); err != nil {
		t.Fatal(err)
	}
	return ReadTree(out)
}

// nestedRepo is a repository where targets delegates tuf-js (alice and
// bob, 2 of 2) and team (alice), and team delegates team-a (bob): a role
// one delegation down and one two down.
func nestedRepo(t *testing.T) (files map[string][]byte, keys map[string]hsm.Signer, now time.Time) {
	dir := t.TempDir()
	now = time.Now()
	keys = map[string]hsm.Signer{}
	for _, n := range []string{"root", "targets", "online", "alice", "bob"} {
		s, err := hsm.GenerateFileKey(filepath.Join(dir, n+".pem"), hsm.ECDSAP256, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[n] = s
	}
	repo, err := tuf.Init(filepath.Join(dir, "repo"), tuf.InitOptions{Root: []hsm.Signer{keys["root"]}, RootThreshold: 1, Targets: []hsm.Signer{keys["targets"]}, TargetsThreshold: 1, Online: keys["online"], Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ka, _ := tuf.KeyFromSigner(keys["alice"])
	kb, _ := tuf.KeyFromSigner(keys["bob"])
	next, _ := repo.NextTargets("targets", now.Add(24*time.Hour))
	for _, spec := range []tuf.DelegationSpec{
		{Name: "tuf-js", Keys: []*metadata.Key{ka, kb}, Threshold: 2, Paths: []string{"tuf-js/-/*"}},
		{Name: "team", Keys: []*metadata.Key{ka}, Threshold: 1, Paths: []string{"team-a/-/*", "team-b/-/*"}},
	} {
		if err := tuf.SetDelegation(next, spec); err != nil {
			t.Fatal(err)
		}
	}
	td, _ := repo.Delegation("targets")
	tuf.SignAll(next, td, []hsm.Signer{keys["targets"]})
	if err := repo.CommitTargets("targets", next, keys["online"], now); err != nil {
		t.Fatal(err)
	}
	team, _ := repo.NextTargets("team", now.Add(24*time.Hour))
	if err := tuf.SetDelegation(team, tuf.DelegationSpec{Name: "team-a", Keys: []*metadata.Key{kb}, Threshold: 1, Paths: []string{"team-a/-/*"}}); err != nil {
		t.Fatal(err)
	}
	dd, _ := repo.Delegation("team")
	tuf.SignAll(team, dd, []hsm.Signer{keys["alice"]})
	if err := repo.CommitTargets("team", team, keys["online"], now); err != nil {
		t.Fatal(err)
	}
	files, err = ReadTree(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return files, keys, now
}

// TestBundleMatchesCheckout checks that the gate's bundle, built from the
// store's files without a checkout, is byte for byte the bundle the
// repository code builds on a checkout, for a role's first version and a
// later one, one and two delegations down, with and without provenance,
// and that both refuse the same bundles.
func TestBundleMatchesCheckout(t *testing.T) {
	files, signers, now := nestedRepo(t)
	tgz, err := os.ReadFile("testdata/tuf-js-1.0.0.tgz")
	if err != nil {
		t.Fatal(err)
	}
	prov, err := os.ReadFile("testdata/tuf-js@1.0.0.provenance.sigstore.json")
	if err != nil {
		t.Fatal(err)
	}
	rel := TUFReleaser{Dev: true}
	same := func(role, target string, prov []byte, at time.Time) {
		t.Helper()
		clearCaches()
		for pass := range 2 { // cold caches, then warm
			got, err := rel.Bundle(files, role, target, tgz, prov, at)
			if err != nil {
				t.Fatalf("%s %s (pass %d): %v", role, target, pass, err)
			}
			want, err := bundleByCheckout(t, files, role, target, tgz, prov, at)
			if err != nil {
				t.Fatalf("%s %s by checkout: %v", role, target, err)
			}
			if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
				t.Fatalf("%s %s: files %v, want %v", role, target, keys(got), keys(want))
			}
			for p := range want {
				if !bytes.Equal(got[p], want[p]) {
					t.Fatalf("%s %s: %s differs:\n%s\nwant:\n%s", role, target, p, got[p], want[p])
				}
			}
		}
	}
	same("tuf-js", TargetPath("tuf-js", "1.0.0"), nil, now)
	same("tuf-js", TargetPath("tuf-js", "1.0.0"), prov, now.Add(time.Hour))
	same("team-a", TargetPath("team-a", "1.0.0"), prov, now)
	same("team", TargetPath("team-b", "1.0.0"), nil, now)

	// A later version: tuf-js 1.0.0 released, then a bundle for 1.0.1
	// carries the current version and asks for version 2.
	b, err := rel.Bundle(files, "tuf-js", TargetPath("tuf-js", "1.0.0"), tgz, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := tuf.ParseRequest(b["request.json"])
	var subs [][]byte
	for _, who := range []string{"alice", "bob"} {
		r, err := online.Sign(req, []hsm.Signer{signers[who]}, now)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := r.Marshal()
		subs = append(subs, raw)
	}
	changed, err := rel.Release(files, b["request.json"], subs, TargetPath("tuf-js", "1.0.0"), tgz, signers["online"], now)
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range changed {
		if strings.HasPrefix(p, "metadata/") {
			files[p] = data
		}
	}
	same("tuf-js", TargetPath("tuf-js", "1.0.1"), nil, now.Add(2*time.Hour))
	got, _ := rel.Bundle(files, "tuf-js", TargetPath("tuf-js", "1.0.1"), tgz, nil, now)
	if r, err := tuf.ParseRequest(got["request.json"]); err != nil || len(r.Current) == 0 {
		t.Fatalf("the second bundle has no current metadata: %v", err)
	} else if p, _ := r.Payload(); p.Version != 2 {
		t.Fatalf("the second bundle asks for version %d, want 2", p.Version)
	}

	// Refusals: a target outside the role's paths, a role nobody
	// delegates, root.
	for _, c := range []struct {
		role, target string
		is           error
		says         string
	}{
		{"tuf-js", TargetPath("other", "1.0.0"), tuf.ErrOutsidePaths, ""},
		{"team-a", TargetPath("team-b", "1.0.0"), tuf.ErrOutsidePaths, ""},
		{"nobody", TargetPath("nobody", "1.0.0"), nil, "no role delegates"},
		{"root", TargetPath("tuf-js", "1.0.0"), nil, "airlock root"},
	} {
		clearCaches()
		_, err := rel.Bundle(files, c.role, c.target, tgz, nil, now)
		_, werr := bundleByCheckout(t, files, c.role, c.target, tgz, nil, now)
		if err == nil || werr == nil {
			t.Fatalf("%s %s: refused %v, by checkout %v; want both refused", c.role, c.target, err, werr)
		}
		if c.is != nil && (!errors.Is(err, c.is) || !errors.Is(werr, c.is)) {
			t.Fatalf("%s %s: %v / %v, want %v", c.role, c.target, err, werr, c.is)
		}
		if c.says != "" && !strings.Contains(err.Error(), c.says) {
			t.Fatalf("%s %s: %v, want it to say %q", c.role, c.target, err, c.says)
		}
	}
}

// TestStoredRequestParse checks that verification's reading of a stored
// request gives the payload tuf.ParseRequest gives, and refuses what is
// not a request.
func TestStoredRequestParse(t *testing.T) {
	files, _, now := nestedRepo(t)
	tgz, _ := os.ReadFile("testdata/tuf-js-1.0.0.tgz")
	b, err := TUFReleaser{}.Bundle(files, "team-a", TargetPath("team-a", "1.0.0"), tgz, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	full, err := tuf.ParseRequest(b["request.json"])
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := full.Payload()
	pr, err := parseStoredRequest(b["request.json"])
	if err != nil {
		t.Fatal(err)
	}
	if pr.req.Role != full.Role || !bytes.Equal(pr.p.Canonical, fp.Canonical) || pr.p.Version != fp.Version || pr.p.SHA256 != fp.SHA256 {
		t.Fatalf("stored request read as %s v%d %s, want %s v%d %s", pr.req.Role, pr.p.Version, pr.p.SHA256, full.Role, fp.Version, fp.SHA256)
	}
	for _, c := range []struct{ in, says string }{
		{`[]`, "not a JSON object"},
		{`{"airlock_request":2,"role":"a","metadata":{}}`, "want format 1"},
		{`{"airlock_request":1,"role":"a"}`, "want format 1"},
		{`{"role":"a","role":"b"}`, "duplicate field"},
		{`{"airlock_request":1,"role":"a","metadata":{"signed":{"_type":"snapshot"}}}`, "not \"snapshot\""},
		{`{"airlock_request":1,"role":"root","metadata":` + string(full.Metadata) + `}`, "metadata: role"},
	} {
		_, err := parseStoredRequest([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error saying %q", c.in, err, c.says)
		}
	}
}

// FuzzStoredRequest feeds parseStoredRequest arbitrary bytes: it answers
// without panicking, and what it accepts names a role and a payload.
func FuzzStoredRequest(f *testing.F) {
	f.Add([]byte(`{"airlock_request":1,"kind":"release","role":"a","metadata":{"signed":{"_type":"targets"}}}`))
	f.Add([]byte(`{"role":"a","role":"b"}`))
	f.Add([]byte(`{"airlock_request":1,"chain":{"root":[{}]},"role":"x","metadata":{"signatures":[],"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pr, err := parseStoredRequest(b)
		if err == nil && (pr.req.Role == "" || pr.p == nil || len(pr.p.Canonical) == 0) {
			t.Fatalf("accepted %q without a role or payload", b)
		}
	})
}

// TestWriteBatchNested writes, in one batch, a new version of a
// delegating role (team) and of the role it delegates (team-a): the
// second is checked against the delegator the batch just wrote, and the
// repository passes the client check with both targets.
func TestWriteBatchNested(t *testing.T) {
	files, signers, now := nestedRepo(t)
	rel := TUFReleaser{Dev: true}
	var items []Queued
	for _, c := range []struct{ role, pkg, who string }{{"team", "team-b", "alice"}, {"team-a", "team-a", "bob"}} {
		tgz := []byte("tarball of " + c.pkg)
		target := TargetPath(c.pkg, "1.0.0")
		b, err := rel.Bundle(files, c.role, target, tgz, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := tuf.ParseRequest(b["request.json"])
		r, err := online.Sign(req, []hsm.Signer{signers[c.who]}, now)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := r.Marshal()
		a, err := rel.Verify(files, b["request.json"], [][]byte{raw}, target, tgz)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, Queued{Role: a.Role, Target: target, Tarball: tgz, Signed: a.Signed})
	}
	out, refused, err := rel.Write(files, items, signers["online"], now)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range refused {
		if r != nil {
			t.Fatalf("item %d refused: %v", i, r)
		}
	}
	for _, p := range []string{"metadata/2.team.json", "metadata/1.team-a.json"} {
		if out[p] == nil {
			t.Fatalf("the batch did not write %s (wrote %v)", p, slices.Sorted(maps.Keys(out)))
		}
	}
}

// TestTrustRecord checks the delegations kept in the store: a
// verification keeps the delegation of a role targets delegates (and not
// of one further down), a gate with empty caches reloads it and verifies
// the same submissions with it, and a kept delegation that fails the
// delegation checks is ignored for the chain itself.
func TestTrustRecord(t *testing.T) {
	ctx := context.Background()
	files, signers, now := nestedRepo(t)
	store, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rel := TUFReleaser{Dev: true, Record: store}
	tgz := []byte("tarball")
	sign := func(role, pkg string, who ...string) ([]byte, [][]byte) {
		b, err := rel.Bundle(files, role, TargetPath(pkg, "1.0.0"), tgz, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := tuf.ParseRequest(b["request.json"])
		var subs [][]byte
		for _, w := range who {
			r, err := online.Sign(req, []hsm.Signer{signers[w]}, now)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := r.Marshal()
			subs = append(subs, raw)
		}
		return b["request.json"], subs
	}
	clearCaches()
	req, subs := sign("tuf-js", "tuf-js", "alice", "bob")
	key, _ := metaView(files).trustKey("tuf-js")
	hkey := hex.EncodeToString(key[:])
	kept, err := store.LoadTrusted(ctx, hkey)
	if err != nil {
		t.Fatalf("the delegation of tuf-js was not kept: %v", err)
	}
	if d, err := decodeTrusted(kept, "tuf-js"); err != nil || d.Threshold != 2 || len(d.KeyIDs) != 2 {
		t.Fatalf("kept delegation of tuf-js: %+v, %v", d, err)
	}
	reqA, subsA := sign("team-a", "team-a", "bob")
	keyA, _ := metaView(files).trustKey("team-a")
	if _, err := store.LoadTrusted(ctx, hex.EncodeToString(keyA[:])); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the delegation of team-a, two delegations down, was kept: %v", err)
	}

	// A restarted gate: nothing in memory, the kept delegation in the store.
	clearCaches()
	if _, err := rel.Verify(files, req, subs, TargetPath("tuf-js", "1.0.0"), tgz); err != nil {
		t.Fatalf("with the kept delegation: %v", err)
	}
	if _, err := rel.Verify(files, req, subs[:1], TargetPath("tuf-js", "1.0.0"), tgz); err == nil || !strings.Contains(err.Error(), "threshold") {
		t.Fatalf("one of two signatures with the kept delegation: %v, want a threshold refusal", err)
	}
	clearCaches()
	if _, err := rel.Verify(files, reqA, subsA, TargetPath("team-a", "1.0.0"), tgz); err != nil {
		t.Fatalf("team-a after a restart: %v", err)
	}

	// A kept delegation that fails the checks (a key id that is not its
	// key's hash) is not used: the chain is verified instead.
	var td trustedDelegation
	json.Unmarshal(kept, &td)
	td.Threshold = 1
	td.KeyIDs[0] = strings.Repeat("0", 64)
	bad, _ := json.Marshal(td)
	if _, err := decodeTrusted(bad, "tuf-js"); err == nil {
		t.Fatal("a kept delegation with a forged key id was accepted")
	}
	forged, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "forged.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer forged.Close()
	forged.SaveTrusted(ctx, hkey, bad)
	clearCaches()
	withForged := TUFReleaser{Dev: true, Record: forged}
	if _, err := withForged.Verify(files, req, subs[:1], TargetPath("tuf-js", "1.0.0"), tgz); err == nil || !strings.Contains(err.Error(), "threshold") {
		t.Fatalf("one of two signatures beside a forged kept delegation of threshold 1: %v, want a threshold refusal", err)
	}
	if _, err := withForged.Verify(files, req, subs, TargetPath("tuf-js", "1.0.0"), tgz); err != nil {
		t.Fatal(err)
	}

	// The writer runs under the store's writer lock: it reads kept
	// delegations but keeps none itself (on SQLite its own write would
	// wait for the transaction it runs in).
	a, err := TUFReleaser{Dev: true}.Verify(files, req, subs, TargetPath("tuf-js", "1.0.0"), tgz)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "empty.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	clearCaches()
	_, refused, err := TUFReleaser{Dev: true, Record: empty}.Write(files, []Queued{{Role: a.Role, Target: TargetPath("tuf-js", "1.0.0"), Tarball: tgz, Signed: a.Signed}}, signers["online"], now)
	if err != nil || refused[0] != nil {
		t.Fatalf("write: %v %v", err, refused)
	}
	if _, err := empty.LoadTrusted(ctx, hkey); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the writer kept a delegation: %v", err)
	}
}

// FuzzTrustedDelegation feeds decodeTrusted arbitrary bytes: it never
// panics, and what it accepts is a delegation of the role asked for.
func FuzzTrustedDelegation(f *testing.F) {
	f.Add([]byte(`{"role":"r","delegator":"targets","keys":{},"keyids":[],"threshold":1}`))
	f.Add([]byte(`{"role":"r","keys":{"a":null},"keyids":["a"],"threshold":1,"groups":[{"name":"g","keyids":["a"],"min":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeTrusted(b, "r")
		if err == nil && (d.Role != "r" || d.Threshold < 1) {
			t.Fatalf("accepted %q as %+v", b, d)
		}
	})
}
