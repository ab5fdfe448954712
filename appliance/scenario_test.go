package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"airlock.dev/airlock/appliance/provenance"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// now is the fixed date of every scenario; the fixture provenance is from 2023.
var now = time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)

type scenario struct {
	t      *testing.T
	dir    string
	keys   map[string]hsm.Signer
	paths  map[string]string
	repo   *tuf.Repository
	policy Policy
	dev    bool
	state  *StateDir
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	s := &scenario{t: t, dir: t.TempDir(), keys: map[string]hsm.Signer{}, paths: map[string]string{}, dev: true,
		policy: Policy{Format: PolicyFormat, Roles: map[string]RolePolicy{}}}
	repo, err := tuf.Init(filepath.Join(s.dir, "repo"), tuf.InitOptions{
		Root: []hsm.Signer{s.key("root-ada")}, RootThreshold: 1,
		Targets: []hsm.Signer{s.key("targets-ken")}, TargetsThreshold: 1,
		Online: s.key("online"), Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.repo = repo
	return s
}

// key returns the development key of a holder, creating it.
func (s *scenario) key(name string) hsm.Signer {
	if k, ok := s.keys[name]; ok {
		return k
	}
	return s.keyOf(name, name)
}

// keyOf creates a key named name held by holder.
func (s *scenario) keyOf(name, holder string) hsm.Signer {
	s.t.Helper()
	p := filepath.Join(s.dir, "keys", name+".pem")
	os.MkdirAll(filepath.Dir(p), 0o700)
	k, err := hsm.GenerateFileKey(p, hsm.ECDSAP256, holder, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	s.keys[name], s.paths[name] = k, p
	return k
}

// role delegates role from targets to the named keys with a threshold.
func (s *scenario) role(role string, threshold int, keyNames ...string) *scenario {
	return s.roleWithGroups(role, threshold, nil, keyNames...)
}

func (s *scenario) roleWithGroups(role string, threshold int, groups map[string][]string, keyNames ...string) *scenario {
	s.t.Helper()
	next, err := s.repo.NextTargets("targets", now.Add(90*24*time.Hour))
	if err != nil {
		s.t.Fatal(err)
	}
	spec := tuf.DelegationSpec{Name: role, Threshold: threshold, Paths: []string{role + "/*"}, Terminating: true}
	ids := map[string]string{}
	for _, n := range keyNames {
		k, err := tuf.KeyFromSigner(s.key(n))
		if err != nil {
			s.t.Fatal(err)
		}
		ids[n], _ = tuf.KeyID(k)
		spec.Keys = append(spec.Keys, k)
	}
	for g, members := range groups {
		grp := tuf.Group{Name: g, Min: 1}
		for _, m := range members {
			grp.KeyIDs = append(grp.KeyIDs, ids[m])
		}
		spec.Groups = append(spec.Groups, grp)
	}
	if err := tuf.SetDelegation(next, spec); err != nil {
		s.t.Fatal(err)
	}
	d, err := s.repo.Delegation("targets")
	if err != nil {
		s.t.Fatal(err)
	}
	payload, _ := tuf.Canonical(next)
	sig, err := tuf.SignPayload(d, s.key("targets-ken"), payload)
	if err != nil {
		s.t.Fatal(err)
	}
	next.Signatures = append(next.Signatures, sig)
	if err := s.repo.CommitTargets("targets", next, s.key("online"), now); err != nil {
		s.t.Fatal(err)
	}
	if _, ok := s.policy.Roles[role]; !ok {
		s.policy.Roles[role] = RolePolicy{}
	}
	return s
}

// publisher requires provenance from repository for role.
func (s *scenario) publisher(role, repository string) *scenario {
	rp := s.policy.Roles[role]
	rp.Provenance = &ProvenancePolicy{Package: "sigstore", Require: true, Publishers: []Publisher{{
		Issuer: provenance.GitHubActionsIssuer, Repository: repository,
		WorkflowPath: ".github/workflows/release.yml", Refs: []string{"refs/heads/main"},
	}}}
	s.policy.Roles[role] = rp
	return s
}

// release builds a bundle of role with the fixture sigstore tarball of
// version, diffed against previous; it returns the bundle folder.
func (s *scenario) release(role, version, previous string, edit func(dir string)) string {
	s.t.Helper()
	tgz := filepath.Join("testdata", "sigstore-"+version+".tgz")
	o := online.BundleOptions{Role: role, Now: now, Note: "release " + version,
		Add: []online.FileArg{{File: tgz, Target: role + "/sigstore-" + version + ".tgz"}}}
	if prov := filepath.Join("testdata", "sigstore@"+version+".provenance.sigstore.json"); exists(prov) {
		o.Provenance = []online.FileArg{{File: prov}}
	}
	if previous != "" {
		o.Previous = []online.FileArg{{File: filepath.Join("testdata", "sigstore-"+previous+".tgz")}}
	}
	b, err := online.CreateBundle(s.repo, o)
	if err != nil {
		s.t.Fatal(err)
	}
	dir := filepath.Join(s.dir, "bundle-"+version+"-"+filepath.Base(s.t.Name()))
	for i := 2; exists(dir); i++ {
		dir = filepath.Join(s.dir, "bundle-"+version+"-"+string(rune('a'+i)))
	}
	if err := b.WriteDir(dir); err != nil {
		s.t.Fatal(err)
	}
	if edit != nil {
		edit(dir)
	}
	return dir
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// openState provisions (once) and opens the appliance state.
func (s *scenario) openState() *StateDir {
	s.t.Helper()
	if s.state != nil {
		return s.state
	}
	root, err := os.ReadFile(filepath.Join(s.repo.Dir, "metadata", "1.root.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	pol, _ := json.Marshal(s.policy)
	tr, _ := os.ReadFile("testdata/trusted_root.json")
	dir := filepath.Join(s.dir, "state")
	if err := InitState(dir, Provision{Root: root, Policy: pol, TrustedRoot: tr}, fixedClock()); err != nil {
		s.t.Fatal(err)
	}
	st, err := OpenState(dir, fixedClock())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { st.Close() })
	s.state = st
	return st
}

func fixedClock() Clock { return ClockFunc(func() time.Time { return now }) }

// scriptUI answers as scripted: confirm[holder] is what the holder answers.
type scriptUI struct {
	confirm map[string]bool
	asked   []Confirmation
	msgs    []Message
}

func (u *scriptUI) Show(_ context.Context, m Message) { u.msgs = append(u.msgs, m) }
func (u *scriptUI) Ask(_ context.Context, q Question) (string, error) {
	return q.Default, nil
}
func (u *scriptUI) Confirm(_ context.Context, c Confirmation) (bool, error) {
	u.asked = append(u.asked, c)
	return u.confirm[c.Holder], nil
}
func (u *scriptUI) Secret(context.Context, SecretRequest) ([]byte, error) {
	return nil, errors.New("no pin expected for development keys")
}
func (u *scriptUI) WaitTouch(context.Context, TouchRequest) func() { return func() {} }

type dirBundle string

func (d dirBundle) Load(context.Context) (*Bundle, error) {
	req, err := os.ReadFile(filepath.Join(string(d), "request.json"))
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(string(d))
	if err != nil {
		return nil, err
	}
	return &Bundle{Source: string(d), Request: req, Files: root.FS()}, nil
}

type result struct {
	state State
	err   error
	ui    *scriptUI
	out   string
}

// sign runs a ceremony on bundle with the named keys; every holder confirms
// unless listed in declined.
func (s *scenario) sign(bundle string, keyNames []string, declined ...string) result {
	s.t.Helper()
	st := s.openState()
	ui := &scriptUI{confirm: map[string]bool{}}
	var uris KeyURIs
	for _, n := range keyNames {
		uris = append(uris, "file:"+s.paths[n])
		ui.confirm[s.keys[n].Holder()] = true
	}
	for _, h := range declined {
		ui.confirm[h] = false
	}
	out := filepath.Join(s.dir, "out-"+filepath.Base(bundle)+"-"+time.Now().Format("150405.000000000"))
	c, err := New(Config{State: st, UI: ui, Clock: fixedClock(), Dev: s.dev, Bundle: dirBundle(bundle), Keys: uris, Sink: DirSink(out)})
	if err != nil {
		s.t.Fatal(err)
	}
	state, err := c.Run(context.Background())
	return result{state: state, err: err, ui: ui, out: out}
}

func (r result) refusedFor(t *testing.T, rule Rule) {
	t.Helper()
	var re *RefusedError
	if !errors.As(r.err, &re) {
		t.Fatalf("ceremony was not refused (err %v), want a refusal for %s", r.err, rule)
	}
	if re.Refusal.Rule != rule || r.state.Step != StepRefused {
		t.Fatalf("refused for %s (%s), want %s", re.Refusal.Rule, re.Refusal.Reason, rule)
	}
	if exists(filepath.Join(r.out, ResponseFile)) {
		t.Fatal("a refused ceremony wrote a response")
	}
}

func (r result) done(t *testing.T) *tuf.Response {
	t.Helper()
	if r.err != nil || r.state.Step != StepDone {
		t.Fatalf("ceremony ended at %s: %v", r.state.Step, r.err)
	}
	b, err := os.ReadFile(filepath.Join(r.out, ResponseFile))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tuf.ParseResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRoutineReleaseByTwoHolders(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob", "carol").publisher("sigstore", "https://github.com/sigstore/sigstore-js")
	b := s.release("sigstore", "2.0.0", "1.3.0", nil)
	r := s.sign(b, []string{"alice", "bob"})
	resp := r.done(t)
	if len(resp.Signatures) != 2 || !resp.Dev || resp.RecordSHA256 == "" || resp.SignedSHA256 != r.state.SHA256 {
		t.Fatalf("response %+v", resp)
	}
	if len(r.ui.asked) != 2 || r.ui.asked[0].SHA256 != r.state.SHA256 || r.ui.asked[0].Fingerprint == "" {
		t.Fatalf("confirmations %+v", r.ui.asked)
	}
	a := r.state.Review.Artifacts
	if len(a) != 1 || !a[0].BytesVerified || a[0].Provenance == nil || !a[0].Provenance.Verified ||
		a[0].Provenance.Repository != "https://github.com/sigstore/sigstore-js" || a[0].Content == nil || a[0].Content.Old == nil {
		t.Fatalf("artifact review %+v", a)
	}
	// The signatures are over the bytes shown: combine verifies them.
	req, err := online.ReadRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := req.Payload()
	d, _, err := req.Delegation(nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tuf.Combine(p, req.Role, d, nil, []*tuf.Response{resp}); err != nil {
		t.Fatal(err)
	}
	// The exported record verifies and its hash is in the response.
	rec, err := os.ReadFile(filepath.Join(r.out, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	if tuf.SHA256Hex(rec) != resp.RecordSHA256 {
		t.Fatal("record hash differs from the response's")
	}
}

func TestRefusedOneHolder(t *testing.T) {
	s := newScenario(t).role("sigstore", 1, "alice", "bob")
	r := s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice"})
	r.refusedFor(t, RuleHolders)
}

func TestRefusedOnePersonTwoKeys(t *testing.T) {
	s := newScenario(t)
	s.keyOf("alice-1", "alice")
	s.keyOf("alice-2", "alice")
	s.role("sigstore", 2, "alice-1", "alice-2", "bob")
	r := s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice-1", "alice-2"})
	r.refusedFor(t, RuleHolders)
}

func TestRefusedGroupNotMet(t *testing.T) {
	s := newScenario(t).roleWithGroups("sigstore", 2, map[string][]string{"maintainers": {"alice"}}, "alice", "bob", "carol")
	r := s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"bob", "carol"})
	r.refusedFor(t, RuleGroups)
}

func TestRefusedWithoutFingerprintConfirmation(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	r := s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}, "bob")
	r.refusedFor(t, RuleConfirm)
	if len(r.state.Signed) != 0 {
		t.Fatal("a key signed before every holder confirmed")
	}
}

func TestRefusedDevKeyWithoutDevMode(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	s.dev = false
	s.policy.Roles["sigstore"] = RolePolicy{KeyKinds: []hsm.Kind{hsm.KindFile}}
	r := s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"})
	r.refusedFor(t, RuleDevKey)
}

func TestRefusedAttestationMissing(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	rp := s.policy.Roles["sigstore"]
	rp.Attestation.RequireHardware = true
	s.policy.Roles["sigstore"] = rp
	r := s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"})
	r.refusedFor(t, RuleAttestation)
}

func TestRefusedTamperedArtifact(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	b := s.release("sigstore", "1.3.0", "", func(dir string) {
		p := filepath.Join(dir, "artifacts", "sigstore-1.3.0.tgz")
		data, _ := os.ReadFile(p)
		data[len(data)/2] ^= 1
		os.WriteFile(p, data, 0o644)
	})
	s.sign(b, []string{"alice", "bob"}).refusedFor(t, RuleTargets)
}

func TestRefusedProvenanceFromAnotherRepository(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob").publisher("sigstore", "https://github.com/evil/sigstore-js")
	s.sign(s.release("sigstore", "2.0.0", "1.3.0", nil), []string{"alice", "bob"}).refusedFor(t, RuleProvenance)
}

func TestRefusedProvenanceMissing(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob").publisher("sigstore", "https://github.com/sigstore/sigstore-js")
	// 1.3.0 has no provenance in testdata.
	s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}).refusedFor(t, RuleProvenance)
}

func TestRefusedEquivocationAndRollback(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	first := s.release("sigstore", "1.3.0", "", nil)
	s.sign(first, []string{"alice", "bob"}).done(t)
	// CI builds other bytes for the same version (the repository was not
	// advanced, so it is version 1 again).
	other := s.release("sigstore", "2.0.0", "", nil)
	s.sign(other, []string{"alice", "bob"}).refusedFor(t, RuleLedger)
}

func TestRefusedExpiryBeyondPolicy(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	s.policy.Roles["sigstore"] = RolePolicy{MaxExpiryDays: 30}
	s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}).refusedFor(t, RuleExpiry)
}

func TestRefusedRoleNotInPolicy(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	delete(s.policy.Roles, "sigstore")
	s.policy.Roles["other"] = RolePolicy{}
	s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}).refusedFor(t, RulePolicy)
}
