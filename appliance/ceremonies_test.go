package appliance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/tuf"
)

// newScenarioWith starts a repository whose root and targets roles are held
// by the named keys.
func newScenarioWith(t *testing.T, rootKeys []string, rootThreshold int, targetsKeys []string, targetsThreshold int) *scenario {
	t.Helper()
	s := &scenario{t: t, dir: t.TempDir(), keys: map[string]hsm.Signer{}, paths: map[string]string{}, dev: true,
		policy: Policy{Format: PolicyFormat, Roles: map[string]RolePolicy{}}}
	var rk, tk []hsm.Signer
	for _, n := range rootKeys {
		rk = append(rk, s.key(n))
	}
	for _, n := range targetsKeys {
		tk = append(tk, s.key(n))
	}
	repo, err := tuf.Init(filepath.Join(s.dir, "repo"), tuf.InitOptions{
		Root: rk, RootThreshold: rootThreshold, Targets: tk, TargetsThreshold: targetsThreshold,
		Online: s.key("online"), Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.repo = repo
	s.policy.Roles[metadata.ROOT] = RolePolicy{}
	s.policy.Roles[metadata.TARGETS] = RolePolicy{}
	return s
}

// metaKey is the TUF key of a named key.
func (s *scenario) metaKey(name string) *metadata.Key {
	s.t.Helper()
	k, err := tuf.KeyFromSigner(s.key(name))
	if err != nil {
		s.t.Fatal(err)
	}
	return k
}

func (s *scenario) keyID(name string) string {
	id, err := tuf.KeyID(s.metaKey(name))
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}

// writeRequest writes a bundle folder holding only request.json.
func (s *scenario) writeRequest(name string, req *tuf.Request) string {
	s.t.Helper()
	b, err := req.Marshal()
	if err != nil {
		s.t.Fatal(err)
	}
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "request.json"), b, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return dir
}

// rootRotation asks to replace the root keys by newKeys with threshold.
func (s *scenario) rootRotation(name string, newKeys []string, threshold int) string {
	s.t.Helper()
	next, err := s.repo.NextRoot(now.Add(180 * 24 * time.Hour))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, id := range slices.Clone(next.Signed.Roles[metadata.ROOT].KeyIDs) {
		if err := next.Signed.RevokeKey(id, metadata.ROOT); err != nil {
			s.t.Fatal(err)
		}
	}
	for _, n := range newKeys {
		if err := next.Signed.AddKey(s.metaKey(n), metadata.ROOT); err != nil {
			s.t.Fatal(err)
		}
	}
	next.Signed.Roles[metadata.ROOT].Threshold = threshold
	raw, err := next.ToBytes(false)
	if err != nil {
		s.t.Fatal(err)
	}
	req, err := s.repo.BuildRequest(tuf.KindRootRotate, metadata.ROOT, raw, now)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.writeRequest(name, req)
}

// targetsChange asks to sign the next version of the targets role, edited.
func (s *scenario) targetsChange(name, kind string, edit func(*metadata.Metadata[metadata.TargetsType])) string {
	s.t.Helper()
	next, err := s.repo.NextTargets(metadata.TARGETS, now.Add(60*24*time.Hour))
	if err != nil {
		s.t.Fatal(err)
	}
	edit(next)
	raw, err := next.ToBytes(false)
	if err != nil {
		s.t.Fatal(err)
	}
	req, err := s.repo.BuildRequest(kind, metadata.TARGETS, raw, now)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.writeRequest(name, req)
}

// delegate sets role's delegation in targets metadata to the named keys.
func (s *scenario) delegate(t *metadata.Metadata[metadata.TargetsType], role string, threshold int, groups []tuf.Group, keyNames ...string) {
	s.t.Helper()
	spec := tuf.DelegationSpec{Name: role, Threshold: threshold, Paths: []string{role + "/*"}, Terminating: true, Groups: groups}
	for _, n := range keyNames {
		spec.Keys = append(spec.Keys, s.metaKey(n))
	}
	if err := tuf.SetDelegation(t, spec); err != nil {
		s.t.Fatal(err)
	}
}

// editMetadata changes the unsigned metadata of a bundle's request.
func editMetadata(t *testing.T, bundle string, edit func(signed map[string]any)) {
	t.Helper()
	p := filepath.Join(bundle, "request.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	req, err := tuf.ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(req.Metadata, &m); err != nil {
		t.Fatal(err)
	}
	edit(m["signed"].(map[string]any))
	if req.Metadata, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if b, err = req.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// reopen closes and reopens the state directory, as after a restart.
func (s *scenario) reopen() *StateDir {
	s.t.Helper()
	path := s.openState().Path()
	s.state.Close()
	st, err := OpenState(path, fixedClock())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { st.Close() })
	s.state = st
	return st
}

var (
	oldRootKeys = []string{"root-1", "root-2", "root-3", "root-4", "root-5"}
	newRootKeys = []string{"root-a", "root-b", "root-c", "root-d", "root-e"}
)

func TestRootRotationThreeOfFiveToNewSet(t *testing.T) {
	s := newScenarioWith(t, oldRootKeys, 3, []string{"targets-ken"}, 1)
	st := s.openState()
	b := s.rootRotation("rotate", newRootKeys, 3)
	r := s.sign(b, []string{"root-1", "root-2", "root-4", "root-a", "root-c", "root-e"})
	resp := r.done(t)
	if len(resp.Signatures) != 6 || resp.Version != 2 || resp.Role != metadata.ROOT {
		t.Fatalf("response %+v", resp)
	}
	n := r.state.Need
	if n.OldThreshold != 3 || n.Threshold != 3 || len(n.Keys) != 10 {
		t.Fatalf("need %+v", n)
	}
	// The review shows the root role's old and new keys side by side.
	var rootChange *RoleChange
	for i := range r.state.Review.Roles {
		if r.state.Review.Roles[i].Name == metadata.ROOT {
			rootChange = &r.state.Review.Roles[i]
		}
	}
	if rootChange == nil || rootChange.Change != "changed" || rootChange.Old == nil || rootChange.New == nil {
		t.Fatalf("review roles %+v", r.state.Review.Roles)
	}
	holders := func(f *RoleFacts) []string {
		var hs []string
		for _, k := range f.Keys {
			hs = append(hs, k.Holder)
		}
		slices.Sort(hs)
		return hs
	}
	if d := cmp.Diff(oldRootKeys, holders(rootChange.Old)); d != "" {
		t.Errorf("old root holders (-want +got):\n%s", d)
	}
	if d := cmp.Diff(newRootKeys, holders(rootChange.New)); d != "" {
		t.Errorf("new root holders (-want +got):\n%s", d)
	}
	if rootChange.Old.Threshold != 3 || rootChange.New.Threshold != 3 {
		t.Errorf("thresholds %d -> %d", rootChange.Old.Threshold, rootChange.New.Threshold)
	}
	// The pinned root is the new one, in memory and after a restart, and it
	// verifies from the old one.
	for _, pinned := range [][]byte{st.Root, s.reopen().Root} {
		root, err := tuf.ParseStrict[metadata.RootType](pinned)
		if err != nil {
			t.Fatal(err)
		}
		if root.Signed.Version != 2 {
			t.Fatalf("pinned root version %d, want 2", root.Signed.Version)
		}
		old, _ := s.repo.Root()
		if err := tuf.VerifyRootStep(old, root); err != nil {
			t.Fatal(err)
		}
	}
	// Targets signed under the new root verify from the pinned root: a
	// release of a role delegated by targets still chains.
	if _, _, err := (&tuf.Request{Chain: tuf.Chain{Root: []json.RawMessage{s.state.Root}}, Delegator: metadata.ROOT, Role: metadata.TARGETS}).Delegation(s.state.Root, now); err != nil {
		t.Fatal(err)
	}
}

func TestRootRotationRefusedWithoutOldThreshold(t *testing.T) {
	s := newScenarioWith(t, oldRootKeys, 3, []string{"targets-ken"}, 1)
	st := s.openState()
	pinned := slices.Clone(st.Root)
	r := s.sign(s.rootRotation("rotate", newRootKeys, 3), []string{"root-1", "root-2", "root-a", "root-b", "root-c"})
	r.refusedFor(t, RuleThreshold)
	r.beforeSigning(t, st, metadata.ROOT)
	if !slices.Equal(s.reopen().Root, pinned) {
		t.Fatal("a refused rotation changed the pinned root")
	}
}

func TestRootRotationRefusedWithoutNewThreshold(t *testing.T) {
	s := newScenarioWith(t, oldRootKeys, 3, []string{"targets-ken"}, 1)
	st := s.openState()
	pinned := slices.Clone(st.Root)
	r := s.sign(s.rootRotation("rotate", newRootKeys, 3), []string{"root-1", "root-2", "root-3", "root-a", "root-b"})
	r.refusedFor(t, RuleThreshold)
	r.beforeSigning(t, st, metadata.ROOT)
	if !slices.Equal(s.reopen().Root, pinned) {
		t.Fatal("a refused rotation changed the pinned root")
	}
}

// beforeSigning checks a refusal came before any key signed and before the
// ledger recorded anything: the holders were never asked for a PIN.
func (r result) beforeSigning(t *testing.T, st *StateDir, role string) {
	t.Helper()
	if len(r.state.Signed) != 0 || len(r.ui.asked) != 0 {
		t.Fatalf("refused after %d signatures and %d confirmations, want before any", len(r.state.Signed), len(r.ui.asked))
	}
	if _, _, ok := st.Ledger.Highest(role); ok {
		t.Fatalf("the ledger recorded %s although the ceremony was refused before signing", role)
	}
}

// delegationScenario has targets held 2-of-3 by ken, lea and max, who
// delegate sigstore 2-of-3 to alice, bob and carol.
func delegationScenario(t *testing.T, threshold int) *scenario {
	s := newScenarioWith(t, []string{"root-ada"}, 1, []string{"ken", "lea", "max"}, threshold)
	next, err := s.repo.NextTargets(metadata.TARGETS, now.Add(60*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s.delegate(next, "sigstore", 2, nil, "alice", "bob", "carol")
	d, err := s.repo.Delegation(metadata.TARGETS)
	if err != nil {
		t.Fatal(err)
	}
	if err := tuf.SignAll(next, d, []hsm.Signer{s.key("ken"), s.key("lea"), s.key("max")}); err != nil {
		t.Fatal(err)
	}
	if err := s.repo.CommitTargets(metadata.TARGETS, next, s.key("online"), now); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDelegationChangeAddsApprovalGroup(t *testing.T) {
	s := delegationScenario(t, 2)
	group := tuf.Group{Name: "security", KeyIDs: []string{s.keyID("carol")}, Min: 1}
	b := s.targetsChange("add-group", tuf.KindDelegation, func(m *metadata.Metadata[metadata.TargetsType]) {
		s.delegate(m, "sigstore", 2, []tuf.Group{group}, "alice", "bob", "carol")
	})
	r := s.sign(b, []string{"ken", "max"})
	resp := r.done(t)
	if resp.Role != metadata.TARGETS || resp.Version != 3 || len(resp.Signatures) != 2 {
		t.Fatalf("response %+v", resp)
	}
	roles := r.state.Review.Roles
	if len(roles) != 1 || roles[0].Name != "sigstore" || roles[0].Change != "changed" || roles[0].Old == nil || roles[0].New == nil {
		t.Fatalf("review roles %+v", roles)
	}
	if len(roles[0].Old.Groups) != 0 {
		t.Errorf("old groups %+v, want none", roles[0].Old.Groups)
	}
	if d := cmp.Diff([]tuf.Group{group}, roles[0].New.Groups); d != "" {
		t.Errorf("new groups (-want +got):\n%s", d)
	}
	if roles[0].Old.Threshold != 2 || roles[0].New.Threshold != 2 || len(roles[0].Old.Keys) != 3 {
		t.Errorf("old %+v new %+v", roles[0].Old, roles[0].New)
	}
	if len(r.state.Review.Targets) != 0 {
		t.Errorf("a delegation change shows target changes %+v", r.state.Review.Targets)
	}
}

func TestEnrolmentOfNewHolderByExistingThreshold(t *testing.T) {
	s := delegationScenario(t, 2)
	b := s.targetsChange("enrol-dave", tuf.KindEnrolment, func(m *metadata.Metadata[metadata.TargetsType]) {
		s.delegate(m, "sigstore", 2, nil, "alice", "bob", "carol", "dave")
	})
	// Dave's own key cannot sign his enrolment: it is not a targets key.
	s.sign(b, []string{"ken", "dave"}).refusedFor(t, RuleKey)
	r := s.sign(b, []string{"lea", "max"})
	r.done(t)
	roles := r.state.Review.Roles
	if len(roles) != 1 || roles[0].Name != "sigstore" || len(roles[0].New.Keys) != 4 || len(roles[0].Old.Keys) != 3 {
		t.Fatalf("review roles %+v", roles)
	}
	var added []string
	for _, k := range roles[0].New.Keys {
		if !slices.ContainsFunc(roles[0].Old.Keys, func(o KeyFact) bool { return o.KeyID == k.KeyID }) {
			added = append(added, k.Holder)
		}
	}
	if d := cmp.Diff([]string{"dave"}, added); d != "" {
		t.Errorf("enrolled holders (-want +got):\n%s", d)
	}
}

func TestEnrolmentRefusedWithoutThreshold(t *testing.T) {
	s := delegationScenario(t, 3)
	b := s.targetsChange("enrol-dave", tuf.KindEnrolment, func(m *metadata.Metadata[metadata.TargetsType]) {
		s.delegate(m, "sigstore", 2, nil, "alice", "bob", "carol", "dave")
	})
	// Two distinct holders approve, but targets needs three keys.
	r := s.sign(b, []string{"ken", "lea"})
	r.refusedFor(t, RuleThreshold)
	r.beforeSigning(t, s.openState(), metadata.TARGETS)
}

func TestRefusedRollbackBelowLedger(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	// The appliance signed version 5 of sigstore (bytes CI built then).
	v5 := s.release("sigstore", "1.3.0", "", func(dir string) {
		editMetadata(t, dir, func(m map[string]any) { m["version"] = 5 })
	})
	s.sign(v5, []string{"alice", "bob"}).done(t)
	// A bundle for version 1: above the current (none), below the ledger.
	r := s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"})
	r.refusedFor(t, RuleLedger)
	if r.state.Refusal.Step != StepVerify || len(r.ui.asked) != 0 {
		t.Fatalf("refused at %s after %d confirmations, want at verify before anyone is asked", r.state.Refusal.Step, len(r.ui.asked))
	}
}

func TestRefusedVersionNotAboveCurrent(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	s.commitRelease("sigstore", "1.3.0", "alice", "bob")
	s.commitRelease("sigstore", "2.0.0", "alice", "bob")
	// The current version is 2: CI asks for 2 (at) and 1 (below).
	for _, v := range []int{2, 1} {
		r := s.sign(s.release("sigstore", "2.0.0", "1.3.0", func(dir string) {
			editMetadata(t, dir, func(m map[string]any) { m["version"] = v })
		}), []string{"alice", "bob"})
		r.refusedFor(t, RuleVersion)
	}
}

func TestRefusedExpiredPayload(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	r := s.sign(s.release("sigstore", "1.3.0", "", func(dir string) {
		editMetadata(t, dir, func(m map[string]any) { m["expires"] = now.Add(-24 * time.Hour).Format(time.RFC3339) })
	}), []string{"alice", "bob"})
	r.refusedFor(t, RuleExpiry)
}

func TestRefusedCurrentMetadataDoesNotVerify(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	s.commitRelease("sigstore", "1.3.0", "alice", "bob")
	b := s.release("sigstore", "2.0.0", "1.3.0", func(dir string) {
		p := filepath.Join(dir, "request.json")
		raw, _ := os.ReadFile(p)
		req, err := tuf.ParseRequest(raw)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := tuf.ParseStrict[metadata.TargetsType](req.Current)
		if err != nil {
			t.Fatal(err)
		}
		// CI shows a current version that was never signed: its targets
		// were swapped after signing.
		for _, tf := range cur.Signed.Targets {
			tf.Length++
		}
		if req.Current, err = cur.ToBytes(false); err != nil {
			t.Fatal(err)
		}
		raw, _ = req.Marshal()
		os.WriteFile(p, raw, 0o644)
	})
	s.sign(b, []string{"alice", "bob"}).refusedFor(t, RuleChain)
}

// commitRelease signs a release of role by the named keys outside the
// appliance and commits it to the repository.
func (s *scenario) commitRelease(role, version string, keyNames ...string) {
	s.t.Helper()
	next, err := s.repo.NextTargets(role, now.Add(90*24*time.Hour))
	if err != nil {
		s.t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("testdata", "sigstore-"+version+".tgz"))
	if err != nil {
		s.t.Fatal(err)
	}
	tf, err := tuf.HashReader(f)
	f.Close()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := tuf.SetTarget(next, role+"/sigstore-"+version+".tgz", tf, nil); err != nil {
		s.t.Fatal(err)
	}
	d, err := s.repo.Delegation(role)
	if err != nil {
		s.t.Fatal(err)
	}
	var ks []hsm.Signer
	for _, n := range keyNames {
		ks = append(ks, s.key(n))
	}
	if err := tuf.SignAll(next, d, ks); err != nil {
		s.t.Fatal(err)
	}
	if err := s.repo.CommitTargets(role, next, s.key("online"), now); err != nil {
		s.t.Fatal(err)
	}
}
