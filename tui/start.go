package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
)

// startScreen shows the appliance's status and the date to confirm.
type startScreen struct {
	root *tview.TextView
}

func newStartScreen() *startScreen {
	tv := tview.NewTextView().SetDynamicColors(true).SetWrap(true)
	tv.SetBorder(true).SetTitle(" 1 start: appliance status ")
	return &startScreen{root: tv}
}

func (s *startScreen) update(st appliance.State, status Status) {
	var b strings.Builder
	if status.RootVersion > 0 {
		left := status.RootExpires.Sub(time.Now()).Hours() / 24
		fmt.Fprintf(&b, "Pinned root:  version %d, expires %s (in %.0f days)\n",
			status.RootVersion, status.RootExpires.UTC().Format("2006-01-02"), left)
	} else {
		b.WriteString("Pinned root:  [red]none pinned[-]\n")
	}
	if status.StateDir != "" {
		fmt.Fprintf(&b, "State:        %s\n", Escape(status.StateDir))
	}
	tpm := status.TPM
	if tpm == "" {
		tpm = "not checked"
	}
	fmt.Fprintf(&b, "TPM:          %s\n", Escape(tpm))
	fmt.Fprintf(&b, "Keys given:   %d\n", len(status.Keys))
	for _, k := range status.Keys {
		demo := ""
		if k.Demo {
			demo = "[black:yellow] DEMO KEY [-:-] "
		}
		holder := "its holder is read from the signed metadata"
		if k.Holder != "" {
			holder = "held by " + Escape(k.Holder)
		}
		fmt.Fprintf(&b, "  %s%s  %s\n", demo, Escape(k.URI), holder)
	}
	if status.Dev || st.Dev {
		b.WriteString("\n[black:yellow] Development mode [-:-] software keys may sign. Never use it for a real release.\n")
	}
	for _, w := range status.Expiring {
		fmt.Fprintf(&b, "[yellow]warning:[-] %s\n", Escape(w))
	}
	if !st.Date.IsZero() {
		fmt.Fprintf(&b, "\nDate confirmed: [::b]%s[::-]\n", st.Date.Format("2006-01-02"))
	} else {
		b.WriteString("\nThis machine has no network time. Check today's date on a trusted\nsource (phone, newspaper) and confirm it below: expiry is checked against it.\n")
	}
	s.root.SetText(b.String())
}
