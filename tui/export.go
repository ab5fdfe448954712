package tui

import (
	"context"
	"fmt"
	"time"

	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
)

// qrSideWidth is the width of the text column beside the QR code.
const qrSideWidth = 30

// exportScreen shows where the signatures went, or animates the signature
// response as QR codes with its fingerprint and a frame counter. The code
// takes the left of the screen and the text a column on the right, so an
// 80×25 console still fits a version 4 code.
type exportScreen struct {
	root *tview.Flex
	text *tview.TextView
	qr   *QRView
	on   bool // the QR is shown
}

func newExportScreen() *exportScreen {
	s := &exportScreen{text: tview.NewTextView().SetDynamicColors(true).SetWrap(true), qr: NewQRView()}
	s.root = tview.NewFlex().SetDirection(tview.FlexRow).AddItem(s.text, 0, 1, false)
	s.root.SetBorder(true).SetTitle(" 6 export: the signature response leaves the appliance ")
	return s
}

func (s *exportScreen) update(st appliance.State, ex ExportStatus) {
	t := ""
	if st.Fingerprint != "" {
		t += fmt.Sprintf("Signed [black:white] %s [-:-]\nsha256 %s\n", Escape(st.Fingerprint), Escape(st.SHA256))
	}
	if st.Kept != "" {
		t += "Kept on the appliance as " + Escape(st.Kept) + "\n"
	}
	if n := len(st.ExportFailures); n > 0 && st.Export == "" {
		t += "[yellow]" + Escape(st.ExportFailures[n-1]) + "[-]\nNothing needs to be signed again.\n"
	}
	if ex.Path != "" {
		t += "Written to " + Escape(ex.Path)
		if ex.ReadBack {
			t += " [green](read back, matches)[-]"
		}
		t += "\n"
	}
	if a := s.qr.Animation(); s.on && a != nil {
		t += fmt.Sprintf("\nResponse as QR: %d bytes, %d parts\nFrame %d\n\nFingerprint\n[black:white] %s [-:-]\n\nScan until the receiver shows the same words.\n",
			len(s.qr.msg), a.Parts, a.Frames, Escape(a.Fingerprint))
	}
	s.text.SetText(t)
}

// showQR lays the screen out for the animated QR.
func (s *exportScreen) showQR(msg []byte) {
	s.qr.SetMessage(msg)
	if !s.on {
		s.root.Clear()
		s.root.SetDirection(tview.FlexColumn).
			AddItem(s.qr, 0, 1, false).
			AddItem(s.text, qrSideWidth, 0, false)
		s.on = true
	}
}

// syncQR animates the signature response while the export screen is shown
// and stops the animation when it is not. It runs on the event loop.
func (a *App) syncQR() {
	want := a.current() == pageExport && len(a.export.Response) > 0
	if !want {
		a.stopQR()
		return
	}
	if a.qrCancel != nil {
		return
	}
	a.startQR(a.export.Response)
}

// stopQR ends the animation, if any.
func (a *App) stopQR() {
	if a.qrCancel != nil {
		a.qrCancel()
		a.qrCancel = nil
	}
}

// startQR begins animating msg on the export screen. It runs on the event
// loop; a ticker goroutine queues each step, which advances the view on
// the event loop (the view re-sizes its fragments when drawn).
func (a *App) startQR(msg []byte) {
	a.stopQR()
	s := a.exports
	s.showQR(msg)
	ctx, cancel := context.WithCancel(a.ctx)
	a.qrCancel = cancel
	go func(interval time.Duration) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			a.queue(func() {
				if ctx.Err() == nil {
					s.qr.Advance()
					s.update(a.state, a.export)
				}
			})
		}
	}(a.opts.QRInterval)
}
