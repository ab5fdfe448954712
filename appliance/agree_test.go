package appliance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/appliance/content"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// metadataOnly loads only request.json, as the QR transfer does.
type metadataOnly string

func (d metadataOnly) Load(context.Context) (*Bundle, error) {
	req, err := os.ReadFile(filepath.Join(string(d), "request.json"))
	if err != nil {
		return nil, err
	}
	return &Bundle{Source: "qr", Request: req, MetadataOnly: true}, nil
}

// signFrom runs a two-holder ceremony from src.
func (s *scenario) signFrom(src BundleSource, keyNames ...string) result {
	s.t.Helper()
	ui := &scriptUI{confirm: map[string]bool{}}
	var uris KeyURIs
	for _, n := range keyNames {
		uris = append(uris, "file:"+s.paths[n])
		ui.confirm[s.keys[n].Holder()] = true
	}
	out := filepath.Join(s.dir, "out-"+time.Now().Format("150405.000000000"))
	c, err := New(Config{State: s.openState(), UI: ui, Clock: fixedClock(), Dev: s.dev, Bundle: src, Keys: uris, Sink: DirSink(out)})
	if err != nil {
		s.t.Fatal(err)
	}
	state, err := c.Run(context.Background())
	return result{state: state, err: err, ui: ui, out: out}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hasRisk(r *Review, kind content.Kind, detail string) bool {
	for _, s := range r.Risks {
		if s.Kind == kind && s.Severity == content.High && strings.Contains(content.Visible(s.Detail), detail) {
			return true
		}
	}
	return false
}

// A bundle whose request names an artifact that is not in it is refused by
// the appliance and by combine alike, for the same reason.
func TestMissingArtifactRefusedByReviewAndCombine(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	b := s.release("sigstore", "1.3.0", "", nil)
	broken := b + "-broken"
	copyDir(t, b, broken)
	req, err := online.ReadRequest(broken)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(broken, req.Targets[0].File)); err != nil {
		t.Fatal(err)
	}
	refusalReason(t, s.sign(broken, []string{"alice", "bob"}), RuleBundle, "is not in the bundle")

	resp := s.sign(b, []string{"alice", "bob"}).done(t)
	_, err = online.Combine(s.repo, broken, []*tuf.Response{resp}, s.key("online"), now)
	if err == nil || !strings.Contains(err.Error(), "is not in the bundle") {
		t.Fatalf("combine of the incomplete bundle: %v, want a refusal saying the file is not in the bundle", err)
	}
}

// Over QR the artifact does not travel: the review accepts it with a high
// risk the holders see, and a policy requiring a content review refuses it.
func TestContentNotTransferredIsARiskThePolicyCanForbid(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	b := s.release("sigstore", "1.3.0", "", nil)
	r := s.signFrom(metadataOnly(b), "alice", "bob")
	r.done(t)
	if !hasRisk(r.state.Review, content.KindContentMissing, "its content was not reviewed") {
		t.Fatalf("no content-missing risk in %+v", r.state.Review.Risks)
	}

	s2 := newScenario(t).role("sigstore", 2, "alice", "bob")
	rp := s2.policy.Roles["sigstore"]
	rp.RequireContentReview = true
	s2.policy.Roles["sigstore"] = rp
	b2 := s2.release("sigstore", "1.3.0", "", nil)
	refusalReason(t, s2.signFrom(metadataOnly(b2), "alice", "bob"), RulePolicy, "the policy requires a content review")
	// The same bundle with its bytes passes.
	s2.sign(b2, []string{"alice", "bob"}).done(t)
}

// A release of a role that already has targets, sent without the previous
// release, is flagged: every file shows as added, nothing was compared.
func TestMissingPreviousReleaseIsARisk(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	first := s.release("sigstore", "1.3.0", "", nil)
	resp := s.sign(first, []string{"alice", "bob"}).done(t)
	if _, err := online.Combine(s.repo, first, []*tuf.Response{resp}, s.key("online"), now); err != nil {
		t.Fatal(err)
	}
	r := s.sign(s.release("sigstore", "2.0.0", "", nil), []string{"alice", "bob"})
	r.done(t)
	if !hasRisk(r.state.Review, content.KindContentMissing, "previous release") {
		t.Fatalf("no missing-previous risk in %+v", r.state.Review.Risks)
	}
	// With the previous release, no such risk.
	r = s.sign(s.release("sigstore", "2.0.0", "1.3.0", nil), []string{"alice", "bob"})
	r.done(t)
	if hasRisk(r.state.Review, content.KindContentMissing, "") {
		t.Fatalf("content-missing risk although the previous release was sent: %+v", r.state.Review.Risks)
	}
}

