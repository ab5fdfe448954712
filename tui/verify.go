package tui

import (
	"fmt"
	"strings"

	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
)

// verifyScreen shows what verification checked: passed, or refused and why.
type verifyScreen struct {
	root *tview.TextView
}

func newVerifyScreen() *verifyScreen {
	tv := tview.NewTextView().SetDynamicColors(true).SetWrap(true)
	tv.SetBorder(true).SetTitle(" 3 verify: chain, metadata, ledger, provenance ")
	return &verifyScreen{root: tv}
}

func (s *verifyScreen) update(st appliance.State) {
	var b strings.Builder
	switch {
	case st.Refusal != nil:
		fmt.Fprintf(&b, "[white:red] REFUSED [-:-] at %s, rule %s\n\n%s\n\n", st.Refusal.Step, st.Refusal.Rule, Escape(st.Refusal.Reason))
		b.WriteString("Nothing was signed. Take the bundle back to CI and fix what the reason names;\ndo not try to work around it on the appliance.\n")
	case st.Review != nil:
		b.WriteString("[black:green] VERIFIED [-:-] everything below passed\n\n")
	default:
		b.WriteString("Verifying...\n")
	}
	if r := st.Review; r != nil {
		fmt.Fprintf(&b, "[green]pass[-] chain of trust from the pinned root to %s (delegated by %s)\n", Escape(r.Role), Escape(r.Delegator))
		fmt.Fprintf(&b, "[green]pass[-] version %d -> %d, expires %s\n", r.OldVersion, r.NewVersion, r.NewExpires.UTC().Format("2006-01-02"))
		for _, art := range r.Artifacts {
			if art.BytesVerified {
				fmt.Fprintf(&b, "[green]pass[-] bytes of %s match length and hashes\n", Escape(art.Target))
			} else {
				fmt.Fprintf(&b, "[yellow]info[-] bytes of %s not in the bundle\n", Escape(art.Target))
			}
			if p := art.Provenance; p != nil {
				for _, c := range p.Checks {
					mark := "[green]pass[-]"
					if !c.OK {
						mark = "[red]FAIL[-]"
					}
					fmt.Fprintf(&b, "%s provenance %s: %s\n", mark, Escape(c.Name), Escape(c.Detail))
				}
			}
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "[yellow]warning[-] %s\n", Escape(w))
		}
	}
	s.root.SetText(b.String())
}
