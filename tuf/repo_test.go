package tuf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
)

// testRepo is a repository with root 2-of-3, targets 1-of-1 and a role
// "proj" delegated 2-of-3 to alice, bob and carol, released once.
type testRepo struct {
	*Repository
	keys map[string]hsm.Signer
	root []byte
}

func newTestRepo(t testing.TB) *testRepo {
	t.Helper()
	k := holders(t, "r1", "r2", "r3", "t1", "online", "alice", "bob", "carol")
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Init(dir, InitOptions{
		Root: []hsm.Signer{k["r1"], k["r2"], k["r3"]}, RootThreshold: 2,
		Targets: []hsm.Signer{k["t1"]}, TargetsThreshold: 1, Online: k["online"], Now: refTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRepo{Repository: r, keys: k}
	next, err := r.NextTargets("targets", refTime.Add(60*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	spec := DelegationSpec{Name: "proj", Threshold: 2, Paths: []string{"proj/*"}}
	for _, n := range []string{"alice", "bob", "carol"} {
		key, _ := tufKey(t, k[n])
		spec.Keys = append(spec.Keys, key)
	}
	if err := SetDelegation(next, spec); err != nil {
		t.Fatal(err)
	}
	tr.commit(t, "targets", next, "t1")
	tr.releaseFile(t, "proj/a.tgz", "first release", "alice", "bob")
	tr.root, err = os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func (tr *testRepo) commit(t testing.TB, role string, m *metadata.Metadata[metadata.TargetsType], signers ...string) error {
	t.Helper()
	d, err := tr.Delegation(role)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signers {
		signWith(t, m, d, tr.keys[s])
	}
	return tr.CommitTargets(role, m, tr.keys["online"], refTime)
}

func (tr *testRepo) releaseFile(t testing.TB, target, content string, signers ...string) error {
	t.Helper()
	next, err := tr.NextTargets("proj", refTime.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tf, _ := HashReader(strings.NewReader(content))
	if err := SetTarget(next, target, tf, nil); err != nil {
		t.Fatal(err)
	}
	if err := tr.AddTargetFile(target, []byte(content)); err != nil {
		t.Fatal(err)
	}
	return tr.commit(t, "proj", next, signers...)
}

func (tr *testRepo) client() *Client {
	return &Client{Fetch: DirFetcher(tr.Dir), RefTime: refTime}
}

func TestClientAcceptsRelease(t *testing.T) {
	tr := newTestRepo(t)
	rep, data, err := tr.client().Verify(context.Background(), tr.root, "proj/a.tgz")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "first release" || rep.TargetRole != "proj" {
		t.Fatalf("got %q from %s", data, rep.TargetRole)
	}
}

func TestCommitRefusesUnderSignedRelease(t *testing.T) {
	tr := newTestRepo(t)
	err := tr.releaseFile(t, "proj/b.tgz", "second", "alice")
	var te *ThresholdError
	if !errors.As(err, &te) {
		t.Fatalf("one signature committed: %v", err)
	}
}

func TestClientRefusesTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, tr *testRepo)
		wantErr string
	}{
		{"target bytes altered", func(t *testing.T, tr *testRepo) {
			files, _ := filepath.Glob(filepath.Join(tr.Dir, "targets", "proj", "*.a.tgz"))
			for _, f := range files {
				os.WriteFile(f, []byte("first releasE"), 0o644)
			}
		}, "do not match"},
		{"role under-signed after the fact", func(t *testing.T, tr *testRepo) {
			p := filepath.Join(tr.Dir, "metadata", "1.proj.json")
			m, err := ParseStrict[metadata.TargetsType](mustRead(t, p))
			if err != nil {
				t.Fatal(err)
			}
			m.Signatures = m.Signatures[:1]
			b, _ := m.ToBytes(true)
			os.WriteFile(p, b, 0o644)
		}, "threshold is 2"},
		{"mixed versions", func(t *testing.T, tr *testRepo) {
			if err := tr.releaseFile(t, "proj/b.tgz", "second", "alice", "carol"); err != nil {
				t.Fatal(err)
			}
			b := mustRead(t, filepath.Join(tr.Dir, "metadata", "1.proj.json"))
			os.WriteFile(filepath.Join(tr.Dir, "metadata", "2.proj.json"), b, 0o644)
		}, "mixed versions"},
		{"expired timestamp", func(t *testing.T, tr *testRepo) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRepo(t)
			tt.tamper(t, tr)
			c := tr.client()
			if tt.name == "expired timestamp" {
				c.RefTime = refTime.Add(2 * 24 * time.Hour)
				tt.wantErr = "expired"
			}
			_, _, err := c.Verify(context.Background(), tr.root, "proj/a.tgz")
			checkErr(t, err, tt.wantErr)
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRootRotation(t *testing.T) {
	var tr *testRepo
	n := holders(t, "n1", "n2", "n3")
	newRoot := func(t *testing.T) *metadata.Metadata[metadata.RootType] {
		m, err := tr.NextRoot(refTime.Add(365 * 24 * time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// Replace the root keys r1..r3 with n1..n3, threshold 2.
		for _, id := range append([]string(nil), m.Signed.Roles[metadata.ROOT].KeyIDs...) {
			if err := m.Signed.RevokeKey(id, metadata.ROOT); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range []string{"n1", "n2", "n3"} {
			k, _ := tufKey(t, n[s])
			if err := m.Signed.AddKey(k, metadata.ROOT); err != nil {
				t.Fatal(err)
			}
		}
		m.Signed.Roles[metadata.ROOT].Threshold = 2
		return m
	}
	sign := func(t *testing.T, m *metadata.Metadata[metadata.RootType], prev *metadata.Metadata[metadata.RootType], old, new []hsm.Signer) {
		payload, _ := Canonical(m)
		od, _ := DelegationFromRoot(prev, metadata.ROOT)
		nd, _ := DelegationFromRoot(m, metadata.ROOT)
		for _, s := range old {
			sig, err := SignPayload(od, s, payload)
			if err != nil {
				t.Fatal(err)
			}
			m.Signatures = append(m.Signatures, sig)
		}
		for _, s := range new {
			sig, err := SignPayload(nd, s, payload)
			if err != nil {
				t.Fatal(err)
			}
			m.Signatures = append(m.Signatures, sig)
		}
	}
	tests := []struct {
		name     string
		old, new []string
		wantErr  string
	}{
		{"old and new thresholds", []string{"r1", "r2"}, []string{"n1", "n2"}, ""},
		{"only the old keys", []string{"r1", "r2", "r3"}, nil, "under its own keys"},
		{"only the new keys", nil, []string{"n1", "n2", "n3"}, "under the keys of version 1"},
		{"one old key short", []string{"r1"}, []string{"n1", "n2"}, "under the keys of version 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr = newTestRepo(t)
			prev, _ := tr.Root()
			m := newRoot(t)
			var old, new []hsm.Signer
			for _, s := range tt.old {
				old = append(old, tr.keys[s])
			}
			for _, s := range tt.new {
				new = append(new, n[s])
			}
			sign(t, m, prev, old, new)
			err := tr.CommitRoot(m, tr.keys["online"], refTime)
			checkErr(t, err, tt.wantErr)
			if err == nil {
				if _, _, err := tr.client().Verify(context.Background(), tr.root, "proj/a.tgz"); err != nil {
					t.Fatalf("client after rotation: %v", err)
				}
			}
		})
	}
	t.Run("skipped version", func(t *testing.T) {
		tr = newTestRepo(t)
		k := tr.keys
		prev, _ := tr.Root()
		m := newRoot(t)
		m.Signed.Version += 1
		sign(t, m, prev, []hsm.Signer{k["r1"], k["r2"]}, []hsm.Signer{n["n1"], n["n2"]})
		b, _ := m.ToBytes(false)
		if _, err := VerifyRootChain(prev, [][]byte{b}, refTime); err == nil || !strings.Contains(err.Error(), "does not follow") {
			t.Fatalf("skipped version: %v", err)
		}
	})
}

func TestCombine(t *testing.T) {
	tr := newTestRepo(t)
	next, _ := tr.NextTargets("proj", refTime.Add(30*24*time.Hour))
	raw, _ := next.ToBytes(false)
	req, err := tr.BuildRequest(KindRelease, "proj", raw, refTime)
	if err != nil {
		t.Fatal(err)
	}
	p, err := req.Payload()
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := req.Delegation(tr.root, refTime)
	if err != nil {
		t.Fatal(err)
	}
	resp := func(signers ...string) *Response {
		r := &Response{Format: ResponseFormat, Role: "proj", Version: p.Version, SignedSHA256: p.SHA256}
		for _, s := range signers {
			sig, err := SignPayload(d, tr.keys[s], p.Canonical)
			if err != nil {
				t.Fatal(err)
			}
			r.Signatures = append(r.Signatures, Signature{KeyID: sig.KeyID, Sig: hex.EncodeToString(sig.Signature)})
		}
		return r
	}
	t.Run("two holders", func(t *testing.T) {
		c, err := Combine(p, "proj", d, nil, []*Response{resp("alice"), resp("bob")})
		if err != nil || len(c.Signatures) != 2 {
			t.Fatalf("combine: %v (%d signatures)", err, len(c.Signatures))
		}
	})
	t.Run("same holder twice is deduplicated and falls short", func(t *testing.T) {
		c, err := Combine(p, "proj", d, nil, []*Response{resp("alice"), resp("alice")})
		var te *ThresholdError
		if !errors.As(err, &te) || len(c.Signatures) != 1 || len(c.Dropped) != 1 {
			t.Fatalf("combine: %v, %d signatures, dropped %v", err, len(c.Signatures), c.Dropped)
		}
	})
	t.Run("response over other bytes", func(t *testing.T) {
		r := resp("bob")
		r.SignedSHA256 = strings.Repeat("0", 64)
		_, err := Combine(p, "proj", d, nil, []*Response{resp("alice"), r})
		if !errors.Is(err, ErrOtherBytes) {
			t.Fatalf("combine: %v", err)
		}
	})
	t.Run("response for another version", func(t *testing.T) {
		r := resp("bob")
		r.Version++
		if _, err := Combine(p, "proj", d, nil, []*Response{r}); !errors.Is(err, ErrOtherBytes) {
			t.Fatalf("combine: %v", err)
		}
	})
	t.Run("key outside the role", func(t *testing.T) {
		r := resp("bob")
		_, id := tufKey(t, tr.keys["t1"])
		r.Signatures[0].KeyID = id
		if _, err := Combine(p, "proj", d, nil, []*Response{resp("alice"), r}); err == nil || !strings.Contains(err.Error(), "not a key of role") {
			t.Fatalf("combine: %v", err)
		}
	})
	t.Run("signature that does not verify", func(t *testing.T) {
		r := resp("bob")
		r.Signatures[0].Sig = r.Signatures[0].Sig[:len(r.Signatures[0].Sig)-2] + "00"
		if _, err := Combine(p, "proj", d, nil, []*Response{resp("alice"), r}); err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("combine: %v", err)
		}
	})
}

func TestRequestParsing(t *testing.T) {
	tr := newTestRepo(t)
	next, _ := tr.NextTargets("proj", refTime.Add(30*24*time.Hour))
	raw, _ := next.ToBytes(false)
	req, err := tr.BuildRequest(KindRelease, "proj", raw, refTime)
	if err != nil {
		t.Fatal(err)
	}
	req.Targets = []TargetFile{{Path: "proj/a.tgz", Length: 1, Hashes: map[string]string{}, File: "artifacts/a.tgz"}}
	good, _ := req.Marshal()
	if _, err := ParseRequest(good); err != nil {
		t.Fatalf("good request: %v", err)
	}
	s := string(good)
	tests := []struct{ name, in, wantErr string }{
		{"unknown field", strings.Replace(s, `"kind"`, `"surprise": 1, "kind"`, 1), "unknown field"},
		{"future format", strings.Replace(s, `"airlock_request": 1`, `"airlock_request": 2`, 1), "format version 2"},
		{"traversal", strings.Replace(s, `"artifacts/a.tgz"`, `"artifacts/../../etc/passwd"`, 1), ".. segment"},
		{"absolute file", strings.Replace(s, `"artifacts/a.tgz"`, `"/etc/passwd"`, 1), "not under artifacts/"},
		{"backslash", strings.Replace(s, `"proj/a.tgz"`, `"proj\\\\a.tgz"`, -1), "backslash"},
		{"bad role name", strings.Replace(s, `"role": "proj"`, `"role": "../x"`, 1), "role name"},
		{"unknown kind", strings.Replace(s, `"kind": "release"`, `"kind": "yolo"`, 1), "kind"},
		{"duplicate field", strings.Replace(s, `"kind": "release"`, `"kind": "release", "kind": "resign"`, 1), "duplicate key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in == s {
				t.Fatal("mutation did not apply")
			}
			_, err := ParseRequest([]byte(tt.in))
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestRequestChainFromPinnedRoot(t *testing.T) {
	tr := newTestRepo(t)
	next, _ := tr.NextTargets("proj", refTime.Add(30*24*time.Hour))
	raw, _ := next.ToBytes(false)
	req, _ := tr.BuildRequest(KindRelease, "proj", raw, refTime)
	if _, _, err := req.Delegation(tr.root, refTime); err != nil {
		t.Fatalf("chain from pinned root: %v", err)
	}
	// A root made by somebody else must not vouch for the chain.
	other := newTestRepo(t)
	if _, _, err := req.Delegation(other.root, refTime); err == nil {
		t.Fatal("chain accepted under an unrelated pinned root")
	}
	// A delegator altered after signing is refused.
	req.Chain.Delegators[0] = []byte(strings.Replace(string(req.Chain.Delegators[0]), `"proj/*"`, `"*"`, 1))
	if _, _, err := req.Delegation(tr.root, refTime); err == nil {
		t.Fatal("altered delegator accepted")
	}
}

// The repository tools read their own repository through the same
// verification core as the client: a delegation rewritten on disk without
// the targets keys (here adding mallory's key to "proj") is refused by
// combine's view of the repository, for the same reason the client gives.
func TestRepositoryReadsThroughTheClientCore(t *testing.T) {
	tr := newTestRepo(t)
	v, err := tr.RoleVersion("targets")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tr.Dir, "metadata", fmt.Sprintf("%d.targets.json", v))
	m, err := ParseStrict[metadata.TargetsType](mustRead(t, p))
	if err != nil {
		t.Fatal(err)
	}
	mallory, id := tufKey(t, holders(t, "mallory")["mallory"])
	m.Signed.Delegations.Keys[id] = mallory
	m.Signed.Delegations.Roles[0].KeyIDs = append(m.Signed.Delegations.Roles[0].KeyIDs, id)
	b, err := EncodeMetadata(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	const why = "role targets: 0 valid signature(s) from distinct keys, threshold is 1"
	_, err = tr.Delegation("proj")
	checkErr(t, err, why)
	next, err := tr.NextTargets("proj", refTime.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	err = tr.CommitTargets("proj", next, tr.keys["online"], refTime)
	checkErr(t, err, why)
	_, _, err = tr.client().Verify(context.Background(), tr.root, "proj/a.tgz")
	checkErr(t, err, why)
}
