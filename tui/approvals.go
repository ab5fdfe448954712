package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
)

// approvalsScreen is the holder roll call: who may sign, who approved, which
// groups are met, and who is being asked now.
type approvalsScreen struct {
	root *tview.TextView
}

func newApprovalsScreen() *approvalsScreen {
	tv := tview.NewTextView().SetDynamicColors(true).SetWrap(true)
	tv.SetBorder(true).SetTitle(" 5 approvals: each holder confirms, enters the PIN, touches the key ")
	return &approvalsScreen{root: tv}
}

func (s *approvalsScreen) update(st appliance.State, pending *request, touch *touchPrompt) {
	var b strings.Builder
	if st.Fingerprint != "" {
		fmt.Fprintf(&b, "Signing [black:white] %s [-:-]  sha256 %s\n", Escape(st.Fingerprint), Escape(st.SHA256))
	}
	n := st.Need
	if n == nil {
		s.root.SetText(b.String() + "\nWaiting for verification.")
		return
	}
	approvedKey := map[string]bool{}
	approvedHolder := map[string]bool{}
	for _, a := range st.Approvals {
		approvedHolder[a.Holder] = true
		for _, id := range a.KeyIDs {
			approvedKey[id] = true
		}
	}
	fmt.Fprintf(&b, "Needs %d signatures from %d different holders; %d approved so far.\n\n",
		n.Threshold, n.MinHolders, len(st.Approvals))
	var holders []string
	for _, k := range n.Keys {
		if !slices.Contains(holders, k.Holder) {
			holders = append(holders, k.Holder)
		}
	}
	for _, h := range holders {
		// The mark is markup; only the holder's name is escaped.
		mark, note := Escape("[ ]"), "insert key"
		if approvedHolder[h] {
			mark, note = "[green]"+Escape("[x]")+"[-]", "[green]approved[-]"
		}
		// Holders approve before anyone signs: while signing, the PIN and
		// touch prompts are what the roll call shows.
		switch {
		case pending != nil && pending.secret != nil && pending.secret.Holder == h:
			note = fmt.Sprintf("[yellow]entering PIN[-] (%s)", retriesText(pending.secret.Retries))
		case touch != nil && touch.req.Holder == h:
			note = "[black:yellow] touch your key [-:-]"
		}
		fmt.Fprintf(&b, " %s %-16s %s\n", mark, Escape(h), note)
		for _, k := range n.Keys {
			if k.Holder == h {
				fmt.Fprintf(&b, "       key %s\n", Escape(short(k.KeyID)))
			}
		}
	}
	if len(n.Groups) > 0 {
		b.WriteString("\nApproval groups:\n")
		for _, g := range n.Groups {
			got := 0
			for _, id := range g.KeyIDs {
				if approvedKey[id] {
					got++
				}
			}
			state := "[yellow]open[-]"
			if got >= g.Min {
				state = "[green]met[-]"
			}
			fmt.Fprintf(&b, "  %-16s %d of %d  %s\n", Escape(g.Name), got, g.Min, state)
		}
	}
	if len(st.Signed) > 0 {
		fmt.Fprintf(&b, "\nSigned by %d keys.\n", len(st.Signed))
	}
	s.root.SetText(b.String())
}

func retriesText(n int) string {
	if n < 0 {
		return "retries unknown"
	}
	return fmt.Sprintf("%d tries left", n)
}

// short abbreviates a key id for the roll call.
func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}
