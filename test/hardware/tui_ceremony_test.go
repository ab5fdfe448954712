package hardware_test

// The same hardware ceremony through the appliance's terminal UI: the
// holders approve, type their PINs and touch the YubiKey on a tcell
// simulation screen, and the test reads what they were shown.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
	"airlock.dev/airlock/internal/testrig"
	"airlock.dev/airlock/tui"
)

// screenWithin bounds every wait for the screen; a wait ends as soon as
// the screen shows what it waits for.
const screenWithin = 60 * time.Second

// console is a tui.App on an 80×25 simulation screen.
type console struct {
	t   *testing.T
	app *tui.App
	scr tcell.SimulationScreen
}

func newConsole(t *testing.T) *console {
	t.Helper()
	scr := tcell.NewSimulationScreen("UTF-8")
	app := tui.New(tui.Options{})
	app.SetScreen(scr)
	done := make(chan error, 1)
	go func() { done <- app.Run() }()
	t.Cleanup(func() { app.Stop(); <-done })
	scr.SetSize(80, 25)
	return &console{t: t, app: app, scr: scr}
}

var spaces = regexp.MustCompile(`[\s\x{2500}-\x{257F}]+`) // blanks and box drawing

// text returns the screen as lines, and as one line with borders removed
// and runs of spaces collapsed, so that wrapped sentences read whole.
func (c *console) text() (string, string) {
	cells, w, h := c.scr.GetContents()
	var b strings.Builder
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if r := cells[y*w+x].Runes; len(r) > 0 {
				b.WriteString(string(r))
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), spaces.ReplaceAllString(b.String(), " ")
}

// shows reports whether the screen shows every one of want.
func (c *console) shows(want ...string) bool {
	raw, flat := c.text()
	for _, w := range want {
		if !strings.Contains(raw, w) && !strings.Contains(flat, w) {
			return false
		}
	}
	return true
}

