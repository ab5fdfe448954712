package tui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
)

// answer is what a person gave a pending question.
type answer struct {
	text string
	yes  bool
	err  error
}

// request is one pending question, shown under the screen. Only the event
// loop touches it.
type request struct {
	kind  string // ask, confirm, secret
	focus tview.Primitive
	rows  int
	help  string
	ch    chan answer
	// secret is the holder and retries of a PIN request, for the approvals
	// screen.
	secret *appliance.SecretRequest
	done   bool
	// armRefuse, when set, arms the question's own refusal (F10 on a
	// confirmation); otherwise F10 asks the App's refusal confirmation.
	armRefuse func()
}

// answer delivers a and removes the question. It runs on the event loop.
func (r *request) answer(a answer) {
	if r.done {
		return
	}
	r.done = true
	r.ch <- a // buffered
}

// touchPrompt is a key waiting for its holder's touch.
type touchPrompt struct {
	req  appliance.TouchRequest
	text *tview.TextView
}

// ask shows a question built by build on the event loop and waits for the
// answer or ctx.
func (a *App) ask(ctx context.Context, build func(r *request) tview.Primitive) (answer, error) {
	r := &request{ch: make(chan answer, 1)}
	a.queue(func() {
		prim := build(r)
		a.prompt.Clear()
		a.prompt.AddItem(prim, 0, 1, true)
		a.pending = r
		a.app.SetFocus(r.focus)
		a.redraw()
	})
	var got answer
	select {
	case got = <-r.ch:
	case <-ctx.Done():
		got = answer{err: ctx.Err()}
	}
	a.queue(func() {
		r.done = true
		if a.pending == r {
			a.pending = nil
			a.prompt.Clear()
			a.app.SetFocus(a.pages)
			a.redraw()
		}
	})
	return got, got.err
}

// frame wraps a question in a bordered box with a title.
func frame(p tview.Primitive, title string) *tview.Frame {
	f := tview.NewFrame(p).SetBorders(0, 0, 0, 0, 1, 1)
	f.SetBorder(true).SetTitle(" " + title + " ").SetBorderColor(tcell.ColorYellow)
	return f
}

// Show implements appliance.UI.
func (a *App) Show(ctx context.Context, m appliance.Message) {
	a.queue(func() {
		a.messages = append(a.messages, m)
		a.redraw()
	})
}

// Ask implements appliance.UI: an input line, pre-filled with the default.
func (a *App) Ask(ctx context.Context, q appliance.Question) (string, error) {
	got, err := a.ask(ctx, func(r *request) tview.Primitive {
		text := tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetText(Escape(q.Text))
		in := tview.NewInputField().SetLabel("> ").SetText(q.Default)
		in.SetFieldBackgroundColor(tcell.ColorBlue)
		in.SetDoneFunc(func(k tcell.Key) {
			if k == tcell.KeyEnter {
				r.answer(answer{text: in.GetText()})
			}
		})
		box := tview.NewFlex().SetDirection(tview.FlexRow).
			AddItem(text, 0, 1, false).AddItem(in, 1, 0, true)
		r.kind, r.focus, r.rows, r.help = "ask", in, 3+wrapped(Plain(q.Text), 76), "Enter accept"
		return frame(box, Escape(q.Title))
	})
	return got.text, err
}

// Keys of a confirmation: each answer is armed by its own letter and
// taken by Enter, so no single key, and no repeated key, answers.
const (
	keyApprove = 'y'
	keyRefuse  = 'r'
)

