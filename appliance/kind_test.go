package appliance

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/tuf"
)

// roleChange asks to sign the next version of a delegated role, edited,
// under the given label.
func (s *scenario) roleChange(name, role, label string, edit func(*metadata.Metadata[metadata.TargetsType])) string {
	s.t.Helper()
	next, err := s.repo.NextTargets(role, now.Add(60*24*time.Hour))
	if err != nil {
		s.t.Fatal(err)
	}
	edit(next)
	raw, err := next.ToBytes(false)
	if err != nil {
		s.t.Fatal(err)
	}
	req, err := s.repo.BuildRequest(label, role, raw, now)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.writeRequest(name, req)
}

// subDelegate makes sigstore hand sigstore/* to alice's key alone.
func (s *scenario) subDelegate(m *metadata.Metadata[metadata.TargetsType]) {
	s.t.Helper()
	if err := tuf.SetDelegation(m, tuf.DelegationSpec{Name: "sigstore-ci", Threshold: 1, Paths: []string{"sigstore/*"},
		Keys: []*metadata.Key{s.metaKey("alice")}}); err != nil {
		s.t.Fatal(err)
	}
}

// Attack: a sub-delegation of sigstore/* to one key, sent as a release or a
// re-sign, is refused: the kind comes from the bytes, and the label that
// disagrees is named next to the derived kind.
func TestSubDelegationLabelledReleaseOrResignRefused(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	s.commitRelease("sigstore", "1.3.0", "alice", "bob")
	for _, label := range []string{tuf.KindRelease, tuf.KindResign} {
		b := s.roleChange("sub-"+label, "sigstore", label, s.subDelegate)
		r := s.sign(b, []string{"alice", "bob"})
		refusalReason(t, r, RuleMetadata, `labelled "`+label+`" but its metadata is a delegation`)
		if r.state.Refusal.Step != StepVerify || len(r.ui.asked) != 0 {
			t.Fatalf("%s: refused at %s after %d confirmations, want at verify before anyone is asked", label, r.state.Refusal.Step, len(r.ui.asked))
		}
		r.beforeSigning(t, s.openState(), "sigstore")
	}
	// Labelled for what it is, the policy of the role decides.
	pol := s.openState().Policy
	pol.Roles["sigstore"] = RolePolicy{Kinds: []string{tuf.KindRelease, tuf.KindResign}}
	r := s.sign(s.roleChange("sub-delegation", "sigstore", tuf.KindDelegation, s.subDelegate), []string{"alice", "bob"})
	refusalReason(t, r, RulePolicy, "does not allow delegation ceremonies for role sigstore")
	pol.Roles["sigstore"] = RolePolicy{}
	s.sign(s.roleChange("sub-delegation-2", "sigstore", tuf.KindDelegation, s.subDelegate), []string{"alice", "bob"}).done(t)
}

// A release labelled as a re-sign is refused; the same bytes labelled
// release are signed, and the state and review carry the derived kind.
func TestReleaseLabelledResignRefused(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	b := s.release("sigstore", "1.3.0", "", func(dir string) { relabelKind(t, dir, tuf.KindResign) })
	refusalReason(t, s.sign(b, []string{"alice", "bob"}), RuleMetadata, `labelled "resign" but its metadata is a release`)
	r := s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"})
	r.done(t)
	if r.state.Kind != tuf.KindRelease || r.state.Review.Kind != tuf.KindRelease {
		t.Fatalf("state kind %q, review kind %q, want release", r.state.Kind, r.state.Review.Kind)
	}
}

// A re-sign changes only version and expiry; the policy allowing only
// re-signs still refuses a release, whatever its label.
func TestPolicyAppliesToDerivedKind(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	s.commitRelease("sigstore", "1.3.0", "alice", "bob")
	s.policy.Roles["sigstore"] = RolePolicy{Kinds: []string{tuf.KindResign}}
	r := s.sign(s.roleChange("resign", "sigstore", tuf.KindResign, func(*metadata.Metadata[metadata.TargetsType]) {}), []string{"alice", "bob"})
	r.done(t)
	if r.state.Review.Kind != tuf.KindResign {
		t.Fatalf("review kind %q, want resign", r.state.Review.Kind)
	}
	rel := s.release("sigstore", "2.0.0", "", nil)
	refusalReason(t, s.sign(rel, []string{"alice", "bob"}), RulePolicy, "does not allow release ceremonies for role sigstore")
}

func relabelKind(t *testing.T, bundle, kind string) {
	t.Helper()
	editRequest(t, bundle, func(req *tuf.Request) { req.Kind = kind })
}

// editRequest rewrites a bundle's request.json.
func editRequest(t *testing.T, bundle string, edit func(*tuf.Request)) {
	t.Helper()
	p := filepath.Join(bundle, "request.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	req, err := tuf.ParseRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(req)
	if raw, err = req.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
