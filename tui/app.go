// Package tui is the appliance's terminal user interface: a thin tview view
// over package appliance. It renders the appliance.State it is handed and
// forwards key presses; no ceremony logic lives here.
//
// App implements appliance.UI and appliance.Listener. Those methods are
// called from the ceremony's goroutine: they touch widgets only through
// Application.QueueUpdateDraw and block on channels for answers. Key
// callbacks run on the event loop and never call QueueUpdateDraw.
//
// Every string that may come from a release bundle goes through Escape
// before it reaches a widget. The screens work on an 80×25 Linux console
// (TERM=linux, 16 colours, keyboard only, no glyphs a console font lacks,
// apart from the QR half block) and use the space of larger terminals.
//
// Keys, on every screen: Esc goes back to the previous screen (nothing is
// lost; a pending question stays pending), F10 then Enter refuses the
// ceremony, Tab moves between a screen and the question under it. No
// single key approves or refuses: a confirmation takes y then Enter to
// approve, r then Enter to refuse.
package tui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm"
)

var (
	_ appliance.UI       = (*App)(nil)
	_ appliance.Listener = (*App)(nil)
)

// Status is what the start screen shows about the appliance itself. The
// program that wires the appliance fills it in.
type Status struct {
	RootVersion int64
	RootExpires time.Time
	Dev         bool // development mode: software keys may sign
	// Keys are the signing keys and cards found, with their holders.
	Keys []KeyStatus
	TPM  string // e.g. "TPM 2.0 present", "no TPM"
	// Expiring lists roles whose metadata expires soon ("targets expires
	// 2025-01-02 (in 12 days)"); the start screen shows them as warnings.
	Expiring []string
	StateDir string
}

// KeyStatus is one key found on the appliance.
type KeyStatus struct {
	URI    string
	Holder string
	Demo   bool // a development key, labelled DEMO on screen
}

// ImportStatus is what the import screen shows while a bundle is read.
type ImportStatus struct {
	Devices []string // USB devices or folders offered
	// File being hashed and progress in bytes.
	File        string
	Done, Total int64
	// QR scanning: percent complete, frames seen, message fingerprint.
	QR          bool
	Percent     float64
	Frames      int
	Fingerprint string
}

// ExportStatus is what the export screen shows.
type ExportStatus struct {
	Path     string // where the response was written
	ReadBack bool   // the written files were read back and match
	Response []byte // the signature response, shown as an animated QR when set
	// ShowQR opens the export screen with the QR animation as soon as the
	// ceremony is done (the operator chose QR as the export).
	ShowQR bool
}

// Options configure an App.
type Options struct {
	// Refuse is called when the operator refuses the ceremony (F10) while
	// no question is pending; it should cancel the ceremony's context.
	Refuse func()
	// Quit is called when the ceremony is over and the operator leaves.
	Quit func()
	// QRInterval is the time each QR part is shown (default 250 ms).
	QRInterval time.Duration
	// ExportQR opens the export screen with the response as an animated
	// QR as soon as a signed ceremony is done (q does so otherwise).
	ExportQR bool
}

// App is the terminal UI. Create it with New, run it with Run.
type App struct {
	app  *tview.Application
	opts Options

	// Everything below is owned by the event loop.
	state   appliance.State
	status  Status
	imp     ImportStatus
	export  ExportStatus
	pages   *tview.Pages
	header  *tview.TextView
	message *tview.TextView
	help    *tview.TextView
	prompt  *tview.Flex // holds the pending question, if any
	layout  *tview.Flex
	history []string // screens visited, newest last
	pending *request
	touch   *touchPrompt
	// refuseArmed: F10 was pressed; Enter now refuses, any other key
	// continues.
	refuseArmed bool

	start    *startScreen
	imports  *importScreen
	verify   *verifyScreen
	review   *reviewScreen
	approve  *approvalsScreen
	exports  *exportScreen
	done     *doneScreen
	messages []appliance.Message

	qrCancel context.CancelFunc
	ctx      context.Context // cancelled by Stop: ends the QR animation
	end      context.CancelFunc
	mu       sync.Mutex // guards stopped and updates
	stopped  bool
	updates  []func()
	wake     chan struct{}
}

// Screen names, which are also the pages' names.
const (
	pageStart   = "start"
	pageImport  = "import"
	pageVerify  = "verify"
	pageReview  = "review"
	pageApprove = "approvals"
	pageExport  = "export"
	pageDone    = "done"
)

