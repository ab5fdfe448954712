package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"airlock.dev/airlock/internal/appdemo"
	"airlock.dev/airlock/tuf"
	"airlock.dev/airlock/tui"
)

// simCeremony runs the demo ceremony on an 80×25 simulation screen.
type simCeremony struct {
	t    *testing.T
	scr  tcell.SimulationScreen
	demo *appdemo.Demo
	out  bytes.Buffer
	done chan error
	keys int // keystrokes sent
}

// startSim prepares the demo and starts its ceremony on a simulation
// screen; edit changes the run (for example the export folder).
func startSim(t *testing.T, edit func(r *tuiRun, d *appdemo.Demo)) *simCeremony {
	t.Helper()
	d, err := appdemo.Prepare(filepath.Join(t.TempDir(), "demo"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := tuiRun{state: d.StateDir, bundleDir: d.Bundle, out: d.Out, dev: true, keys: d.Keys}
	for i, k := range d.Keys {
		r.status.Keys = append(r.status.Keys, tui.KeyStatus{URI: k, Holder: d.KeyHolders[i], Demo: true})
	}
	if edit != nil {
		edit(&r, d)
	}
	scr := tcell.NewSimulationScreen("UTF-8")
	if err := scr.Init(); err != nil {
		t.Fatal(err)
	}
	scr.SetSize(80, 25)
	s := &simCeremony{t: t, scr: scr, demo: d, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { s.done <- runTUI(ctx, r, &s.out, scr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Error("the terminal ui did not stop")
		}
	})
	return s
}

func (s *simCeremony) text() string {
	cells, w, h := s.scr.GetContents()
	var b strings.Builder
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if r := cells[y*w+x].Runes; len(r) > 0 {
				b.WriteString(string(r))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// wait polls the screen until it shows want.
func (s *simCeremony) wait(want string) string {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		txt := s.text()
		if strings.Contains(txt, want) {
			return txt
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %q; it shows:\n%s", want, txt)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *simCeremony) key(k tcell.Key) {
	s.keys++
	s.scr.InjectKey(k, 0, tcell.ModNone)
	time.Sleep(20 * time.Millisecond)
}

func (s *simCeremony) press(r rune) {
	s.keys++
	s.scr.InjectKey(tcell.KeyRune, r, tcell.ModNone)
	time.Sleep(20 * time.Millisecond)
}

// clear empties the focused input line (the pre-filled date).
func (s *simCeremony) clear() {
	for range 12 {
		s.scr.InjectKey(tcell.KeyBackspace2, 0, tcell.ModNone)
	}
	s.keys++
	time.Sleep(20 * time.Millisecond)
}

func (s *simCeremony) typeText(text string) {
	for _, r := range text {
		s.scr.InjectKey(tcell.KeyRune, r, tcell.ModNone)
	}
	s.keys++ // a typed word counts as one deliberate step
	time.Sleep(20 * time.Millisecond)
}

// finish waits for runTUI to return.
func (s *simCeremony) finish() error {
	s.t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(60 * time.Second):
		s.t.Fatalf("the terminal ui did not end; screen:\n%s", s.text())
	}
	return nil
}

// approveAll confirms the date and has both demo holders approve.
func (s *simCeremony) approveAll() {
	s.t.Helper()
	s.wait("today's date")
	s.key(tcell.KeyEnter)
	for _, h := range s.demo.KeyHolders {
		s.wait("approve sigstore version 1 - " + h)
		s.approve()
	}
}

// approve is one holder's deliberate approval of the pending question.
func (s *simCeremony) approve() {
	s.press('y')
	s.key(tcell.KeyEnter)
}

// An export to a folder that cannot be created after both holders approved
// keeps the signed response, says so, and lets the operator write it to
// another folder without signing again.
func TestTUIExportFailureOffersAnotherFolder(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "missing", "signatures")
	s := startSim(t, func(r *tuiRun, _ *appdemo.Demo) { r.out = bad })
	s.approveAll()
	screen := s.wait("export failed: the signed response is kept")
	if !strings.Contains(screen, "write to another folder") || !strings.Contains(screen, "write to a USB stick") ||
		!strings.Contains(screen, "show as QR codes") {
		t.Fatalf("the retry offer lacks a choice:\n%s", screen)
	}
	if strings.Contains(screen, "Nothing was signed") {
		t.Fatalf("the screen claims nothing was signed:\n%s", screen)
	}
	s.press('1') // write to another folder
	good := filepath.Join(t.TempDir(), "second")
	s.wait("Type the path of a new folder")
	s.typeText(good)
	s.key(tcell.KeyEnter)
	screen = s.wait("SIGNED")
	if !strings.Contains(screen, "second") {
		t.Fatalf("the done screen does not name the new folder:\n%s", screen)
	}
	s.key(tcell.KeyEnter)
	if err := s.finish(); err != nil {
		t.Fatalf("runTUI: %v", err)
	}
	rb, err := os.ReadFile(filepath.Join(good, "response.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := tuf.ParseResponse(rb); err != nil || len(r.Signatures) != 2 {
		t.Fatalf("response %+v %v", r, err)
	}
	if !strings.Contains(s.out.String(), good) {
		t.Fatalf("stdout %q does not name the folder written", s.out.String())
	}
}

// The scripted path: sign with an export folder that cannot be made says
// once that the response is kept, and export writes it without any key.
func TestSignExportFailureThenExportKept(t *testing.T) {
	d, err := appdemo.Prepare(filepath.Join(t.TempDir(), "demo"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	date := time.Now().UTC().Format("2006-01-02")
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"review", "--dev", "--date", date, "--state", d.StateDir, d.Bundle, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("review: %d %s", code, errb.String())
	}
	var rev struct{ SHA256 string }
	if err := json.Unmarshal(out.Bytes(), &rev); err != nil || rev.SHA256 == "" {
		t.Fatalf("review json: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "missing", "out")
	args := []string{"sign", "--dev", "--date", date, "--confirm-fingerprint", rev.SHA256, "--state", d.StateDir, d.Bundle, "--out", bad}
	for _, k := range d.Keys {
		args = append(args, "--key", k)
	}
	out.Reset()
	errb.Reset()
	if code := run(ctx, args, &out, &errb); code != 1 {
		t.Fatalf("sign to a missing folder: exit %d, stderr %s", code, errb.String())
	}
	msg := errb.String()
	if strings.Count(msg, "signed; the response is kept; export failed: ") != 1 || strings.Contains(msg, "Nothing was signed") ||
		!strings.Contains(msg, "airlock-appliance export --state") {
		t.Fatalf("stderr does not say once that the response is kept and how to export it:\n%s", msg)
	}
	out.Reset()
	errb.Reset()
	if code := run(ctx, []string{"export", "--state", d.StateDir, "--list"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "sigstore version 1") {
		t.Fatalf("export --list: %d %q %s", code, out.String(), errb.String())
	}
	good := filepath.Join(t.TempDir(), "again")
	out.Reset()
	if code := run(ctx, []string{"export", "--state", d.StateDir, "--out", good}, &out, &errb); code != 0 {
		t.Fatalf("export: %d %s", code, errb.String())
	}
	rb, err := os.ReadFile(filepath.Join(good, "response.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := tuf.ParseResponse(rb); err != nil || len(r.Signatures) != 2 || r.SignedSHA256 != rev.SHA256 {
		t.Fatalf("exported response %+v %v", r, err)
	}
	// The same folder again is refused, once, with the reason.
	errb.Reset()
	if code := run(ctx, []string{"export", "--state", d.StateDir, "--out", good}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "already exists: give a new folder name") || strings.Count(errb.String(), "\n") != 1 {
		t.Fatalf("export over an existing folder: %d %q", code, errb.String())
	}
}

// Mistakes at the keyboard that used to end the ceremony: Enter twice on
// the approval, Esc to read the review then Tab Enter, a mistyped date.
// Each now only says what to do, and the ceremony signs.
func TestTUIKeyboardMistakesDoNotEndTheCeremony(t *testing.T) {
	s := startSim(t, nil)
	s.wait("today's date")
	s.clear()
	s.typeText("2025-02-30")
	s.key(tcell.KeyEnter)
	screen := s.wait(`"2025-02-30" is not a date: type it as YYYY-MM-DD`)
	if strings.Contains(screen, "REFUSED") {
		t.Fatalf("a mistyped date refused:\n%s", screen)
	}
	s.clear()
	s.typeText(time.Now().UTC().Format("2006-01-02"))
	s.key(tcell.KeyEnter)
	alice, bob := s.demo.KeyHolders[0], s.demo.KeyHolders[1]
	s.wait("approve sigstore version 1 - " + alice)
	s.key(tcell.KeyEnter)
	s.key(tcell.KeyEnter)
	s.wait("press y then Enter to approve and sign, or r then Enter to refuse")
	s.key(tcell.KeyEscape) // read the review
	s.key(tcell.KeyRight)
	s.key(tcell.KeyTab) // back to the question
	s.key(tcell.KeyEnter)
	time.Sleep(100 * time.Millisecond)
	if screen := s.text(); strings.Contains(screen, "REFUSED") || !strings.Contains(screen, "approve sigstore version 1 - "+alice) {
		t.Fatalf("Esc, Tab, Enter ended the question:\n%s", screen)
	}
	s.approve()
	s.wait("approve sigstore version 1 - " + bob)
	s.key(tcell.KeyF10) // a slip of the finger on the refuse key
	s.wait("Enter: refuse (nothing is signed)")
	s.press('n') // "any other key: not yet"
	s.approve()
	s.wait("SIGNED")
	s.key(tcell.KeyEnter)
	if err := s.finish(); err != nil {
		t.Fatalf("runTUI: %v", err)
	}
}

// A deliberate refusal is two distinct keys and says nothing was signed.
func TestTUIRefusalSaysNothingWasSigned(t *testing.T) {
	s := startSim(t, nil)
	s.wait("today's date")
	s.key(tcell.KeyEnter)
	s.wait("approve sigstore version 1 - " + s.demo.KeyHolders[0])
	s.press('r')
	s.wait("Enter: refuse (nothing is signed)")
	s.key(tcell.KeyEnter)
	screen := s.wait("REFUSED")
	if !strings.Contains(screen, "Nothing was signed.") {
		t.Fatalf("refusal before signing does not say nothing was signed:\n%s", screen)
	}
	s.key(tcell.KeyEnter)
	err := s.finish()
	if err == nil || !strings.Contains(err.Error(), "did not confirm the fingerprint") {
		t.Fatalf("runTUI: %v, want the refusal", err)
	}
}
