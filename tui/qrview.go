package tui

import (
	"context"
	"fmt"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"airlock.dev/airlock/transfer/qr"
	"airlock.dev/airlock/transfer/ur"
)

// qrQuiet is the quiet zone, in modules, drawn around a code on screen. The
// standard asks for four; two keeps version 5 within an 80×25 console and
// scanners read it, since the border is drawn white explicitly.
const qrQuiet = 2

// QRView draws one QR code as half-block cells with explicit black and
// white, so the terminal's colours do not matter. Its part is set by the
// event loop (QRAnimation does this through QueueUpdateDraw).
type QRView struct {
	*tview.Box
	sym  *qr.Symbol
	part string
	err  error
}

// NewQRView returns an empty QR view.
func NewQRView() *QRView { return &QRView{Box: tview.NewBox()} }

// SetPart encodes part (an upper-case UR part) at level M and shows it.
func (v *QRView) SetPart(part string) *QRView {
	v.part = part
	v.sym, v.err = qr.Encode([]byte(part), qr.M)
	return v
}

// Part returns the part shown.
func (v *QRView) Part() string { return v.part }

// Draw draws the code centred in the view, or says the view is too small.
func (v *QRView) Draw(screen tcell.Screen) {
	v.Box.DrawForSubclass(screen, v)
	x, y, w, h := v.GetInnerRect()
	if v.err != nil {
		tview.Print(screen, Escape(v.err.Error()), x, y, w, tview.AlignLeft, tcell.ColorRed)
		return
	}
	if v.sym == nil {
		return
	}
	rows := v.sym.Cells(qrQuiet)
	if len(rows) > h || len(rows[0]) > w {
		tview.Print(screen, fmt.Sprintf("enlarge the terminal: this code needs %d×%d cells", len(rows[0]), len(rows)), x, y, w, tview.AlignLeft, tcell.ColorYellow)
		return
	}
	ox := x + (w-len(rows[0]))/2
	oy := y + (h-len(rows))/2
	for r, row := range rows {
		for c, cell := range row {
			fg, bg := tcell.ColorWhite, tcell.ColorWhite
			if cell.Top {
				fg = tcell.ColorBlack
			}
			if cell.Bottom {
				bg = tcell.ColorBlack
			}
			screen.SetContent(ox+c, oy+r, qr.HalfBlock, nil, tcell.StyleDefault.Foreground(fg).Background(bg))
		}
	}
}

// QRFragmentLen is the UR fragment length that keeps a part within QR
// version 5 at level M (37 modules; 21 rows with the quiet zone), so the
// code fits an 80×25 console with a header and the help bar.
const QRFragmentLen = 40

// QRAnimation cycles the parts of one message through a QRView.
type QRAnimation struct {
	enc         *ur.Encoder
	Fingerprint string
	Parts       int // fragments in the message
}

// NewQRAnimation prepares msg for display at the given fragment length.
func NewQRAnimation(msg []byte, fragmentLen int) (*QRAnimation, error) {
	enc, err := ur.NewEncoder(msg, ur.EncoderOptions{MaxFragmentLen: fragmentLen})
	if err != nil {
		return nil, fmt.Errorf("preparing the qr animation: %w", err)
	}
	return &QRAnimation{enc: enc, Fingerprint: ur.Fingerprint(msg), Parts: enc.SeqLen()}, nil
}

// Next returns the next part to show.
func (a *QRAnimation) Next() string { return a.enc.NextPart() }

// Run shows a new part in v every interval until ctx is done, through
// queue (Application.QueueUpdateDraw). It never touches v itself.
func (a *QRAnimation) Run(ctx context.Context, v *QRView, interval time.Duration, queue func(func()) *tview.Application) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		part := a.Next()
		queue(func() { v.SetPart(part) })
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
