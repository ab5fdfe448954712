package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"airlock.dev/airlock/appliance"
)

// simApp runs an App on an 80×25 simulation screen.
func simApp(t *testing.T) (*App, tcell.SimulationScreen) {
	t.Helper()
	scr := tcell.NewSimulationScreen("UTF-8")
	a := New(Options{})
	a.SetScreen(scr)
	done := make(chan error, 1)
	go func() { done <- a.Run() }()
	t.Cleanup(func() { a.Stop(); <-done })
	scr.SetSize(80, 25)
	return a, scr
}

// screenText returns the screen as lines of text.
func screenText(scr tcell.SimulationScreen) string {
	cells, w, h := scr.GetContents()
	var b strings.Builder
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r := cells[y*w+x].Runes
			if len(r) == 0 {
				continue
			}
			b.WriteString(string(r))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// screenWithin only bounds how long a broken test hangs: every wait ends
// as soon as the screen shows (or stops showing) what it waits for.
const screenWithin = 60 * time.Second

// waitFor waits until the screen shows want.
func waitFor(t *testing.T, scr tcell.SimulationScreen, want string) string {
	t.Helper()
	return waitScreen(t, scr, "show", func(s string) bool { return strings.Contains(s, want) }, want)
}

// waitGone waits until the screen no longer shows text.
func waitGone(t *testing.T, scr tcell.SimulationScreen, text string) {
	t.Helper()
	waitScreen(t, scr, "stop showing", func(s string) bool { return !strings.Contains(s, text) }, text)
}

func waitScreen(t *testing.T, scr tcell.SimulationScreen, what string, done func(string) bool, text string) string {
	t.Helper()
	deadline := time.Now().Add(screenWithin)
	for {
		s := screenText(scr)
		if done(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen did not %s %q:\n%s", what, text, s)
		}
		time.Sleep(5 * time.Millisecond) // the next poll of the screen
	}
}

func TestHostileBundleTextChangesNothingElse(t *testing.T) {
	a, scr := simApp(t)
	hostile := "[red]evil[-] [\"r\"]x[\"\"] \x1b[2J\x1b]0;pwned\x07 abc\u202edcba[::b]"
	a.StateChanged(appliance.State{ID: "c1", Step: appliance.StepReview, Role: "sigstore",
		Review: &appliance.Review{Kind: "release", Role: hostile, Delegator: "targets", NewVersion: 7,
			SHA256: "ab12", Fingerprint: "aqua oval brew webs", Note: hostile, Signers: &appliance.Need{Threshold: 2, MinHolders: 2}}})
	s := waitFor(t, scr, "Note from CI")
	for _, want := range []string{
		`release of role [red]evil[-] ["r"]x[""] \x1b[2J\x1b]0;pwned\x07`,
		`abc\u202edcba[::b] (delegated by targets)`,
		"Version 0 -> 7",
		"fingerprint  aqua oval brew webs",
		"1 summary",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	// The line after the hostile text is in the default style, not red/bold.
	cells, w, h := scr.GetContents()
	for y := 0; y < h; y++ {
		line := ""
		for x := 0; x < w; x++ {
			line += string(cells[y*w+x].Runes)
		}
		if strings.Contains(line, "Version 0 -> 7") {
			fg, _, attr := cells[y*w+2].Style.Decompose()
			if fg == tcell.ColorRed || attr&tcell.AttrBold != 0 {
				t.Errorf("style leaked past the hostile text: fg %v attr %v", fg, attr)
			}
		}
	}
}

// confirmAsync asks c on a and delivers the answer on the channel.
func confirmAsync(a *App, c appliance.Confirmation) chan answer {
	res := make(chan answer, 1)
	go func() {
		ok, err := a.Confirm(context.Background(), c)
		res <- answer{yes: ok, err: err}
	}()
	return res
}

// noAnswer fails if res has an answer after the keys were handled.
func noAnswer(t *testing.T, res chan answer, what string) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	select {
	case got := <-res:
		t.Fatalf("%s answered the confirmation: %+v", what, got)
	default:
	}
}

var approveQ = appliance.Confirmation{Title: "approve", Text: "sign it?", Yes: "approve and sign", No: "refuse", Holder: "alice", Fingerprint: "aqua oval brew webs"}

// No single key, and no repeated key, approves or refuses: Enter Enter,
// Tab Enter and stray letters only say what to press; y Enter approves and
// r Enter refuses, each armed visibly first.
func TestConfirmNeedsDeliberateDistinctKeys(t *testing.T) {
	a, scr := simApp(t)
	res := confirmAsync(a, approveQ)
	waitFor(t, scr, "approve and sign")
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	noAnswer(t, res, "Enter Enter")
	waitFor(t, scr, "press y then Enter to approve and sign, or r then Enter to refuse")
	scr.InjectKey(tcell.KeyTab, 0, 0)
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	scr.InjectKey(tcell.KeyRune, 'x', 0)
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	noAnswer(t, res, "Tab Enter x Enter")
	// Esc to browse the screen, Tab back, Enter: still nothing.
	scr.InjectKey(tcell.KeyRune, 'y', 0)
	waitFor(t, scr, "Enter: approve and sign")
	scr.InjectKey(tcell.KeyEscape, 0, 0)
	scr.InjectKey(tcell.KeyTab, 0, 0)
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	noAnswer(t, res, "y Esc Tab Enter")
	scr.InjectKey(tcell.KeyRune, 'y', 0)
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	if got := <-res; !got.yes || got.err != nil {
		t.Fatalf("y Enter: %+v, want approval", got)
	}

	res = confirmAsync(a, approveQ)
	time.Sleep(50 * time.Millisecond)
	waitFor(t, scr, "approve and sign")
	scr.InjectKey(tcell.KeyRune, 'r', 0)
	waitFor(t, scr, "Enter: refuse (nothing is signed)")
	scr.InjectKey(tcell.KeyRune, 'y', 0) // changes the armed answer
	waitFor(t, scr, "Enter: approve and sign")
	scr.InjectKey(tcell.KeyRune, 'r', 0)
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	if got := <-res; got.yes || got.err != nil {
		t.Fatalf("r Enter: %+v, want a refusal", got)
	}
}

// A typed confirmation with a typo says what differs and asks again.
func TestConfirmTypedTypoAsksAgain(t *testing.T) {
	a, scr := simApp(t)
	c := approveQ
	c.Typed = "3f9a1c2b"
	res := confirmAsync(a, c)
	waitFor(t, scr, "type 3f9a1c2b")
	for _, r := range "3f9a1c2c" {
		scr.InjectKey(tcell.KeyRune, r, 0)
	}
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	noAnswer(t, res, "a typo")
	waitFor(t, scr, `typed "3f9a1c2c", expected "3f9a1c2b": type it again`)
	for _, r := range c.Typed {
		scr.InjectKey(tcell.KeyRune, r, 0)
	}
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	if got := <-res; !got.yes || got.err != nil {
		t.Fatalf("typed text: %+v, want approval", got)
	}
}

func TestSecretMaskedWithRetries(t *testing.T) {
	a, scr := simApp(t)
	res := make(chan string, 1)
	go func() {
		pin, _ := a.Secret(context.Background(), appliance.SecretRequest{Holder: "bob", Label: "PIN of yubikey:serial=1;slot=9c", Retries: 2})
		res <- string(pin)
	}()
	waitFor(t, scr, "2 tries left")
	for _, r := range "123456" {
		scr.InjectKey(tcell.KeyRune, r, 0)
	}
	s := waitFor(t, scr, "******")
	if strings.Contains(s, "123456") {
		t.Fatal("PIN shown in clear")
	}
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	if got := <-res; got != "123456" {
		t.Fatalf("pin %q", got)
	}
}

// F10 alone does not refuse: it asks, Enter refuses, any other key goes on.
func TestRefuseNeedsF10ThenEnter(t *testing.T) {
	a, scr := simApp(t)
	errc := make(chan error, 1)
	go func() {
		_, err := a.Ask(context.Background(), appliance.Question{Title: "today's date", Text: "confirm", Default: "2025-06-02"})
		errc <- err
	}()
	waitFor(t, scr, "2025-06-02")
	scr.InjectKey(tcell.KeyF10, 0, 0)
	waitFor(t, scr, "Refuse this ceremony? Enter refuses; any other key continues")
	scr.InjectKey(tcell.KeyRune, 'x', 0)
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("F10 x answered the question: %v", err)
	default:
	}
	scr.InjectKey(tcell.KeyF10, 0, 0)
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "refused by the operator") {
		t.Fatalf("F10 Enter: %v, want the operator's refusal", err)
	}
	// On a confirmation F10 arms its refusal: Enter refuses.
	res := confirmAsync(a, approveQ)
	time.Sleep(50 * time.Millisecond)
	waitFor(t, scr, "approve and sign")
	scr.InjectKey(tcell.KeyF10, 0, 0)
	waitFor(t, scr, "Enter: refuse (nothing is signed)")
	scr.InjectKey(tcell.KeyEnter, 0, 0)
	if got := <-res; got.yes {
		t.Fatal("F10 Enter approved")
	}
}
