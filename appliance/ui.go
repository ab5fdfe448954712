package appliance

// The contract between the ceremony core and a user interface.
//
// The core reaches people only through a UI, and reports progress only
// through a Listener. Both are declared here so that the core imports no
// terminal library; tui/ implements them, tests script them, and
// cmd/airlock-appliance wires a concrete UI to a Ceremony.
//
// Rules for implementations:
//
//   - Every string in a Message, Confirmation, SecretRequest, TouchRequest or
//     State that may have come from a release bundle (role names, target
//     paths, notes, provenance facts, diff lines) is untrusted. The core
//     passes it as the bundle's own bytes; render it with content.Visible or
//     content.VisibleLine (escaping control, bidi and zero-width characters)
//     and never through a markup interpreter such as tview colour tags
//     without escaping.
//   - Methods may be called from the ceremony's goroutine while the UI runs
//     its own event loop; an implementation hands the request to its loop and
//     blocks until the person answers or ctx is done. Returning ctx.Err()
//     (or hsm.ErrCancelled) cancels the ceremony step.
//   - Confirm returns true only on an explicit press of the Yes label. A
//     default, a timeout or a closed window is false.
//   - Secret bytes are never logged, displayed or kept: the caller zeroes
//     them after use, and the UI must not keep its own copy.
//   - WaitTouch returns at once; the core calls the returned function when
//     the device stops waiting (touched, failed or cancelled). The UI shows
//     a timer counted from TouchRequest.Started.
//   - Listener.StateChanged receives a copy of the whole State after every
//     transition. It must not block for long and must not call back into the
//     Ceremony; a TUI queues a redraw and returns. Slices in State are
//     shared with the core and must be treated as read-only.

import (
	"context"
	"errors"
	"sync"
	"time"

	"airlock.dev/airlock/hsm"
)

// Level is how loudly a Message is shown.
type Level string

// Message levels.
const (
	Info    Level = "info"
	Warning Level = "warning"
	Error   Level = "error"
)

// Message is one line for the people at the appliance.
type Message struct {
	Level Level  `json:"level"`
	Text  string `json:"text"`
}

// Confirmation asks one person an explicit yes/no question.
type Confirmation struct {
	// Title is a short heading, e.g. "approve sigstore v7".
	Title string `json:"title"`
	// Text is the full question, e.g. "I, alice, checked the fingerprint
	// ACID BETA COLA DATA 3f9a… and approve signing it".
	Text string `json:"text"`
	// Yes and No are the labels of the two answers; never empty.
	Yes string `json:"yes"`
	No  string `json:"no"`
	// Holder is the person who must answer ("" for the operator).
	Holder string `json:"holder,omitempty"`
	// SHA256 and Fingerprint, when set, are the hash of the canonical bytes
	// to be signed and their four-byteword fingerprint, for prominent display.
	SHA256      string `json:"sha256,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Typed, when set, is text the person must type exactly instead of
	// pressing a key (for example the first 8 hex digits of SHA256). A UI
	// that cannot take typed input passes the typed text back through
	// Question instead; Confirm compares it.
	Typed string `json:"typed,omitempty"`
}

// Question asks for a short non-secret value, e.g. today's date.
type Question struct {
	Title string `json:"title"`
	Text  string `json:"text"`
	// Default is pre-filled and returned when the person accepts it.
	Default string `json:"default,omitempty"`
}

// SecretRequest asks a key holder for a PIN.
type SecretRequest struct {
	Holder string `json:"holder"`
	// Key is the key URI (it carries no secret).
	Key string `json:"key"`
	// Label is what is asked, e.g. "PIN of yubikey:serial=…;slot=9c".
	Label string `json:"label"`
	// Retries is how many wrong PINs the device still accepts, -1 if unknown.
	Retries int `json:"retries"`
}

// TouchRequest says a key is waiting for its holder's touch.
type TouchRequest struct {
	Holder  string    `json:"holder"`
	Key     string    `json:"key"`
	Started time.Time `json:"started"`
}

// UI is how the ceremony reaches the people at the appliance.
type UI interface {
	// Show displays a line: progress, warnings, refusals.
	Show(ctx context.Context, m Message)
	// Ask asks for a non-secret value.
	Ask(ctx context.Context, q Question) (string, error)
	// Confirm asks an explicit yes/no question; true only for Yes.
	Confirm(ctx context.Context, c Confirmation) (bool, error)
	// Secret asks a holder for a PIN. The caller zeroes the result.
	Secret(ctx context.Context, r SecretRequest) ([]byte, error)
	// WaitTouch shows that a key waits for a touch; the core calls done when
	// it stops waiting.
	WaitTouch(ctx context.Context, r TouchRequest) (done func())
}

// Listener is told about every state change. The TUI redraws from it.
type Listener interface {
	StateChanged(s State)
}

// ListenerFunc adapts a function to a Listener.
type ListenerFunc func(State)

// StateChanged calls f.
func (f ListenerFunc) StateChanged(s State) { f(s) }

// Clock tells the time. The appliance has no network time: the ceremony uses
// it only for timestamps in the record and as the default date the operator
// confirms at the start.
type Clock interface{ Now() time.Time }

// ClockFunc adapts a function to a Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// SystemClock is the machine's clock.
var SystemClock Clock = ClockFunc(time.Now)

// Prompter adapts a UI to the hsm.Prompter a hardware key needs, for the
// key's holder. PIN requests become Secret calls showing the retries left;
// touch waits become WaitTouch calls timed by clock. When holder is "" (one
// prompter for several keys), each request names the holder the key
// reported with its last PIN request.
func Prompter(ui UI, holder string, clock Clock) hsm.Prompter {
	if clock == nil {
		clock = SystemClock
	}
	return &uiPrompter{ui: ui, holder: holder, clock: clock, holders: map[hsm.URI]string{}}
}

type uiPrompter struct {
	ui     UI
	holder string
	clock  Clock

	mu      sync.Mutex
	holders map[hsm.URI]string // holder named by each key's PIN request
}

func (p *uiPrompter) holderOf(uri hsm.URI) string {
	if p.holder != "" {
		return p.holder
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holders[uri]
}

var _ hsm.Prompter = (*uiPrompter)(nil)

func (p *uiPrompter) PIN(ctx context.Context, req hsm.PINRequest) ([]byte, error) {
	holder := req.Holder
	if holder == "" {
		holder = p.holder
	} else if p.holder == "" {
		p.mu.Lock()
		p.holders[req.URI] = holder
		p.mu.Unlock()
	}
	pin, err := p.ui.Secret(ctx, SecretRequest{
		Holder:  holder,
		Key:     req.URI.String(),
		Label:   "PIN of " + req.URI.String(),
		Retries: req.Retries,
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, errors.Join(hsm.ErrCancelled, err)
		}
		return nil, err
	}
	return pin, nil
}

func (p *uiPrompter) Touch(ctx context.Context, uri hsm.URI) (done func()) {
	d := p.ui.WaitTouch(ctx, TouchRequest{Holder: p.holderOf(uri), Key: uri.String(), Started: p.clock.Now()})
	if d == nil {
		return func() {}
	}
	return d
}
