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

	// A whole message (SetMessage), animated with fragments sized to the
	// view when it was last drawn at fitW×fitH.
	msg        []byte
	anim       *QRAnimation
	fitW, fitH int
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
	v.fit(w, h)
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
// code fits an 80×25 console with a header and the help bar. Views showing
// a whole message (SetMessage) choose their own length from their size.
const QRFragmentLen = 40

// qrWorstSeqNum is the sequence number used to size parts: its digits and
// its CBOR encoding are as long as any an animation reaches in practice,
// so later parts never need a larger code than the one measured.
const qrWorstSeqNum = 99999

// QRAnimation cycles the parts of one message through a QRView.
type QRAnimation struct {
	enc         *ur.Encoder
	Fingerprint string
	Parts       int // fragments in the message
	Frames      int // parts returned by Next so far
}

// NewQRAnimation prepares msg for display at the given fragment length.
func NewQRAnimation(msg []byte, fragmentLen int) (*QRAnimation, error) {
	enc, err := ur.NewEncoder(msg, ur.EncoderOptions{MaxFragmentLen: fragmentLen, MinFragmentLen: min(fragmentLen, ur.DefaultMinFragmentLen)})
	if err != nil {
		return nil, fmt.Errorf("preparing the qr animation: %w", err)
	}
	return &QRAnimation{enc: enc, Fingerprint: ur.Fingerprint(msg), Parts: enc.SeqLen()}, nil
}

// FragmentLen is the length of the message's fragments.
func (a *QRAnimation) FragmentLen() int { return a.enc.FragmentLen() }

// Next returns the next part to show.
func (a *QRAnimation) Next() string { a.Frames++; return a.enc.NextPart() }

// fits reports whether every part of a fits in cols×rows cells.
func (a *QRAnimation) fits(cols, rows int) bool {
	sym, err := qr.Encode([]byte(a.enc.PartString(qrWorstSeqNum)), qr.M)
	if err != nil {
		return false
	}
	n := sym.Size() + 2*qrQuiet
	return n <= cols && (n+1)/2 <= rows
}

// fitQRAnimation prepares msg with the longest fragments (at most
// ur.DefaultMaxFragmentLen) whose codes fit in cols×rows cells, or reports
// that none do.
func fitQRAnimation(msg []byte, cols, rows int) (*QRAnimation, bool) {
	var best *QRAnimation
	lo, hi := 1, ur.DefaultMaxFragmentLen
	for lo <= hi {
		mid := (lo + hi) / 2
		a, err := NewQRAnimation(msg, mid)
		switch {
		case err != nil: // too many fragments: longer ones are needed
			lo = mid + 1
		case a.fits(cols, rows):
			best, lo = a, mid+1
		default:
			hi = mid - 1
		}
	}
	return best, best != nil
}

// SetMessage makes v animate msg (Advance shows the next part), choosing
// the fragment length when drawn so that the code fits the view: smaller
// on a console, larger on a big terminal. It runs on the event loop.
func (v *QRView) SetMessage(msg []byte) *QRView {
	v.msg = append([]byte(nil), msg...)
	v.anim, v.fitW, v.fitH = nil, -1, -1
	return v
}

// Advance shows the next part of the message set by SetMessage.
func (v *QRView) Advance() {
	if v.anim != nil {
		v.SetPart(v.anim.Next())
	}
}

// Animation is the animation of the message shown, nil before the view is
// first drawn or when it is too small for any code.
func (v *QRView) Animation() *QRAnimation { return v.anim }

// fit sizes the animation of the message to w×h cells.
func (v *QRView) fit(w, h int) {
	if v.msg == nil || (w == v.fitW && h == v.fitH) {
		return
	}
	v.fitW, v.fitH = w, h
	a, ok := fitQRAnimation(v.msg, w, h)
	if !ok {
		v.anim, v.sym, v.part = nil, nil, ""
		v.err = fmt.Errorf("enlarge the terminal: %d×%d cells are too few for a qr code", w, h)
		return
	}
	if v.anim != nil && v.anim.FragmentLen() == a.FragmentLen() {
		return
	}
	v.anim = a
	v.SetPart(a.Next())
}

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
