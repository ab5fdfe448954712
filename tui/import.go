package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
)

// importScreen shows where a bundle comes from and how far reading it got.
type importScreen struct {
	root *tview.TextView
	// The reading under way, for the time left: when it started and the
	// total it was started with.
	started time.Time
	total   int64
	last    int64
}

func newImportScreen() *importScreen {
	tv := tview.NewTextView().SetDynamicColors(true).SetWrap(true)
	tv.SetBorder(true).SetTitle(" 2 import: read the release bundle ")
	return &importScreen{root: tv}
}

// timeLeft estimates the time left from the rate so far: ", about 12s
// left" once a second has passed, ", done" at the end.
func (s *importScreen) timeLeft(done, total int64, now time.Time) string {
	if total != s.total || done < s.last || s.started.IsZero() {
		s.started, s.total = now, total
	}
	s.last = done
	if total <= 0 {
		return ""
	}
	if done >= total {
		return ", done"
	}
	elapsed := now.Sub(s.started)
	if done <= 0 || elapsed < time.Second {
		return ""
	}
	left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
	return fmt.Sprintf(", about %s left", left.Round(time.Second))
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
		fmt.Fprintf(&b, "\nHashing %s\n%s %d of %d bytes%s\n", Escape(imp.File),
			Escape(progressBar(imp.Done, imp.Total, 40)), imp.Done, imp.Total, s.timeLeft(imp.Done, imp.Total, time.Now()))
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
