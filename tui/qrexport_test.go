package tui

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/transfer/qr"
	"airlock.dev/airlock/transfer/ur"
)

// qrResponse stands in for a signature response: JSON of a realistic size.
func qrResponse() []byte {
	var b bytes.Buffer
	b.WriteString(`{"ceremony":"c0ffee","role":"targets","version":7,"signatures":[`)
	for i := range 3 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"keyid":"%064x","sig":"%0128x"}`, i+1, i*7919+13)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// exportQRApp runs an App of the given size at the done screen of a signed
// ceremony with resp exported, and opens the QR export with q.
func exportQRApp(t *testing.T, w, h int, resp []byte) tcell.SimulationScreen {
	t.Helper()
	scr := tcell.NewSimulationScreen("UTF-8")
	a := New(Options{QRInterval: 20 * time.Millisecond})
	a.SetScreen(scr)
	done := make(chan error, 1)
	go func() { done <- a.Run() }()
	t.Cleanup(func() { a.Stop(); <-done })
	scr.SetSize(w, h)
	a.SetExport(ExportStatus{Path: "/media/out", Response: resp})
	a.StateChanged(appliance.State{Step: appliance.StepDone, Role: "targets", Version: 7, Fingerprint: "ABLE BAKER CHARLIE DOG"})
	s := waitFor(t, scr, "q show as QR")
	if strings.Contains(s, "Frame ") {
		t.Fatal("the done screen shows the QR export before q")
	}
	scr.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	waitFor(t, scr, "Frame ")
	return scr
}

// readQRScreen decodes frames from the screen until the response is
// complete, and checks it and the fingerprint shown.
func readQRScreen(t *testing.T, scr tcell.SimulationScreen, resp []byte) int {
	t.Helper()
	z, err := qr.NewZbar()
	if errors.Is(err, qr.ErrNoZbar) {
		t.Skip("built without cgo: no zbar")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	dec := ur.NewDecoder(ur.Limits{})
	seen := map[string]bool{}
	// A capture taken while the animation swaps frames can read as no
	// code, as a camera misses a frame now and then: a few single misses
	// are allowed, two in a row or more than maxMisses are not.
	const maxMisses = 5
	misses, lastMiss := 0, -2
	for i := 0; i < 5000 && !dec.Done(); i++ {
		got, err := z.Decode(screenQR(scr, 3))
		if err != nil {
			t.Fatalf("read %d: %v\n%s", i, err, screenText(scr))
		}
		if len(got) == 0 && lastMiss != i-1 && misses < maxMisses {
			misses, lastMiss = misses+1, i
			t.Logf("read %d: no code on screen; reading again", i)
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if len(got) != 1 {
			t.Fatalf("read %d: %d codes on screen, want 1 (%d single misses before)\n%s", i, len(got), misses, screenText(scr))
		}
		if !seen[string(got[0])] {
			seen[string(got[0])] = true
			if err := dec.Receive(string(got[0])); err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	out, err := dec.Message()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, resp) {
		t.Fatal("response read back from the screen differs")
	}
	fp := ur.Fingerprint(resp)
	if s := screenText(scr); !strings.Contains(s, fp) {
		t.Errorf("screen lacks the fingerprint %s:\n%s", fp, s)
	}
	return dec.Progress().Fragments
}

func TestExportQRFitsConsoleAndRoundTrips(t *testing.T) {
	resp := qrResponse()
	scr := exportQRApp(t, 80, 25, resp)
	small := readQRScreen(t, scr, resp)

	big := exportQRApp(t, 160, 60, resp)
	large := readQRScreen(t, big, resp)
	if large >= small {
		t.Errorf("a 160×60 terminal uses %d parts, no fewer than 80×25 (%d)", large, small)
	}
}

func TestExportQREscReturnsToDone(t *testing.T) {
	scr := exportQRApp(t, 80, 25, qrResponse())
	scr.InjectKey(tcell.KeyEscape, 0, tcell.ModNone)
	s := waitFor(t, scr, "7 done")
	if strings.Contains(s, "Frame ") {
		t.Errorf("Esc left the QR export shown:\n%s", s)
	}
}

func TestFitQRAnimationFits(t *testing.T) {
	resp := qrResponse()
	for _, sz := range [][2]int{{48, 20}, {37, 19}, {100, 40}, {200, 80}} {
		a, ok := fitQRAnimation(resp, sz[0], sz[1])
		if !ok {
			t.Fatalf("%dx%d: no fit", sz[0], sz[1])
		}
		for range 3 * a.Parts {
			sym, err := qr.Encode([]byte(a.Next()), qr.M)
			if err != nil {
				t.Fatal(err)
			}
			rows := sym.Cells(qrQuiet)
			if len(rows) > sz[1] || len(rows[0]) > sz[0] {
				t.Fatalf("%dx%d: a part needs %dx%d cells", sz[0], sz[1], len(rows[0]), len(rows))
			}
		}
	}
	if _, ok := fitQRAnimation(resp, 20, 10); ok {
		t.Error("a 20x10 view fits a code")
	}
}
