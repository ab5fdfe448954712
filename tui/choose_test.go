package tui

import (
	"context"
	"strings"
	"testing"

	"github.com/gdamore/tcell/v2"

	"airlock.dev/airlock/appliance"
)

func TestChoosePicksWithKeysAndEscapesOptions(t *testing.T) {
	a, scr := simApp(t)
	a.StateChanged(appliance.State{ID: "c1", Step: appliance.StepImport})
	a.SetImport(ImportStatus{Devices: []string{"/dev/sdb  [red]Evil[-] Stick"}, File: "artifacts/x.tgz", Done: 5, Total: 10})
	type result struct {
		i   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		i, err := a.Choose(context.Background(), "import from USB", "Choose the USB stick.",
			[]string{"/dev/sdb  [red]Evil[-] Stick", "/dev/sdc  Plain Stick"})
		got <- result{i, err}
	}()
	s := waitFor(t, scr, "Plain Stick")
	for _, want := range []string{"[red]Evil[-] Stick", "Hashing artifacts/x.tgz", "[####################--------------------] 5 of 10 bytes", "Up/Down choose"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	scr.InjectKey(tcell.KeyDown, 0, tcell.ModNone)
	scr.InjectKey(tcell.KeyEnter, 0, tcell.ModNone)
	r := <-got
	if r.err != nil || r.i != 1 {
		t.Fatalf("Choose = %d, %v; want 1, nil", r.i, r.err)
	}

	// The digit picks directly.
	go func() {
		i, err := a.Choose(context.Background(), "pick the bundle", "Choose one.", []string{"first", "second", "third"})
		got <- result{i, err}
	}()
	waitFor(t, scr, "third")
	scr.InjectKey(tcell.KeyRune, '3', tcell.ModNone)
	if r := <-got; r.err != nil || r.i != 2 {
		t.Fatalf("Choose = %d, %v; want 2, nil", r.i, r.err)
	}

	// F10 then Enter refuses.
	go func() {
		i, err := a.Choose(context.Background(), "refuse me", "Choose.", []string{"a"})
		got <- result{i, err}
	}()
	waitFor(t, scr, "refuse me")
	scr.InjectKey(tcell.KeyF10, 0, tcell.ModNone)
	scr.InjectKey(tcell.KeyEnter, 0, tcell.ModNone)
	if r := <-got; r.err == nil {
		t.Fatal("F10 did not refuse the choice")
	}
	if _, err := a.Choose(context.Background(), "empty", "", nil); err == nil {
		t.Fatal("Choose with no options did not fail")
	}
}
