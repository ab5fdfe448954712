package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"airlock.dev/airlock/internal/appdemo"
	"airlock.dev/airlock/transfer/ur"
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
	s.wait("> 20")
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
	s.wait("> 20")
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
	s.wait("> 20")
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

// cellAt returns the style of the first cell of the screen line holding
// text, and the line.
func (s *simCeremony) lineStyle(text string) (tcell.Style, string, bool) {
	cells, w, h := s.scr.GetContents()
	for y := 0; y < h; y++ {
		var line strings.Builder
		for x := 0; x < w; x++ {
			line.WriteString(string(cells[y*w+x].Runes))
		}
		l := line.String()
		if i := strings.Index(l, text); i >= 0 {
			// The cell where text starts (runes before it are one cell each
			// on this screen: box drawing and ASCII).
			x := len([]rune(l[:i]))
			return cells[y*w+x].Style, l, true
		}
	}
	return tcell.StyleDefault, "", false
}

// The review of the demo release at 80×25: approvals always in view, a
// file list with counts and risk markers that opens the diff, next file and
// next risk keys, search, +/- prefixes in colour, digit keys for tabs; the
// question under it shrinks to its title while the holder reads.
func TestTUIReviewAt80x25(t *testing.T) {
	s := startSim(t, nil)
	s.wait("> 20")
	s.key(tcell.KeyEnter)
	alice, bob := s.demo.KeyHolders[0], s.demo.KeyHolders[1]
	s.wait("approve sigstore version 1 - " + alice)
	s.key(tcell.KeyEscape) // look at the review
	screen := s.wait("Needs 2 signatures from 2 different holders")
	saveScreen(t, "review-80x25-1-summary", screen)
	for _, want := range []string{"[ ] " + alice + "  [ ] " + bob, "0 of 2 approved", "1 summary 2 files 3 diff 4 metadata 5 provenance 6 risks",
		"fingerprint", "136 changed files, 1 with risk signals", "approve sigstore version 1 - " + alice} {
		if !strings.Contains(screen, want) {
			t.Errorf("review lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, "y  approve and sign") {
		t.Errorf("the question did not shrink while the review is read:\n%s", screen)
	}
	// Files: counts and risk markers; Enter opens the diff at the file.
	s.press('2')
	screen = s.wait("changed +152 -132   README.md")
	saveScreen(t, "review-80x25-2-files", screen)
	if !strings.Contains(screen, "removed +0 -17      bin/sigstore.js") {
		t.Errorf("file list lacks a removed file with its counts:\n%s", screen)
	}
	s.key(tcell.KeyDown)
	s.key(tcell.KeyEnter)
	screen = s.wait("removed bin/sigstore.js")
	if !strings.Contains(screen, "3 diff") || strings.Index(screen, "removed bin/sigstore.js") > strings.Index(screen, "removed dist/ca/format.d.ts") {
		t.Errorf("Enter did not open the diff at the file:\n%s", screen)
	}
	s.press(']')
	s.waitTop("removed dist/ca/format.d.ts")
	s.press('[')
	s.waitTop("removed bin/sigstore.js")
	// Next risk: the first file with a risk signal.
	s.press('!')
	screen = s.waitTop("changed package.json")
	saveScreen(t, "review-80x25-3-diff-risk", screen)
	// +/- prefixes, in green and red.
	for prefix, colour := range map[string]tcell.Color{`+  "version": "2.0.0"`: tcell.ColorGreen, `-  "version": "1.3.0"`: tcell.ColorRed} {
		st, line, ok := s.lineStyle(prefix)
		if !ok {
			t.Fatalf("diff lacks %q:\n%s", prefix, screen)
		}
		if fg, _, _ := st.Decompose(); fg != colour {
			t.Errorf("%q in %v, want %v", line, fg, colour)
		}
	}
	// Search.
	s.press('/')
	s.typeText("verifyChain")
	s.key(tcell.KeyEnter)
	s.waitTop("-export declare function verifyChain")
	// Digit keys pick tabs; the approvals stay in view on every tab.
	s.press('5')
	screen = s.wait("VERIFIED")
	if !strings.Contains(screen, "0 of 2 approved") {
		t.Errorf("approvals not in view on the provenance tab:\n%s", screen)
	}
	s.key(tcell.KeyTab)
	s.approve()
	screen = s.wait("[x] " + alice)
	if !strings.Contains(screen, "1 of 2 approved") {
		t.Errorf("roll call does not show alice's approval:\n%s", screen)
	}
	s.wait("approve sigstore version 1 - " + bob)
	s.approve()
	s.wait("SIGNED")
	s.key(tcell.KeyEnter)
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
}

// waitTop waits until the first line under the review's tab bar starts
// with prefix.
func (s *simCeremony) waitTop(prefix string) string {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		txt := s.text()
		lines := strings.Split(txt, "\n")
		for i, l := range lines {
			if strings.Contains(l, "6 risks") && i+1 < len(lines) && strings.HasPrefix(strings.TrimPrefix(lines[i+1], "\u2551"), prefix) {
				return txt
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the review never showed %q at the top; it shows:\n%s", prefix, txt)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// saveScreen keeps a capture for the documentation when
// AIRLOCK_WRITE_SCREENS is set.
func saveScreen(t *testing.T, name, screen string) {
	if os.Getenv("AIRLOCK_WRITE_SCREENS") == "" {
		return
	}
	dir := filepath.Join("..", "..", "docs", "screens")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(screen), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A typo in a key URI is a usage error before anything starts, not a
// refusal after the review; keys given with --key are listed.
func TestKeyTypoRefusedAtStart(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--state", t.TempDir(), "--out", "o", "--key", "yubikey:serial=12x;slot=9c"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "--key yubikey:serial=12x;slot=9c:") || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	ks, err := keyStatus([]string{"yubikey:serial=12345678;slot=9c", "tpm:handle=0x81000010"}, false)
	if err != nil || len(ks) != 2 || ks[0].URI != "yubikey:serial=12345678;slot=9c" {
		t.Fatalf("key status %+v %v", ks, err)
	}
	if _, err := keyStatus([]string{"file:alice.pem"}, false); err == nil || !strings.Contains(err.Error(), "software keys sign only with --dev") {
		t.Fatalf("software key without --dev: %v", err)
	}
}

// demoStick puts the demo bundle on a FAT32 image, as CI hands it over.
func demoStick(t *testing.T, d *appdemo.Demo) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "stick.img")
	if o, err := exec.Command("mkfs.vfat", "-F", "32", "-n", "TRANSFER", "-C", img, "40960").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat (dosfstools, installed by scripts/install-test-deps.sh): %v %s", err, o)
	}
	if o, err := exec.Command("mcopy", "-s", "-i", img, d.Bundle, "::").CombinedOutput(); err != nil {
		t.Fatalf("mcopy (mtools, installed by scripts/install-test-deps.sh): %v %s", err, o)
	}
	return img
}

// TestTUIRoutineReleaseKeystrokes counts the keys of the routine
// two-holder release on the terminal ui, from a USB stick as it arrives
// from CI (demo keys: no PINs or touches): the date, the request
// fingerprint compared with the sender's, two approvals, leave.
// scripts/keystrokes.sh prints the count.
func TestTUIRoutineReleaseKeystrokes(t *testing.T) {
	s := startSim(t, func(r *tuiRun, d *appdemo.Demo) { r.bundleDir, r.usbDev = "", demoStick(t, d) })
	req, err := os.ReadFile(filepath.Join(s.demo.Bundle, "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	s.wait("> 20")
	s.key(tcell.KeyEnter)
	s.wait(ur.Fingerprint(req))
	s.approve() // the same as the sender's
	for _, h := range s.demo.KeyHolders {
		s.wait("approve sigstore version 1 - " + h)
		s.approve()
	}
	s.wait("SIGNED")
	s.key(tcell.KeyEnter) // leave
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	t.Logf("routine two-holder release: %d keystrokes beyond PINs and touches (goal: at most 15)", s.keys)
	if s.keys > 15 {
		t.Errorf("routine release took %d keystrokes, goal is at most 15", s.keys)
	}
}

// A request fingerprint the operator does not recognise stops the ceremony
// before the review with that reason; nothing is signed or written.
func TestTUISenderFingerprintDiffers(t *testing.T) {
	s := startSim(t, func(r *tuiRun, d *appdemo.Demo) { r.bundleDir, r.usbDev = "", demoStick(t, d) })
	s.wait("> 20")
	s.key(tcell.KeyEnter)
	s.wait("compare the request fingerprint")
	s.press('r')
	s.key(tcell.KeyEnter)
	s.wait("REFUSED")
	s.key(tcell.KeyEnter)
	err := s.finish()
	if err == nil || !strings.Contains(err.Error(), "was not confirmed as the sender's") {
		t.Fatalf("the ceremony ended with %v, want the refusal for the request fingerprint", err)
	}
	if _, err := os.Stat(filepath.Join(s.demo.Out, "response.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a response was written after the request fingerprint was refused: %v", err)
	}
}

// After a failed export the operator can show the kept response as QR
// codes instead: the ceremony ends signed with the QR animation on screen.
func TestTUIExportFailureOffersQR(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "missing", "signatures")
	s := startSim(t, func(r *tuiRun, _ *appdemo.Demo) { r.out = bad })
	s.approveAll()
	s.wait("export failed: the signed response is kept")
	s.press('3') // show as QR codes
	screen := s.wait("Response as QR")
	if !strings.Contains(screen, "Frame") {
		t.Fatalf("no QR animation:\n%s", screen)
	}
	s.key(tcell.KeyEscape) // back to the done screen
	screen = s.wait("SIGNED")
	if !strings.Contains(screen, "QR codes on the export screen") {
		t.Fatalf("the done screen does not say the response went out as QR codes:\n%s", screen)
	}
	s.key(tcell.KeyEnter)
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
}
