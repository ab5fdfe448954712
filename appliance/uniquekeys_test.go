package appliance

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/tuf"
)

// review runs only the review (start, import, verify) of a bundle.
func (s *scenario) review(bundle string) (State, error) {
	s.t.Helper()
	c, err := New(Config{State: s.openState(), UI: &scriptUI{}, Clock: fixedClock(), Dev: s.dev, Bundle: dirBundle(bundle)})
	if err != nil {
		s.t.Fatal(err)
	}
	return c.Review(s.t.Context())
}

func wantRefusal(t *testing.T, err error, rule Rule, want string) {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) || re.Refusal.Rule != rule || !strings.Contains(re.Refusal.Reason, want) {
		t.Fatalf("got %v, want a %s refusal containing %q", err, rule, want)
	}
}

// The review alone, before any key is offered, refuses one public key under
// two key ids in a delegation.
func TestDuplicatePublicKeyRefusedAtReview(t *testing.T) {
	s := delegationScenario(t, 2)
	b := s.targetsChange("dup", tuf.KindDelegation, func(m *metadata.Metadata[metadata.TargetsType]) {
		k := s.metaKey("bob")
		k.UnrecognizedFields["x-airlock-holder"] = "bob-again"
		id, _ := tuf.KeyID(k)
		m.Signed.Delegations.Keys[id] = k
		m.Signed.Delegations.Roles[0].KeyIDs = append(m.Signed.Delegations.Roles[0].KeyIDs, id)
	})
	_, err := s.review(b)
	wantRefusal(t, err, RuleMetadata, "one public key is listed under two key ids")
}

// A new root listing one public key under two key ids is refused.
func TestRootRotationDuplicatePublicKeyRefused(t *testing.T) {
	s := newScenarioWith(t, oldRootKeys, 3, []string{"targets-ken"}, 1)
	next, err := s.repo.NextRoot(now.Add(180 * 24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	k := s.metaKey("root-1")
	k.UnrecognizedFields["x-airlock-holder"] = "root-1-again"
	if err := next.Signed.AddKey(k, metadata.ROOT); err != nil {
		t.Fatal(err)
	}
	raw, _ := next.ToBytes(false)
	req, err := s.repo.BuildRequest(tuf.KindRootRotate, metadata.ROOT, raw, now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.review(s.writeRequest("dup-root", req))
	wantRefusal(t, err, RuleMetadata, "root version 2: one public key is listed under two key ids")
}
