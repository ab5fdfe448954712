package appliance

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dateUI answers the date question from a script and records the texts.
type dateUI struct {
	scriptUI
	answers []string
	texts   []string
}

func (u *dateUI) Ask(_ context.Context, q Question) (string, error) {
	u.texts = append(u.texts, q.Text)
	if len(u.answers) == 0 {
		return q.Default, nil
	}
	a := u.answers[0]
	u.answers = u.answers[1:]
	return a, nil
}

// A mistyped date and a date before the last signing are asked again with
// the reason; the ceremony goes on once a valid date is typed.
func TestWrongDateIsAskedAgain(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob").role("other", 2, "carol", "dave")
	s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}).done(t)
	ui := &dateUI{scriptUI: scriptUI{confirm: map[string]bool{"carol": true, "dave": true}},
		answers: []string{"2025-13-40", "2025-05-31", now.Format(time.DateOnly)}}
	c, err := New(Config{State: s.openState(), UI: ui, Clock: fixedClock(), Dev: true,
		Bundle: dirBundle(s.release("other", "1.3.0", "", nil)), Keys: KeyURIs{"file:" + s.paths["carol"], "file:" + s.paths["dave"]},
		Sink: DirSink(filepath.Join(s.dir, "out-date"))})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Run(context.Background())
	if err != nil || st.Step != StepDone {
		t.Fatalf("ceremony ended at %s: %v", st.Step, err)
	}
	if len(ui.texts) != 3 {
		t.Fatalf("asked %d times, want 3: %q", len(ui.texts), ui.texts)
	}
	if !strings.HasPrefix(ui.texts[1], `"2025-13-40" is not a date: type it as YYYY-MM-DD, e.g. 2025-06-02. The appliance has no network time.`) {
		t.Fatalf("second question does not say why: %q", ui.texts[1])
	}
	if !strings.HasPrefix(ui.texts[2], "the date 2025-05-31 is earlier than 2025-06-02, the date of this appliance's last signing") {
		t.Fatalf("third question does not say why: %q", ui.texts[2])
	}
}

// Someone who keeps typing a wrong date is refused after MaxDateAttempts,
// with the reason.
func TestWrongDateRefusedAfterCap(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	ui := &dateUI{scriptUI: scriptUI{confirm: map[string]bool{}}}
	for range MaxDateAttempts {
		ui.answers = append(ui.answers, "tomorrow")
	}
	c, err := New(Config{State: s.openState(), UI: ui, Clock: fixedClock(), Dev: true,
		Bundle: dirBundle(s.release("sigstore", "1.3.0", "", nil)), Keys: KeyURIs{"file:" + s.paths["alice"]},
		Sink: DirSink(filepath.Join(s.dir, "out-cap"))})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Run(context.Background())
	refusalReason(t, result{state: st, err: err, ui: &ui.scriptUI, out: filepath.Join(s.dir, "out-cap")}, RuleDate, `"tomorrow" is not a date`)
}
