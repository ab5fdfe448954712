package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

func TestReleaseThroughStore(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	dir := t.TempDir()
	key := func(name string) hsm.Signer {
		s, err := hsm.GenerateFileKey(filepath.Join(dir, name+".pem"), hsm.ECDSAP256, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	root, targets, onlineKey, alice, bob := key("root"), key("targets"), key("online"), key("alice"), key("bob")
	repoDir := filepath.Join(dir, "repo")
	repo, err := tuf.Init(repoDir, tuf.InitOptions{Root: []hsm.Signer{root}, RootThreshold: 1, Targets: []hsm.Signer{targets}, TargetsThreshold: 1, Online: onlineKey, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	next, err := repo.NextTargets("targets", now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ka, _ := tuf.KeyFromSigner(alice)
	kb, _ := tuf.KeyFromSigner(bob)
	if err := tuf.SetDelegation(next, tuf.DelegationSpec{Name: "tuf-js", Keys: []*metadata.Key{ka, kb}, Threshold: 2, Paths: []string{"tuf-js/-/*"}}); err != nil {
		t.Fatal(err)
	}
	td, _ := repo.Delegation("targets")
	if err := tuf.SignAll(next, td, []hsm.Signer{targets}); err != nil {
		t.Fatal(err)
	}
	if err := repo.CommitTargets("targets", next, onlineKey, now); err != nil {
		t.Fatal(err)
	}
	files, err := ReadTree(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, "sqlite:"+filepath.Join(dir, "gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ImportRepo(ctx, files); err != nil {
		t.Fatal(err)
	}
	tgz, err := os.ReadFile("testdata/tuf-js-1.0.0.tgz")
	if err != nil {
		t.Fatal(err)
	}
	target := TargetPath("tuf-js", "1.0.0")
	var rel Releaser = TUFReleaser{Dev: true}
	meta, _ := s.RepoMetadata(ctx)
	role, threshold, nkeys, err := rel.RoleFor(meta, target)
	if err != nil || role != "tuf-js" || threshold != 2 || nkeys != 2 {
		t.Fatalf("role for %s: %s %d of %d, %v", target, role, threshold, nkeys, err)
	}
	bundle, err := rel.Bundle(meta, role, target, tgz, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	req, err := tuf.ParseRequest(bundle["request.json"])
	if err != nil {
		t.Fatal(err)
	}
	sign := func(k hsm.Signer) []byte {
		r, err := online.Sign(req, []hsm.Signer{k}, now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Marshal()
		return b
	}
	st := &Stage{ID: "11111111-2222-3333-4444-555555555555", Name: "tuf-js", Version: "1.0.0", Tag: "latest", Target: target, Role: role, Actor: "alice"}
	if err := s.PutStage(ctx, st, &Blobs{Document: []byte("{}"), Tarball: tgz}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRequest(ctx, st.ID, bundle["request.json"]); err != nil {
		t.Fatal(err)
	}
	approve := func(subs ...[]byte) error {
		return s.Approve(ctx, st.ID, func(st *Stage, b *Blobs, repo map[string][]byte) (map[string][]byte, string, error) {
			f, err := rel.Release(repo, b.Request, subs, st.Target, b.Tarball, onlineKey, now)
			return f, "sig", err
		})
	}
	var te *tuf.ThresholdError
	if err := approve(sign(alice)); !errors.As(err, &te) {
		t.Fatalf("one of two signatures: %v, want a threshold error", err)
	}
	if got, _ := s.GetStage(ctx, st.ID); got.State != StateStaged {
		t.Fatalf("partially signed submission left the stage %s", got.State)
	}
	if err := approve(sign(alice), sign(bob)); err != nil {
		t.Fatalf("two of two: %v", err)
	}
	// The repository the store now serves passes the client.
	root1, _ := s.RepoFile(ctx, "metadata/1.root.json")
	c := &tuf.Client{Fetch: storeFetcher{s}, RefTime: now}
	if _, got, err := c.Verify(ctx, root1, target); err != nil || string(got) != string(tgz) {
		t.Fatalf("client over the store: %v (%d bytes)", err, len(got))
	}
	// Replaying the same signatures for the published version is refused.
	st2 := &Stage{ID: "11111111-2222-3333-4444-666666666666", Name: "tuf-js", Version: "1.0.1", Tag: "latest", Target: TargetPath("tuf-js", "1.0.1"), Role: role, Actor: "alice"}
	if err := s.PutStage(ctx, st2, &Blobs{Document: []byte("{}"), Tarball: tgz, Request: nil}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRequest(ctx, st2.ID, bundle["request.json"]); err != nil {
		t.Fatal(err)
	}
	err = s.Approve(ctx, st2.ID, func(st *Stage, b *Blobs, repo map[string][]byte) (map[string][]byte, string, error) {
		f, err := rel.Release(repo, b.Request, [][]byte{sign(alice), sign(bob)}, st.Target, b.Tarball, onlineKey, now)
		return f, "", err
	})
	if err == nil {
		t.Fatal("replayed bundle for another version was accepted")
	}
}

// storeFetcher serves a store's repository files to tuf.Client.
type storeFetcher struct{ s Store }

func (f storeFetcher) Fetch(ctx context.Context, name string, max int64) ([]byte, error) {
	b, err := f.s.RepoFile(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, os.ErrNotExist
	}
	return b, err
}