// Confirm implements appliance.UI. Nothing answers with one key: y arms
// the Yes answer and r the No answer, each shown in its own colour, and
// Enter takes the armed answer; Enter with nothing armed, or any other
// key, only says what to press. Leaving the question (Esc) disarms it.
// With a Typed text the person types it and presses Enter; a typo says
// what differs and asks again.
func (a *App) Confirm(ctx context.Context, c appliance.Confirmation) (bool, error) {
	got, err := a.ask(ctx, func(r *request) tview.Primitive {
		text := tview.NewTextView().SetDynamicColors(true).SetWrap(true)
		body := Escape(c.Text)
		if c.Fingerprint != "" || c.SHA256 != "" {
			// Two lines: with the 64 hex digits on one line they wrap at 80
			// columns and the dialog, sized by rows, would cut the second.
			body += "\n[black:white] " + Escape(c.Fingerprint) + " [-:-]\nsha256 " + Escape(c.SHA256)
		}
		text.SetText(body)
		keys := tview.NewTextView().SetDynamicColors(true)
		armed := rune(0)
		note := ""
		render := func() {
			t := fmt.Sprintf(" [black:green] %c [-:-] %s    [white:red] %c [-:-] %s", keyApprove, Escape(c.Yes), keyRefuse, Escape(c.No))
			if c.Typed != "" {
				t = fmt.Sprintf(" [white:red] Ctrl-R [-:-] %s", Escape(c.No))
			}
			switch armed {
			case keyApprove:
				t = fmt.Sprintf(" [black:green] Enter: %s [-:-] any other key: not yet", Escape(c.Yes))
			case keyRefuse:
				t = fmt.Sprintf(" [white:red] Enter: %s (nothing is signed) [-:-] any other key: not yet", Escape(c.No))
			}
			if note != "" {
				t = " [yellow]" + Escape(note) + "[-]"
			}
			keys.SetText(t)
		}
		var typed *tview.InputField
		var focus tview.Primitive = keys
		rows := 3 + wrapped(Plain(c.Text), 76) + 2*boolInt(c.Fingerprint != "" || c.SHA256 != "")
		box := tview.NewFlex().SetDirection(tview.FlexRow).AddItem(text, 0, 1, false)
		if c.Typed != "" {
			typed = tview.NewInputField().SetLabel("type " + Escape(c.Typed) + " and Enter to " + Escape(c.Yes) + ": ").SetFieldWidth(len(c.Typed) + 2)
			typed.SetFieldBackgroundColor(tcell.ColorBlue)
			typed.SetDoneFunc(func(k tcell.Key) {
				if k != tcell.KeyEnter {
					return
				}
				if t := typed.GetText(); t != c.Typed {
					note = fmt.Sprintf("typed %q, expected %q: type it again", t, c.Typed)
					typed.SetText("")
					render()
					return
				}
				r.answer(answer{yes: true})
			})
			typed.SetInputCapture(func(ev *tcell.EventKey) *tcell.EventKey {
				if ev.Key() == tcell.KeyCtrlR {
					a.app.SetFocus(keys)
					armed = keyRefuse
					render()
					return nil
				}
				return ev
			})
			focus = typed
			box.AddItem(typed, 1, 0, true)
			rows++
		}
		keys.SetInputCapture(func(ev *tcell.EventKey) *tcell.EventKey {
			switch {
			case ev.Key() == tcell.KeyEnter && armed == keyApprove && typed == nil:
				r.answer(answer{yes: true})
			case ev.Key() == tcell.KeyEnter && armed == keyRefuse:
				r.answer(answer{yes: false})
			case ev.Key() == tcell.KeyRune && unicode.ToLower(ev.Rune()) == keyApprove && typed == nil:
				armed, note = keyApprove, ""
			case ev.Key() == tcell.KeyRune && unicode.ToLower(ev.Rune()) == keyRefuse:
				armed, note = keyRefuse, ""
			default:
				armed = 0
				if typed != nil {
					a.app.SetFocus(typed)
					note = "type the text, then Enter"
				} else {
					note = fmt.Sprintf("press %c then Enter to %s, or %c then Enter to %s", keyApprove, c.Yes, keyRefuse, c.No)
				}
			}
			render()
			return nil
		})
		keys.SetBlurFunc(func() { armed = 0; render() })
		render()
		box.AddItem(keys, 1, 0, typed == nil)
		title := Escape(c.Title)
		if c.Holder != "" {
			title += " - " + Escape(c.Holder)
		}
		r.kind, r.focus, r.rows = "confirm", focus, rows
		r.help = fmt.Sprintf("%c Enter %s, %c Enter %s", keyApprove, Escape(c.Yes), keyRefuse, Escape(c.No))
		if typed != nil {
			r.help = "type, Enter " + Escape(c.Yes) + ", Ctrl-R Enter " + Escape(c.No)
		}
		r.armRefuse = func() {
			if !keys.HasFocus() {
				a.app.SetFocus(keys) // blurring disarms: focus first
			}
			armed, note = keyRefuse, ""
			render()
		}
		return frame(box, title)
	})
	return got.yes && err == nil, err
}

