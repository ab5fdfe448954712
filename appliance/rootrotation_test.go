package appliance

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// A root rotation to all-new keys, end to end: online.CreateRootBundle
// (airlock root) builds it, the appliance has it signed by the old and the
// new threshold, online.Combine writes it and a client starting from root
// version 1 follows it.
func TestRootRotationToAllNewKeysCombined(t *testing.T) {
	s := newScenarioWith(t, oldRootKeys, 3, []string{"targets-ken"}, 1)
	o := online.RootOptions{Threshold: 2, Expires: 200 * 24 * time.Hour, Now: now}
	for _, n := range oldRootKeys {
		o.Remove = append(o.Remove, s.keyID(n))
	}
	for _, n := range newRootKeys[:3] {
		o.Add = append(o.Add, s.metaKey(n))
	}
	b, err := online.CreateRootBundle(s.repo, o)
	if err != nil {
		t.Fatal(err)
	}
	if b.Request.Kind != tuf.KindRootRotate {
		t.Fatalf("kind %q", b.Request.Kind)
	}
	dir := filepath.Join(s.dir, "rotate")
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	r := s.sign(dir, []string{"root-1", "root-3", "root-5", "root-a", "root-c"})
	resp := r.done(t)
	if r.state.Kind != tuf.KindRootRotate || r.state.Need.OldThreshold != 3 || r.state.Need.Threshold != 2 {
		t.Fatalf("kind %s need %+v", r.state.Kind, r.state.Need)
	}
	res, err := online.Combine(s.repo, dir, []*tuf.Response{resp}, s.key("online"), now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Role != metadata.ROOT || res.Version != 2 {
		t.Fatalf("combine %+v", res)
	}
	root1, err := s.repo.RootVersions()
	if err != nil {
		t.Fatal(err)
	}
	rep, _, err := (&tuf.Client{Fetch: tuf.DirFetcher(s.repo.Dir), RefTime: now}).Verify(t.Context(), root1[0], "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.RootVersion != 2 {
		t.Fatalf("client trusts root version %d, want 2", rep.RootVersion)
	}
}
