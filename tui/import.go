package tui

import (
	"fmt"
	"strings"

	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
)

// importScreen shows where a bundle comes from and how far reading it got.
type importScreen struct {
	root *tview.TextView
}

func newImportScreen() *importScreen {
	tv := tview.NewTextView().SetDynamicColors(true).SetWrap(true)
	tv.SetBorder(true).SetTitle(" 2 import: read the release bundle ")
	return &importScreen{root: tv}
}

// progressBar draws done/total as a bar of width cells, ASCII only.
func progressBar(done, total int64, width int) string {
	if total <= 0 || width <= 0 {
		return ""
	}
	if done > total {
		done = total
	}
	n := int(done * int64(width) / total)
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

func (s *importScreen) update(st appliance.State, imp ImportStatus) {
	var b strings.Builder
	if len(imp.Devices) > 0 {
		b.WriteString("Sources:\n")
		for _, d := range imp.Devices {
			fmt.Fprintf(&b, "  %s\n", Escape(d))
		}
	}
	if imp.File != "" {
		fmt.Fprintf(&b, "\nHashing %s\n%s %d of %d bytes\n", Escape(imp.File),
			Escape(progressBar(imp.Done, imp.Total, 40)), imp.Done, imp.Total)
	}
	if imp.QR {
		fmt.Fprintf(&b, "\nScanning QR codes: %.0f%%, %d frames seen\nMessage fingerprint: [::b]%s[::-]\n",
			imp.Percent, imp.Frames, Escape(imp.Fingerprint))
	}
	if st.Source != "" {
		fmt.Fprintf(&b, "\nRead from %s: %s of role %s\n", Escape(st.Source), Escape(st.Kind), Escape(st.Role))
	}
	if b.Len() == 0 {
		b.WriteString("Waiting for a release bundle: insert the USB stick, or choose the source below.\n")
	}
	s.root.SetText(b.String())
}
