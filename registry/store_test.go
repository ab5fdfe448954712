package registry

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// RunStoreTests is the conformance suite every Store engine passes.
func RunStoreTests(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	s := open(t)
	repo := map[string][]byte{
		"airlock-repo.json":       []byte(`{"format":1}`),
		"metadata/1.root.json":    []byte("root1"),
		"metadata/1.targets.json": []byte("t1"),
		"metadata/2.targets.json": []byte("t2"),
		"metadata/timestamp.json": []byte("ts"),
		"targets/a/-/a-1.0.0.tgz": []byte("tgz"),
	}
	if ok, err := s.ImportRepo(ctx, repo); err != nil || !ok {
		t.Fatalf("import: %v %v", ok, err)
	}
	if ok, err := s.ImportRepo(ctx, map[string][]byte{"metadata/1.root.json": []byte("other")}); err != nil || ok {
		t.Fatalf("second import: %v %v, want no import", ok, err)
	}
	meta, err := s.RepoMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := meta["metadata/1.targets.json"]; ok || string(meta["metadata/2.targets.json"]) != "t2" || len(meta) != 4 {
		t.Fatalf("repository metadata %v, want newest targets only", keys(meta))
	}
	st := &Stage{ID: "11111111-2222-3333-4444-555555555555", Name: "a", Version: "1.0.0", Tag: "latest", Target: TargetPath("a", "1.0.0"), Role: "a", Actor: "alice"}
	if err := s.PutStage(ctx, st, &Blobs{Document: []byte("{}"), Tarball: []byte("tgz"), Auth: "Bearer x"}); err != nil {
		t.Fatal(err)
	}
	dup := *st
	dup.ID = "11111111-2222-3333-4444-666666666666"
	if err := s.PutStage(ctx, &dup, &Blobs{Document: []byte("{}"), Tarball: []byte("tgz")}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second stage of a@1.0.0: %v, want ErrDuplicate", err)
	}
	refused := errors.New("threshold not met")
	err = s.Approve(ctx, st.ID, func(*Stage, *Blobs, map[string][]byte) (map[string][]byte, string, error) {
		return map[string][]byte{"metadata/3.targets.json": []byte("t3")}, "", refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("approve with a failing check: %v", err)
	}
	if got, _ := s.GetStage(ctx, st.ID); got.State != StateStaged {
		t.Fatalf("after a refused approval the stage is %s", got.State)
	}
	if _, err := s.RepoFile(ctx, "metadata/3.targets.json"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused approval wrote files: %v", err)
	}
	if err := s.Refuse(ctx, st.ID, "threshold not met"); err != nil {
		t.Fatal(err)
	}
	err = s.Approve(ctx, st.ID, func(got *Stage, b *Blobs, m map[string][]byte) (map[string][]byte, string, error) {
		if string(b.Tarball) != "tgz" || got.Reason != "threshold not met" {
			t.Errorf("check saw tarball %q reason %q", b.Tarball, got.Reason)
		}
		return map[string][]byte{"metadata/3.targets.json": []byte("t3"), "metadata/timestamp.json": []byte("ts2")}, "sig", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.RepoFile(ctx, "metadata/timestamp.json"); err != nil || string(b) != "ts2" {
		t.Fatalf("timestamp after approval: %q %v", b, err)
	}
	err = s.Approve(ctx, st.ID, func(*Stage, *Blobs, map[string][]byte) (map[string][]byte, string, error) { return nil, "", nil })
	if !errors.Is(err, ErrNotStaged) {
		t.Fatalf("second approval: %v, want ErrNotStaged", err)
	}
	if err := s.Reject(ctx, st.ID, "no"); err == nil || !strings.Contains(err.Error(), "is approved, not staged") {
		t.Fatalf("reject of an approved stage: %v", err)
	}
	if err := s.MarkPublished(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	list, total, err := s.ListStages(ctx, StatePublished, "a", 0, 10)
	if err != nil || total != 1 || list[0].Signature != "sig" {
		t.Fatalf("published list %+v total %d: %v", list, total, err)
	}
	runQueueTests(t, s)
	runTrustTests(t, s)
}

// runTrustTests checks the kept delegations: an absent key is
// ErrNotFound, a kept one reads back, and a key is kept once.
func runTrustTests(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.LoadTrusted(ctx, "k1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an absent kept delegation: %v, want ErrNotFound", err)
	}
	if err := s.SaveTrusted(ctx, "k1", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveTrusted(ctx, "k1", []byte("second")); err != nil {
		t.Fatalf("keeping a key again: %v", err)
	}
	if b, err := s.LoadTrusted(ctx, "k1"); err != nil || string(b) != "first" {
		t.Fatalf("kept delegation reads back %q, %v; want the first", b, err)
	}
}

// runQueueTests checks the approval queue: a queued stage is approved but
// not written and cannot be published; a writer that fails leaves it
// queued (as a crash would); the writer writes files and states in one
// step; a stage it refuses goes back to staged with the reason.
func runQueueTests(t *testing.T, s Store) {
	ctx := context.Background()
	mk := func(id, version string) *Stage {
		st := &Stage{ID: id, Name: "q", Version: version, Tag: "latest", Target: TargetPath("q", version), Role: "q", Actor: "alice"}
		if err := s.PutStage(ctx, st, &Blobs{Document: []byte("{}"), Tarball: []byte("tgz " + version)}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRequest(ctx, id, []byte("request "+version)); err != nil {
			t.Fatal(err)
		}
		return st
	}
	a, b := mk("22222222-2222-3333-4444-555555555555", "1.0.0"), mk("22222222-2222-3333-4444-666666666666", "1.0.1")
	if err := s.Queue(ctx, a.ID, []byte("other request"), &Approval{Role: "q", Version: 2, Signed: []byte("signed a")}, "sig a"); !errors.Is(err, ErrStale) {
		t.Fatalf("queue against another request: %v, want ErrStale", err)
	}
	for _, st := range []*Stage{a, b} {
		if err := s.Queue(ctx, st.ID, []byte("request "+st.Version), &Approval{Role: "q", Version: 2, Signed: []byte("signed " + st.Version)}, "sig"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Queue(ctx, a.ID, []byte("request 1.0.0"), &Approval{Role: "q", Version: 2, Signed: []byte("x")}, "sig"); !errors.Is(err, ErrNotStaged) {
		t.Fatalf("second queue: %v, want ErrNotStaged", err)
	}
	if got, _ := s.GetStage(ctx, a.ID); got.State != StateApproved || got.Written {
		t.Fatalf("queued stage is %s written=%v", got.State, got.Written)
	}
	if err := s.MarkPublished(ctx, a.ID); err == nil || !strings.Contains(err.Error(), "not yet in the repository") {
		t.Fatalf("publishing a queued stage: %v", err)
	}
	crash := errors.New("writer died")
	if _, err := s.WriteQueued(ctx, 10, func([]*Stage, []Queued, map[string][]byte) (map[string][]byte, []error, error) {
		return map[string][]byte{"metadata/9.q.json": []byte("q9")}, nil, crash
	}); !errors.Is(err, crash) {
		t.Fatalf("failing writer: %v", err)
	}
	if got, _ := s.GetStage(ctx, a.ID); got.State != StateApproved || got.Written {
		t.Fatalf("after a failed write the stage is %s written=%v", got.State, got.Written)
	}
	if _, err := s.RepoFile(ctx, "metadata/9.q.json"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed write left files: %v", err)
	}
	n, err := s.WriteQueued(ctx, 10, func(stages []*Stage, items []Queued, repo map[string][]byte) (map[string][]byte, []error, error) {
		if len(items) != 2 || string(items[0].Signed) != "signed 1.0.0" || string(items[1].Tarball) != "tgz 1.0.1" || items[0].Role != "q" {
			t.Errorf("writer saw %+v", items)
		}
		return map[string][]byte{"metadata/2.q.json": []byte("q2")}, []error{nil, ErrStale}, nil
	})
	if err != nil || n != 1 {
		t.Fatalf("write: %d %v", n, err)
	}
	if got, _ := s.GetStage(ctx, a.ID); got.State != StateApproved || !got.Written {
		t.Fatalf("written stage is %s written=%v", got.State, got.Written)
	}
	if got, _ := s.GetStage(ctx, b.ID); got.State != StateStaged || !strings.Contains(got.Reason, "role changed") {
		t.Fatalf("refused stage is %s %q", got.State, got.Reason)
	}
	if f, err := s.RepoFile(ctx, "metadata/2.q.json"); err != nil || string(f) != "q2" {
		t.Fatalf("written file: %q %v", f, err)
	}
	if n, err := s.WriteQueued(ctx, 10, func([]*Stage, []Queued, map[string][]byte) (map[string][]byte, []error, error) {
		t.Error("writer called with nothing queued")
		return nil, nil, nil
	}); err != nil || n != 0 {
		t.Fatalf("empty write: %d %v", n, err)
	}
	if err := s.MarkPublished(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSQLiteStore(t *testing.T) {
	RunStoreTests(t, func(t *testing.T) Store {
		s, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "gate.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
