package appliance

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"airlock.dev/airlock/tuf"
)

// Trust verification reads only request.json: who may sign and what the
// bytes are, with no artifact, provenance or diff in sight.
func TestVerifyTrustAlone(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob", "carol")
	st := s.openState()
	raw, err := os.ReadFile(filepath.Join(s.release("sigstore", "1.3.0", "", nil), "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifyTrust(st, raw, now)
	if err != nil {
		t.Fatal(err)
	}
	if v.kind != tuf.KindRelease || v.deleg.Threshold != 2 || len(v.deleg.KeyIDs) != 3 || v.current != nil || v.oldVersion != 0 || v.review != nil {
		t.Fatalf("verified %+v", v)
	}
	// A label that disagrees is a trust failure, named as such.
	req, err := tuf.ParseRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	req.Kind = tuf.KindResign
	relabelled, _ := req.Marshal()
	_, err = verifyTrust(st, relabelled, now)
	var r *refusal
	if !errors.As(err, &r) || r.rule != RuleMetadata || r.reason == "" {
		t.Fatalf("relabelled: %v", err)
	}
}

// The review is built from a verified request and the bundle's files: a
// bundle without artifact bytes (as over QR) gets a review that says so.
func TestBuildReviewFromVerifiedRequest(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	st := s.openState()
	dir := s.release("sigstore", "1.3.0", "", nil)
	raw, err := os.ReadFile(filepath.Join(dir, "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifyTrust(st, raw, now)
	if err != nil {
		t.Fatal(err)
	}
	r, err := buildReview(st, &Bundle{Source: "qr", Request: raw}, v, now, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != tuf.KindRelease || len(r.Targets) != 1 || r.Targets[0].Change != "added" || r.ContentAvailable || len(r.Artifacts) != 1 || r.Artifacts[0].BytesVerified {
		t.Fatalf("review %+v", r)
	}
	if r.Signers == nil || r.Signers.Threshold != 2 {
		t.Fatalf("signers %+v", r.Signers)
	}
}
