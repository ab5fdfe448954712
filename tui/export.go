package tui

import (
	"context"
	"fmt"

	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
)

// exportScreen shows where the signatures went, or animates them as QR.
type exportScreen struct {
	root *tview.Flex
	text *tview.TextView
	qr   *QRView
	anim *QRAnimation
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
		t += fmt.Sprintf("Signed [black:white] %s [-:-] sha256 %s\n", Escape(st.Fingerprint), Escape(st.SHA256))
	}
	if ex.Path != "" {
		t += "Written to " + Escape(ex.Path)
		if ex.ReadBack {
			t += " [green](read back, matches)[-]"
		}
		t += "\n"
	}
	if s.anim != nil {
		t += fmt.Sprintf("QR: %d parts, fingerprint [::b]%s[::-]: scan until the receiver shows the same words\n", s.anim.Parts, Escape(s.anim.Fingerprint))
	}
	s.text.SetText(t)
}

// startQR begins animating msg on the export screen. It runs on the event
// loop; the animation goroutine queues each frame.
func (a *App) startQR(msg []byte) {
	if a.qrCancel != nil {
		a.qrCancel()
	}
	anim, err := NewQRAnimation(msg, QRFragmentLen)
	if err != nil {
		a.messages = append(a.messages, appliance.Message{Level: appliance.Error, Text: err.Error()})
		return
	}
	s := a.exports
	if s.anim == nil {
		s.root.ResizeItem(s.text, 3, 0)
		s.root.AddItem(s.qr, 0, 1, false)
	}
	s.anim = anim
	s.qr.SetPart(anim.Next())
	ctx, cancel := context.WithCancel(context.Background())
	a.qrCancel = cancel
	go anim.Run(ctx, s.qr, a.opts.QRInterval, func(f func()) *tview.Application {
		a.queue(f)
		return a.app
	})
}