// New builds the application with every screen.
func New(opts Options) *App {
	if opts.QRInterval <= 0 {
		opts.QRInterval = 250 * time.Millisecond
	}
	a := &App{app: tview.NewApplication(), opts: opts, wake: make(chan struct{}, 1)}
	a.ctx, a.end = context.WithCancel(context.Background())
	go a.pump()
	a.header = tview.NewTextView().SetDynamicColors(true)
	a.header.SetBackgroundColor(tcell.ColorNavy)
	a.message = tview.NewTextView().SetDynamicColors(true)
	a.help = tview.NewTextView().SetDynamicColors(true)
	a.help.SetBackgroundColor(tcell.ColorTeal)
	a.prompt = tview.NewFlex().SetDirection(tview.FlexRow)
	a.pages = tview.NewPages()

	a.start = newStartScreen()
	a.imports = newImportScreen()
	a.verify = newVerifyScreen()
	a.review = newReviewScreen(a.app)
	a.approve = newApprovalsScreen()
	a.exports = newExportScreen()
	a.done = newDoneScreen()
	for _, p := range []struct {
		name string
		prim tview.Primitive
	}{
		{pageStart, a.start.root}, {pageImport, a.imports.root}, {pageVerify, a.verify.root},
		{pageReview, a.review.root}, {pageApprove, a.approve.root}, {pageExport, a.exports.root},
		{pageDone, a.done.root},
	} {
		a.pages.AddPage(p.name, p.prim, true, false)
	}
	a.layout = tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(a.header, 1, 0, false).
		AddItem(a.pages, 0, 1, true).
		AddItem(a.prompt, 0, 0, false).
		AddItem(a.message, 1, 0, false).
		AddItem(a.help, 1, 0, false)
	a.app.SetRoot(a.layout, true)
	a.app.SetInputCapture(a.keys)
	a.show(pageStart)
	a.redraw()
	return a
}

// SetScreen makes the App draw on s (tests use a tcell simulation screen).
func (a *App) SetScreen(s tcell.Screen) { a.app.SetScreen(s) }

// Run runs the event loop until Stop.
func (a *App) Run() error { return a.app.Run() }

// Stop ends the event loop; pending questions are answered with
// hsm.ErrCancelled.
func (a *App) Stop() {
	a.mu.Lock()
	if !a.stopped {
		a.stopped = true
		close(a.wake)
	}
	a.mu.Unlock()
	a.end()
	a.app.Stop()
}

