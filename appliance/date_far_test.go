package appliance

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// typingUI types answers for questions by title; other questions get their
// default, as scriptUI does.
type typingUI struct {
	*scriptUI
	answers map[string]string
	titles  []string
}

func (u *typingUI) Ask(ctx context.Context, q Question) (string, error) {
	u.titles = append(u.titles, q.Title)
	if a, ok := u.answers[q.Title]; ok {
		return a, nil
	}
	return u.scriptUI.Ask(ctx, q)
}

// signOn runs a ceremony with the date given and a UI that types answers.
func (s *scenario) signOn(bundle string, date time.Time, answers map[string]string, keyNames ...string) (result, *typingUI) {
	s.t.Helper()
	ui := &typingUI{scriptUI: &scriptUI{confirm: map[string]bool{}}, answers: answers}
	var uris KeyURIs
	for _, n := range keyNames {
		uris = append(uris, "file:"+s.paths[n])
		ui.confirm[s.keys[n].Holder()] = true
	}
	out := filepath.Join(s.dir, "out-"+filepath.Base(bundle)+"-"+time.Now().Format("150405.000000000"))
	c, err := New(Config{State: s.openState(), UI: ui, Clock: fixedClock(), Dev: true, Date: date, Bundle: dirBundle(bundle), Keys: uris, Sink: DirSink(out)})
	if err != nil {
		s.t.Fatal(err)
	}
	state, err := c.Run(s.t.Context())
	return result{state: state, err: err, ui: ui.scriptUI, out: out}, ui
}

// Attack: a date typed with the wrong month, far after the appliance's last
// signing, is not accepted on one confirmation: the operator must type it a
// second time, and anything else stops the ceremony before verification.
func TestFarDateNeedsSecondConfirmation(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob").role("other", 2, "carol", "dave").role("third", 2, "erin", "frank")
	s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}).done(t)
	far := now.AddDate(0, 0, 40)
	b := s.release("other", "1.3.0", "", nil)
	r, ui := s.signOn(b, far, nil, "carol", "dave")
	refusalReason(t, r, RuleDate, "is 40 days after this appliance's last signing (2025-06-02) and was not confirmed a second time")
	if r.state.Refusal.Step != StepStart || len(ui.titles) != 1 || ui.titles[0] != "confirm the date again" {
		t.Fatalf("refused at %s after questions %q", r.state.Refusal.Step, ui.titles)
	}
	r, _ = s.signOn(b, far, map[string]string{"confirm the date again": "2025-07-02"}, "carol", "dave")
	refusalReason(t, r, RuleDate, `(got "2025-07-02")`)
	r, _ = s.signOn(b, far, map[string]string{"confirm the date again": far.Format(time.DateOnly)}, "carol", "dave")
	r.done(t)
	// Within the gap, one confirmation is enough.
	r, ui = s.signOn(s.release("third", "2.0.0", "", nil), far.AddDate(0, 0, 10), nil, "erin", "frank")
	r.done(t)
	if len(ui.titles) != 0 {
		t.Fatalf("asked %q for a date 10 days after the last signing", ui.titles)
	}
}

// A confirmed date earlier than the transparency-log time of the release's
// provenance is refused: that date cannot be today.
func TestDateBeforeProvenanceLogTimeRefused(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob").publisher("sigstore", "https://github.com/sigstore/sigstore-js")
	pol := s.policy.Roles["sigstore"]
	pol.MaxExpiryDays = 3650
	s.policy.Roles["sigstore"] = pol
	r, _ := s.signOn(s.release("sigstore", "2.0.0", "", nil), time.Date(2022, 1, 3, 0, 0, 0, 0, time.UTC), nil, "alice", "bob")
	refusalReason(t, r, RuleDate, "the confirmed date 2022-01-03 is earlier than 2023-")
	if !strings.Contains(r.state.Refusal.Reason, "transparency log recorded the provenance of sigstore/sigstore-2.0.0.tgz") {
		t.Fatal(r.state.Refusal.Reason)
	}
}
