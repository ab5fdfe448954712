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