// queue runs f on the event loop and redraws, in the order queued. It does
// not wait: tview's QueueUpdateDraw blocks until the loop runs f, and the
// loop may not be running yet, so a pump goroutine hands updates over.
func (a *App) queue(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	a.updates = append(a.updates, f)
	if len(a.updates) == 1 {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// pump forwards queued updates to the event loop until Stop.
func (a *App) pump() {
	for range a.wake {
		for {
			a.mu.Lock()
			if a.stopped || len(a.updates) == 0 {
				a.mu.Unlock()
				break
			}
			f := a.updates[0]
			a.updates = a.updates[1:]
			a.mu.Unlock()
			a.app.QueueUpdateDraw(f)
		}
	}
}

// SetStatus sets what the start screen shows about the appliance.
func (a *App) SetStatus(s Status) { a.queue(func() { a.status = s; a.redraw() }) }

// SetImport updates the import screen.
func (a *App) SetImport(s ImportStatus) { a.queue(func() { a.imp = s; a.redraw() }) }

// SetExport updates the export screen. A Response is animated as QR
// codes while the export screen is shown: q on the done screen shows it.
func (a *App) SetExport(s ExportStatus) {
	a.queue(func() {
		a.stopQR()
		a.export = s
		a.syncQR()
		a.redraw()
	})
}

// qrAvailable reports whether the ceremony signed and its response can be
// shown as QR codes.
func (a *App) qrAvailable() bool {
	return a.state.Step == appliance.StepDone && a.state.Refusal == nil && len(a.export.Response) > 0
}

// StateChanged implements appliance.Listener: it queues a redraw from s and
// shows the screen of s's step.
func (a *App) StateChanged(s appliance.State) {
	a.queue(func() {
		old := a.state.Step
		a.state = s
		if s.Step != old {
			a.show(pageFor(s.Step))
			if (a.opts.ExportQR || a.export.ShowQR) && a.qrAvailable() {
				a.show(pageExport)
			}
		}
		a.redraw()
	})
}

// pageFor is the screen that shows a step.
func pageFor(s appliance.Step) string {
	switch s {
	case appliance.StepImport:
		return pageImport
	case appliance.StepVerify:
		return pageVerify
	case appliance.StepReview, appliance.StepApprove:
		// Holders approve what they review: the review stays in front
		// while they confirm; the roll call takes over for signing.
		return pageReview
	case appliance.StepSign:
		return pageApprove
	case appliance.StepExport:
		return pageExport
	case appliance.StepDone, appliance.StepRefused, appliance.StepExportFailed:
		return pageDone
	}
	return pageStart
}

// show switches to a screen and remembers it for Esc.
func (a *App) show(name string) {
	if n := len(a.history); n == 0 || a.history[n-1] != name {
		a.history = append(a.history, name)
	}
	a.pages.SwitchToPage(name)
	if a.pending == nil {
		a.app.SetFocus(a.pages)
	}
	a.syncQR()
}

// back shows the previous screen; nothing in the ceremony changes.
func (a *App) back() {
	if len(a.history) < 2 {
		return
	}
	a.history = a.history[:len(a.history)-1]
	a.pages.SwitchToPage(a.history[len(a.history)-1])
	a.app.SetFocus(a.pages)
	a.syncQR()
	a.redraw()
}

// current is the screen shown.
func (a *App) current() string {
	if len(a.history) == 0 {
		return pageStart
	}
	return a.history[len(a.history)-1]
}

// keys handles the keys every screen shares. It runs on the event loop.
func (a *App) keys(ev *tcell.EventKey) *tcell.EventKey {
	if a.refuseArmed {
		a.refuseArmed = false
		if ev.Key() == tcell.KeyEnter {
			a.refuse()
		}
		a.redraw()
		return nil
	}
	switch ev.Key() {
	case tcell.KeyF10:
		if a.state.Step.Final() {
			return nil
		}
		if a.pending != nil && a.pending.armRefuse != nil {
			a.pending.armRefuse()
		} else {
			a.refuseArmed = true
		}
		a.redraw()
		return nil
	case tcell.KeyEscape:
		if a.pending != nil && a.promptFocused() {
			// Leave the question pending and look at the screen again.
			a.app.SetFocus(a.pages)
			a.redraw()
			return nil
		}
		if a.review.searching() {
			return ev
		}
		a.back()
		return nil
	case tcell.KeyTab:
		if a.pending != nil && !a.promptFocused() && !a.review.searching() {
			a.pages.SwitchToPage(a.current())
			a.app.SetFocus(a.pending.focus)
			a.redraw()
			return nil
		}
	case tcell.KeyRune:
		if ev.Rune() == 'q' && a.current() == pageDone && a.pending == nil && a.qrAvailable() {
			a.show(pageExport)
			a.redraw()
			return nil
		}
	case tcell.KeyEnter:
		if a.state.Step.Final() && a.pending == nil && a.opts.Quit != nil {
			a.opts.Quit()
			return nil
		}
		if a.current() == pageReview && a.review.wantsEnter() {
			return ev
		}
		if a.pending != nil && !a.promptFocused() && !a.review.searching() {
			a.app.SetFocus(a.pending.focus)
			a.redraw()
			return nil
		}
	}
	return ev
}

// promptFocused reports whether the pending question has the focus.
func (a *App) promptFocused() bool {
	return a.pending != nil && a.prompt.HasFocus()
}

// refuse answers the pending question with a refusal, or asks the
// ceremony to stop.
func (a *App) refuse() {
	if a.state.Step.Final() {
		return
	}
	if a.pending != nil {
		a.pending.answer(answer{err: fmt.Errorf("refused by the operator: %w", hsm.ErrCancelled)})
		return
	}
	if a.opts.Refuse != nil {
		a.opts.Refuse()
	}
}

// redraw refreshes every text from the current state. It runs on the event
// loop.
func (a *App) redraw() {
	s := a.state
	title := "[::b]AIRLOCK[::-] offline release signing"
	if s.Dev || a.status.Dev {
		title += "  [black:yellow] DEVELOPMENT MODE: DEMO KEYS [-:-]"
	}
	if s.ID != "" {
		id := s.ID
		if len(id) > 16 {
			id = id[:16]
		}
		title += "  " + Escape(id)
	}
	a.header.SetText(title)
	a.start.update(s, a.status)
	a.imports.update(s, a.imp)
	a.verify.update(s)
	a.review.update(s)
	a.approve.update(s, a.pending, a.touch)
	a.exports.update(s, a.export)
	a.done.update(s, a.export)
	if n := len(a.messages); n > 0 {
		m := a.messages[n-1]
		color := "white"
		switch m.Level {
		case appliance.Warning:
			color = "yellow"
		case appliance.Error:
			color = "red"
		}
		a.message.SetText("[" + color + "]" + Escape(m.Text) + "[-]")
	}
	if a.refuseArmed {
		a.help.SetText(" [white:red] Refuse this ceremony? Enter refuses; any other key continues [-:-]")
	} else {
		a.help.SetText(a.helpText())
	}
	rows := 0
	if a.pending != nil {
		rows = a.pending.rows
		if !a.promptFocused() {
			// While the person reads the screen the question shrinks to
			// its title line; Tab brings it back.
			rows = 2
		}
	} else if a.touch != nil {
		rows = 1
	}
	a.layout.ResizeItem(a.prompt, rows, 0)
}

// helpText is the help bar of the screen shown.
func (a *App) helpText() string {
	var keys []string
	if a.pending != nil {
		if a.promptFocused() {
			keys = append(keys, a.pending.help, "Esc see screen")
		} else {
			keys = append(keys, "Tab answer")
		}
	}
	switch a.current() {
	case pageReview:
		keys = append(keys, "1-6 tab", "] [ file", "! risk", "/ find")
	case pageStart, pageVerify, pageApprove, pageDone, pageExport, pageImport:
		if a.current() == pageDone && a.pending == nil && a.qrAvailable() {
			keys = append(keys, "q show as QR")
		}
		keys = append(keys, "Up/Down scroll")
	}
	if len(a.history) > 1 && !a.promptFocused() {
		keys = append(keys, "Esc back")
	}
	if a.state.Step.Final() {
		keys = append(keys, "Enter quit")
	} else {
		keys = append(keys, "F10 Enter refuse")
	}
	return " " + strings.Join(keys, " | ")
}
