package tui

import (
	"fmt"
	"strings"

	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
)

// doneScreen is the end of a ceremony: what was signed and where the record
// went, or why it was refused.
type doneScreen struct {
	root *tview.TextView
}

func newDoneScreen() *doneScreen {
	tv := tview.NewTextView().SetDynamicColors(true).SetWrap(true)
	tv.SetBorder(true).SetTitle(" 7 done ")
	return &doneScreen{root: tv}
}

func (s *doneScreen) update(st appliance.State, ex ExportStatus) {
	var b strings.Builder
	if st.Refusal != nil {
		fmt.Fprintf(&b, "[white:red] REFUSED [-:-] at %s, rule %s\n\n%s\n\n", st.Refusal.Step, st.Refusal.Rule, Escape(st.Refusal.Reason))
		if len(st.Signed) == 0 {
			b.WriteString("Nothing was signed.\n")
		} else {
			fmt.Fprintf(&b, "%d signature(s) were made but no response left the appliance; the ledger keeps this version for these bytes.\n", len(st.Signed))
		}
		s.root.SetText(b.String())
		return
	}
	if st.Step == appliance.StepExportFailed {
		fmt.Fprintf(&b, "[black:yellow] SIGNED, NOT EXPORTED [-:-] %s version %d\n\n", Escape(st.Role), st.Version)
		if n := len(st.ExportFailures); n > 0 {
			fmt.Fprintf(&b, "%s\n\n", Escape(st.ExportFailures[n-1]))
		}
		fmt.Fprintf(&b, "Fingerprint  [black:white] %s [-:-]\nKept as      %s in the state directory\n\n", Escape(st.Fingerprint), Escape(st.Kept))
		fmt.Fprintf(&b, "Nothing needs to be signed again. Write the response out with:\n  airlock-appliance export --state DIR --ceremony %s --out NEW_FOLDER\n", Escape(st.ID))
		s.root.SetText(b.String())
		return
	}
	fmt.Fprintf(&b, "[black:green] SIGNED [-:-] %s version %d\n\n", Escape(st.Role), st.Version)
	fmt.Fprintf(&b, "Fingerprint  [black:white] %s [-:-]\nsha256       %s\n", Escape(st.Fingerprint), Escape(st.SHA256))
	var who []string
	for _, a := range st.Approvals {
		who = append(who, Escape(a.Holder))
	}
	fmt.Fprintf(&b, "Approved by  %s\nSignatures   %d\n", strings.Join(who, ", "), len(st.Signed))
	where := st.Export
	if where == "" {
		where = ex.Path
	}
	fmt.Fprintf(&b, "Response and ceremony record: %s\n", Escape(where))
	if st.RecordSHA256 != "" {
		fmt.Fprintf(&b, "Record sha256 %s\n", Escape(st.RecordSHA256))
	}
	b.WriteString("\nCarry the response to the online side: airlock combine, then airlock verify.\n")
	if len(ex.Response) > 0 {
		b.WriteString("Press q to show the response as an animated QR code instead.\n")
	}
	s.root.SetText(b.String())
}