// Text the bundle supplies outside the artifacts is checked for deception:
// a holder name that imitates another holder, control characters in CI's
// note.
func TestDeceptiveBundleTextIsFlagged(t *testing.T) {
	s := newScenario(t)
	s.keyOf("alice", "alice")
	s.keyOf("alice2", "\u0430lice") // Cyrillic a
	s.role("sigstore", 2, "alice", "alice2", "bob")
	b := s.release("sigstore", "1.3.0", "", func(dir string) {
		editRequestNote(t, dir, "release\u202e 1.3.0\x1b[2J")
	})
	r := s.sign(b, []string{"alice", "bob"})
	r.done(t)
	rev := r.state.Review
	if !hasRisk(rev, content.KindConfusableName, "looks the same as \"alice\"") {
		t.Errorf("look-alike holder not flagged: %+v", rev.Risks)
	}
	if !hasRisk(rev, content.KindDeceptiveText, "note from CI") {
		t.Errorf("note with bidi and escape characters not flagged: %+v", rev.Risks)
	}
	for _, sig := range rev.Risks {
		if strings.Contains(sig.Detail, "target name") {
			t.Errorf("honest target name flagged: %+v", sig)
		}
	}
}

func editRequestNote(t *testing.T, dir, note string) {
	t.Helper()
	editRequest(t, dir, func(req *tuf.Request) { req.Note = note })
}

// A target outside the role's delegated paths is refused by bundle create
// and by combine as by the appliance: a response for such metadata, signed
// elsewhere, does not get published.
func TestTargetOutsidePathsRefusedByBundleCreateAndCombine(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	_, err := online.CreateBundle(s.repo, online.BundleOptions{Role: "sigstore", Now: now,
		Add: []online.FileArg{{File: filepath.Join("testdata", "sigstore-1.3.0.tgz"), Target: "evil/sigstore-1.3.0.tgz"}}})
	if err == nil || !strings.Contains(err.Error(), "outside the role's delegated paths") {
		t.Fatalf("bundle create with a target outside sigstore/*: %v, want a refusal naming the delegated paths", err)
	}

	// Metadata moved outside the paths after the bundle was made, signed
	// by the holders' keys directly (not through this appliance).
	b := s.release("sigstore", "1.3.0", "", func(dir string) {
		editMetadata(t, dir, func(m map[string]any) {
			ts := m["targets"].(map[string]any)
			for k, v := range ts {
				delete(ts, k)
				ts["evil/"+k] = v
			}
		})
	})
	req, err := online.ReadRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	req.Targets = nil
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "request.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := online.Sign(req, []hsm.Signer{s.key("alice"), s.key("bob")}, now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = online.Combine(s.repo, b, []*tuf.Response{resp}, s.key("online"), now)
	if err == nil || !strings.Contains(err.Error(), "outside the role's delegated paths") {
		t.Fatalf("combine of metadata with a target outside sigstore/*: %v, want a refusal naming the delegated paths", err)
	}
}

// A target name with a right-to-left override (inside the role's paths) is
// flagged, as is one mixing scripts.
func TestDeceptiveTargetNameIsFlagged(t *testing.T) {
	for _, target := range []string{"sigstore/\u202esigstore-1.3.0.tgz", "sigstore/\u0455igstore-1.3.0.tgz"} {
		s := newScenario(t).role("sigstore", 2, "alice", "bob")
		b, err := online.CreateBundle(s.repo, online.BundleOptions{Role: "sigstore", Now: now,
			Add: []online.FileArg{{File: filepath.Join("testdata", "sigstore-1.3.0.tgz"), Target: target}}})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(s.dir, "bundle-deceptive-"+tuf.SHA256Hex([]byte(target))[:8])
		if err := b.WriteDir(dir); err != nil {
			t.Fatal(err)
		}
		r := s.sign(dir, []string{"alice", "bob"})
		r.done(t)
		if !hasRisk(r.state.Review, content.KindDeceptiveText, "target name") {
			t.Errorf("target %q not flagged: %+v", target, r.state.Review.Risks)
		}
	}
}