// Secret implements appliance.UI: a masked PIN field with the retries left.
// The typed text is handed over once and the field is cleared.
func (a *App) Secret(ctx context.Context, s appliance.SecretRequest) ([]byte, error) {
	got, err := a.ask(ctx, func(r *request) tview.Primitive {
		label := "PIN: "
		in := tview.NewInputField().SetLabel(label).SetMaskCharacter('*').SetFieldWidth(16)
		in.SetFieldBackgroundColor(tcell.ColorBlue)
		in.SetDoneFunc(func(k tcell.Key) {
			if k == tcell.KeyEnter {
				pin := in.GetText()
				in.SetText("")
				r.answer(answer{text: pin})
			}
		})
		retries := "retries unknown"
		if s.Retries >= 0 {
			retries = fmt.Sprintf("%d tries left", s.Retries)
		}
		info := tview.NewTextView().SetDynamicColors(true).
			SetText(Escape(s.Label) + "  [yellow]" + retries + "[-]")
		box := tview.NewFlex().SetDirection(tview.FlexRow).
			AddItem(info, 1, 0, false).AddItem(in, 1, 0, true)
		r.kind, r.focus, r.rows, r.help = "secret", in, 4, "Enter submit"
		sc := s
		r.secret = &sc
		return frame(box, "PIN for "+Escape(s.Holder))
	})
	if err != nil {
		return nil, err
	}
	return []byte(got.text), nil
}

// WaitTouch implements appliance.UI: a "touch your key" line with a timer
// that counts from r.Started, until the core calls done.
func (a *App) WaitTouch(ctx context.Context, r appliance.TouchRequest) (done func()) {
	stop := make(chan struct{})
	tp := &touchPrompt{req: r, text: tview.NewTextView().SetDynamicColors(true)}
	a.queue(func() {
		a.touch = tp
		if a.pending == nil {
			a.prompt.Clear()
			a.prompt.AddItem(tp.text, 1, 0, false)
		}
		tp.render()
		a.redraw()
	})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				a.queue(tp.render)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(stop) })
		a.queue(func() {
			if a.touch == tp {
				a.touch = nil
				if a.pending == nil {
					a.prompt.Clear()
				}
				a.redraw()
			}
		})
	}
}

// render writes the touch line with the time waited so far.
func (t *touchPrompt) render() {
	waited := time.Since(t.req.Started).Truncate(time.Second)
	if waited < 0 {
		waited = 0
	}
	t.text.SetText(fmt.Sprintf("[black:yellow] TOUCH YOUR KEY [-:-] %s: touch %s now (waiting %s)",
		Escape(t.req.Holder), Escape(t.req.Key), waited))
}

// wrapped estimates the rows text takes wrapped at width columns.
func wrapped(s string, width int) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		n += 1 + len(l)/width
	}
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// MaxChoices caps the options Choose shows; a longer list is cut and says
// so in its last line.
const MaxChoices = 20

// Choose asks the operator to pick one of options with the keyboard (Up,
// Down, Enter, or the option's digit) and returns its index. The options
// are escaped: they may name devices or folders from outside.
func (a *App) Choose(ctx context.Context, title, text string, options []string) (int, error) {
	if len(options) == 0 {
		return -1, fmt.Errorf("%s: nothing to choose from", title)
	}
	if len(options) > MaxChoices {
		options = options[:MaxChoices]
	}
	got, err := a.ask(ctx, func(r *request) tview.Primitive {
		info := tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetText(Escape(text))
		list := tview.NewList().ShowSecondaryText(false).SetHighlightFullLine(true)
		list.SetSelectedBackgroundColor(tcell.ColorBlue).SetSelectedTextColor(tcell.ColorWhite)
		for i, o := range options {
			var short rune
			if i < 9 {
				short = rune('1' + i)
			}
			i := i
			list.AddItem(Escape(o), "", short, func() { r.answer(answer{text: fmt.Sprint(i)}) })
		}
		box := tview.NewFlex().SetDirection(tview.FlexRow).
			AddItem(info, 0, 1, false).AddItem(list, len(options), 0, true)
		r.kind, r.focus, r.help = "choose", list, "Up/Down choose, Enter take"
		r.rows = 2 + wrapped(Plain(text), 76) + len(options)
		return frame(box, Escape(title))
	})
	if err != nil {
		return -1, err
	}
	var i int
	if _, err := fmt.Sscan(got.text, &i); err != nil || i < 0 || i >= len(options) {
		return -1, fmt.Errorf("%s: no option chosen", title)
	}
	return i, nil
}
