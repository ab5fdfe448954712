package testrig

// The scripted appliance ceremony: appliance.New and Run with a UI that
// answers for the people at the appliance, the bundle read from a folder,
// the holders' keys opened by URI, and the response folder written by
// appliance.DirSink.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/tuf"
)

// ScriptedUI answers for the people at the appliance: every holder
// approves, PINs come from a per-holder script, and every prompt is
// recorded so tests can check what a holder was asked and shown. Read the
// recorded fields once the ceremony has ended.
type ScriptedUI struct {
	mu       sync.Mutex
	pins     map[string][]string // holder -> PINs, answered in order
	Secrets  []appliance.SecretRequest
	Touches  []appliance.TouchRequest
	lowered  int // touch prompts taken down again
	Confirms []string
	Msgs     []appliance.Message
	// Touched, when set, receives each touch request as it is raised
	// (without blocking: a second one is only recorded in Touches).
	Touched chan appliance.TouchRequest
}

var _ appliance.UI = (*ScriptedUI)(nil)

// NewScriptedUI answers PIN prompts from pins (holder -> PINs in order); a
// prompt with no PIN left is cancelled.
func NewScriptedUI(pins map[string][]string) *ScriptedUI {
	if pins == nil {
		pins = map[string][]string{}
	}
	return &ScriptedUI{pins: pins}
}

func (u *ScriptedUI) Show(_ context.Context, m appliance.Message) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.Msgs = append(u.Msgs, m)
}

func (u *ScriptedUI) Ask(_ context.Context, q appliance.Question) (string, error) {
	return q.Default, nil
}

// Confirm approves when a holder is named and the fingerprint shown.
func (u *ScriptedUI) Confirm(_ context.Context, c appliance.Confirmation) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.Confirms = append(u.Confirms, c.Holder)
	return c.Holder != "" && c.SHA256 != "", nil
}

func (u *ScriptedUI) Secret(_ context.Context, r appliance.SecretRequest) ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.Secrets = append(u.Secrets, r)
	ps := u.pins[r.Holder]
	if len(ps) == 0 {
		return nil, fmt.Errorf("no pin scripted for %q (asked for %s)", r.Holder, r.Label)
	}
	u.pins[r.Holder] = ps[1:]
	return []byte(ps[0]), nil
}

func (u *ScriptedUI) WaitTouch(_ context.Context, r appliance.TouchRequest) func() {
	u.mu.Lock()
	u.Touches = append(u.Touches, r)
	ch := u.Touched
	u.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r:
		default: // a second prompt: the test counts it from u.Touches
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			u.lowered++
			u.mu.Unlock()
		})
	}
}

// Asked lists the PIN prompts as "holder retries".
func (u *ScriptedUI) Asked() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, s := range u.Secrets {
		out = append(out, fmt.Sprintf("%s %d", s.Holder, s.Retries))
	}
	return out
}

// TouchHolders lists who was asked to touch, and checks every touch prompt
// was taken down again.
func (u *ScriptedUI) TouchHolders(t testing.TB) []string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.Touches {
		out = append(out, r.Holder)
	}
	if u.lowered != len(u.Touches) {
		t.Errorf("%d touch prompts raised, %d taken down", len(u.Touches), u.lowered)
	}
	return out
}

// DirBundle loads a bundle folder (airlock bundle --out, airlock gate
// bundle --out) as the appliance's bundle source.
type DirBundle string

func (d DirBundle) Load(context.Context) (*appliance.Bundle, error) {
	req, err := os.ReadFile(filepath.Join(string(d), "request.json"))
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(string(d))
	if err != nil {
		return nil, err
	}
	return &appliance.Bundle{Source: string(d), Request: req, Files: root.FS()}, nil
}

// keySource opens the holders' keys by URI, as the appliance does, and
// closes them when the ceremony is over: a YubiKey is held exclusively
// while open.
type keySource struct {
	uris   appliance.KeyURIs
	mu     sync.Mutex
	opened []hsm.Signer
}