// wait waits until the screen shows every one of want, or the ceremony
// ended (ended is closed) without it.
func (c *console) wait(ended <-chan struct{}, want ...string) string {
	c.t.Helper()
	deadline := time.Now().Add(screenWithin)
	for !c.shows(want...) {
		select {
		case <-ended:
			// The last redraws may still be queued: keep looking, but
			// not for long once the ceremony is over.
			if end := time.Now().Add(5 * time.Second); end.Before(deadline) {
				deadline = end
			}
			ended = nil
		default:
		}
		if time.Now().After(deadline) {
			raw, _ := c.text()
			c.t.Fatalf("the screen never showed %q:\n%s", want, raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	raw, _ := c.text()
	return raw
}

func (c *console) key(k tcell.Key) { c.scr.InjectKey(k, 0, 0) }

func (c *console) typeText(s string) {
	for _, r := range s {
		c.scr.InjectKey(tcell.KeyRune, r, 0)
	}
	c.key(tcell.KeyEnter)
}

// run starts a ceremony on the console; the returned channel is closed when
// it ends, after *o is set.
func (c *console) run(r *rig, st *appliance.StateDir, rel release, o *testrig.Outcome) chan struct{} {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		*o = r.ceremony(st, c.app, c.app, r.AttestOptions(), rel)
	}()
	return ended
}

// approve has both holders confirm the fingerprint with y, Enter (y arms
// "approve and sign", Enter takes it; no single key approves).
func (c *console) approve(ended <-chan struct{}, version int64) {
	c.t.Helper()
	for _, h := range []string{alice, bob} {
		c.wait(ended, fmt.Sprintf("approve %s version %d - %s", role, version, h))
		c.scr.InjectKey(tcell.KeyRune, 'y', 0)
		c.key(tcell.KeyEnter)
		// Wait for the question to go before answering the next.
		c.waitGone(ended, fmt.Sprintf("version %d - %s", version, h))
	}
}

func (c *console) waitGone(ended <-chan struct{}, text string) {
	c.t.Helper()
	deadline := time.Now().Add(screenWithin)
	for c.shows(text) {
		select {
		case <-ended:
			return
		default:
		}
		if time.Now().After(deadline) {
			raw, _ := c.text()
			c.t.Fatalf("the screen still shows %q:\n%s", text, raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *console) wait1(ended <-chan struct{}) {
	c.t.Helper()
	select {
	case <-ended:
	case <-time.After(screenWithin):
		raw, _ := c.text()
		c.t.Fatalf("the ceremony did not end:\n%s", raw)
	}
}

func TestCeremonyTUIYubiKeyAndTPM(t *testing.T) {
	r := newRig(t, tpmtest.Swtpm)
	st := r.state(true)
	rel := r.bundle("1.0.0")
	version := int64(1)

	// Alice types a wrong PIN: the prompt showed 3 tries, the refusal
	// says 2 are left, and nothing asked her to touch.
	c := newConsole(t)
	var o testrig.Outcome
	ended := c.run(r, st, rel, &o)
	c.approve(ended, version)
	c.wait(ended, "PIN for "+alice, "3 tries left", alice+" entering PIN (3 tries left)")
	c.typeText("000000")
	screen := c.wait(ended, "REFUSED", "wrong pin: 2 retries left before the key is blocked", "Nothing was signed.")
	c.wait1(ended)
	o.Refused(t, appliance.RuleSign, "wrong pin: 2 retries left")
	if strings.Contains(screen, "000000") {
		t.Fatalf("the PIN typed is on the screen:\n%s", screen)
	}

	// The next ceremony shows the 2 tries left; Alice types her PIN and
	// touches the key while the screen asks her to; Bob types his.
	c = newConsole(t)
	touchShown := make(chan string, 1)
	hook := func() {
		deadline := time.Now().Add(screenWithin)
		for !c.shows("TOUCH YOUR KEY", alice+" touch your key") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		raw, _ := c.text()
		touchShown <- raw
	}
	r.OnTouch.Store(&hook)
	ended = c.run(r, st, rel, &o)
	c.approve(ended, version)
	c.wait(ended, "PIN for "+alice, "2 tries left")
	c.typeText(yubiKeyPIN)
	select {
	case raw := <-touchShown:
		if !strings.Contains(raw, "TOUCH YOUR KEY") || !strings.Contains(raw, alice+": touch "+r.YubiKeyURI.String()) {
			t.Fatalf("the card waited for a touch but the screen did not ask %s for it:\n%s", alice, raw)
		}
	case <-ended:
		t.Fatalf("the ceremony ended before the card asked for a touch: %v", o.Err)
	}
	c.wait(ended, "PIN for "+bob, "tries left")
	c.typeText(tpmPIN)
	c.wait(ended, "SIGNED", "Approved by "+alice+", "+bob, "Signatures 2")
	c.wait1(ended)
	r.OnTouch.Store(nil)
	r.publish(t, rel, o.Response(t))

	// An appliance that does not trust the TPM's attestation key refuses
	// before anyone is asked anything.
	rel = r.bundle("2.0.0")
	version++
	c = newConsole(t)
	ended = c.run(r, r.state(false), rel, &o)
	screen = c.wait(ended, "REFUSED", "rule attestation", "key "+r.TPMURI.String()+": attestation does not verify")
	c.wait1(ended)
	o.Refused(t, appliance.RuleAttestation, "attestation does not verify")
	if strings.Contains(screen, "PIN for") || strings.Contains(screen, "approve "+role) {
		t.Fatalf("a holder was asked before the attestations were checked:\n%s", screen)
	}

	// Alice does not touch in time: the card gives up and the screen says
	// why; then the card is pulled while it waits for her touch.
	r.TimeOut.Store(true)
	c = newConsole(t)
	ended = c.run(r, st, rel, &o)
	c.approve(ended, version)
	c.wait(ended, "PIN for "+alice, "3 tries left")
	c.typeText(yubiKeyPIN)
	c.wait(ended, "REFUSED", "rule sign", "the yubikey refused to sign: it was not touched in time")
	c.wait1(ended)
	o.Refused(t, appliance.RuleSign, "it was not touched in time")

	pull := func() { r.Card.Remove() }
	r.OnTouch.Store(&pull)
	c = newConsole(t)
	ended = c.run(r, st, rel, &o)
	c.approve(ended, version)
	c.wait(ended, "PIN for "+alice)
	c.typeText(yubiKeyPIN)
	c.wait(ended, "REFUSED", "rule sign", "the yubikey stopped answering", "insert the key and try again")
	c.wait1(ended)
	r.OnTouch.Store(nil)
	o.Refused(t, appliance.RuleSign, "insert the key and try again")

	// Reinserted, the same bytes are signed.
	r.Env.WaitGone(t, r.Card)
	r.Env.Insert(t, r.Card, 0)
	c = newConsole(t)
	ended = c.run(r, st, rel, &o)
	c.approve(ended, version)
	c.wait(ended, "PIN for "+alice)
	c.typeText(yubiKeyPIN)
	c.wait(ended, "PIN for "+bob)
	c.typeText(tpmPIN)
	c.wait(ended, "SIGNED", "Signatures 2")
	c.wait1(ended)
	o.Response(t)
}