func (k *keySource) Keys(ctx context.Context, p hsm.Prompter) ([]hsm.Signer, error) {
	ss, err := k.uris.Keys(ctx, p)
	k.mu.Lock()
	k.opened = append(k.opened, ss...)
	k.mu.Unlock()
	return ss, err
}

func (k *keySource) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range k.opened {
		if c, ok := s.(hsm.Closer); ok {
			c.Close()
		}
	}
	k.opened = nil
}

// Ceremony is one appliance ceremony to run.
type Ceremony struct {
	State    *appliance.StateDir
	UI       appliance.UI
	Listener appliance.Listener // optional
	Clock    appliance.Clock    // default the system clock
	Date     time.Time          // the confirmed date; default the clock's
	// AttestOptions are the trust anchors besides the state's.
	AttestOptions attest.Options
	Bundle        string // the bundle folder
	// Out is the folder under which the response folder is made; default
	// a new temporary folder.
	Out string
}

// Outcome is how one ceremony ended.
type Outcome struct {
	State appliance.State
	Err   error
	Out   string // the response folder (written only when the ceremony signed)
}

// Run runs the ceremony with both holders' keys and returns how it ended.
func (h *Hardware) Run(t testing.TB, c Ceremony) Outcome {
	t.Helper()
	if c.Out == "" {
		c.Out = t.TempDir()
	}
	parent, err := os.MkdirTemp(c.Out, "out-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(parent, "response")
	clock := c.Clock
	if clock == nil {
		clock = appliance.SystemClock
	}
	date := c.Date
	if date.IsZero() {
		date = clock.Now()
	}
	keys := &keySource{uris: h.URIs()}
	cer, err := appliance.New(appliance.Config{State: c.State, UI: c.UI, Listener: c.Listener, Clock: clock, Date: date,
		Bundle: DirBundle(c.Bundle), Keys: keys, Sink: appliance.DirSink(out), AttestOptions: c.AttestOptions})
	if err != nil {
		t.Fatal(err)
	}
	s, err := cer.Run(context.Background())
	keys.close()
	return Outcome{State: s, Err: err, Out: out}
}

// Refused checks that the ceremony was refused under rule for a reason
// containing why, and exported nothing.
func (o Outcome) Refused(t testing.TB, rule appliance.Rule, why string) {
	t.Helper()
	var re *appliance.RefusedError
	if !errors.As(o.Err, &re) {
		t.Fatalf("ceremony ended at %s with %v, want a refusal (%s) saying %q", o.State.Step, o.Err, rule, why)
	}
	if re.Refusal.Rule != rule || !strings.Contains(re.Refusal.Reason, why) {
		t.Fatalf("refused for %s: %s\nwant %s saying %q", re.Refusal.Rule, re.Refusal.Reason, rule, why)
	}
	if _, err := os.Stat(filepath.Join(o.Out, appliance.ResponseFile)); err == nil {
		t.Fatal("a refused ceremony wrote a response")
	}
}

// Response returns the exported response of a ceremony that must be done:
// two hardware signatures, by Alice and Bob, with the ceremony record
// beside it and its hash in the response.
func (o Outcome) Response(t testing.TB) *tuf.Response {
	t.Helper()
	if o.Err != nil || o.State.Step != appliance.StepDone {
		t.Fatalf("ceremony ended at %s: %v", o.State.Step, o.Err)
	}
	b, err := os.ReadFile(filepath.Join(o.Out, appliance.ResponseFile))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tuf.ParseResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Dev || len(resp.Signatures) != 2 || strings.Join(resp.Holders, ",") != Alice+","+Bob {
		t.Fatalf("response: development %v, %d signatures by %v; want 2 hardware signatures by %s and %s", resp.Dev, len(resp.Signatures), resp.Holders, Alice, Bob)
	}
	rec, err := os.ReadFile(filepath.Join(o.Out, appliance.RecordFile))
	if err != nil {
		t.Fatalf("the response folder has no ceremony record: %v", err)
	}
	if got := tuf.SHA256Hex(rec); resp.RecordSHA256 != got {
		t.Fatalf("response names record sha256 %q, the record beside it is %s", resp.RecordSHA256, got)
	}
	return resp
}
