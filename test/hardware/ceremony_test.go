package hardware_test

// Appliance ceremonies with hardware keys: the signing ceremony of
// appliance/ run by its scripted UI (the one airlock-appliance sign and
// the tests use) with the release role's two holders, one with an emulated
// YubiKey reached through pcscd and vpcd, one with a TPM key. Nothing in
// the signing path is replaced: keys are opened by URI through hsm.Open.

import (
	"context"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
)

// scriptedUI answers for the people at the appliance: every holder
// approves, PINs come from a per-holder script, and every prompt is
// recorded so tests can check what a holder was asked and shown.
type scriptedUI struct {
	mu       sync.Mutex
	pins     map[string][]string // holder -> PINs, answered in order
	secrets  []appliance.SecretRequest
	touches  []appliance.TouchRequest
	lowered  int // touch prompts taken down again
	confirms []string
	msgs     []appliance.Message
	// touched, when set, receives each touch request as it is raised.
	touched chan appliance.TouchRequest
}

func newScriptedUI(pins map[string][]string) *scriptedUI { return &scriptedUI{pins: pins} }

func (u *scriptedUI) Show(_ context.Context, m appliance.Message) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.msgs = append(u.msgs, m)
}

func (u *scriptedUI) Ask(_ context.Context, q appliance.Question) (string, error) {
	return q.Default, nil
}

func (u *scriptedUI) Confirm(_ context.Context, c appliance.Confirmation) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.confirms = append(u.confirms, c.Holder)
	return c.Holder != "" && c.SHA256 != "", nil
}

func (u *scriptedUI) Secret(_ context.Context, r appliance.SecretRequest) ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.secrets = append(u.secrets, r)
	ps := u.pins[r.Holder]
	if len(ps) == 0 {
		return nil, fmt.Errorf("no pin scripted for %q (asked for %s)", r.Holder, r.Label)
	}
	u.pins[r.Holder] = ps[1:]
	return []byte(ps[0]), nil
}

func (u *scriptedUI) WaitTouch(_ context.Context, r appliance.TouchRequest) func() {
	u.mu.Lock()
	u.touches = append(u.touches, r)
	ch := u.touched
	u.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r:
		default: // a second prompt: the test counts it from u.touches
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

// asked lists the PIN prompts as "holder retries".
func (u *scriptedUI) asked() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, s := range u.secrets {
		out = append(out, fmt.Sprintf("%s %d", s.Holder, s.Retries))
	}
	return out
}

// touchHolders lists who was asked to touch, and checks every touch prompt
// was taken down again.
func (u *scriptedUI) touchHolders(t *testing.T) []string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.touches {
		out = append(out, r.Holder)
	}
	if u.lowered != len(u.touches) {
		t.Errorf("%d touch prompts raised, %d taken down", len(u.touches), u.lowered)
	}
	return out
}

var _ appliance.UI = (*scriptedUI)(nil)

func TestCeremonyYubiKeyAndTPM(t *testing.T) {
	for _, tc := range []struct {
		name string
		dev  func(testing.TB) string
	}{{"simulator", tpmtest.Simulator}, {"swtpm", tpmtest.Swtpm}} {
		t.Run(tc.name, func(t *testing.T) { ceremonyStory(t, tc.dev) })
	}
}

func ceremonyStory(t *testing.T, tpmDev func(testing.TB) string) {
	r := newRig(t, tpmDev)
	st := r.state(true)
	opts := r.attestOptions()
	both := func() map[string][]string {
		return map[string][]string{alice: {yubiKeyPIN}, bob: {tpmPIN}}
	}

	t.Run("attestation refused", func(t *testing.T) {
		rel := r.bundle("0.9.0")
		signed := r.card.Signatures()
		// Shipped Yubico roots only: the emulator's attestation CA is
		// not among them.
		ui := newScriptedUI(both())
		o := r.ceremony(st, ui, nil, attest.Options{}, rel)
		o.refused(t, appliance.RuleAttestation, "key "+r.ykURI.String()+": attestation does not verify")
		// The TPM's attestation key not pinned in the appliance state.
		ui2 := newScriptedUI(both())
		o = r.ceremony(r.state(false), ui2, nil, opts, rel)
		o.refused(t, appliance.RuleAttestation, "key "+r.tpmURI.String()+": attestation does not verify")
		for _, u := range []*scriptedUI{ui, ui2} {
			if len(u.secrets) != 0 || len(u.touches) != 0 || len(u.confirms) != 0 {
				t.Errorf("a holder was asked before the attestations were checked: pins %v, touches %d, confirmations %v", u.asked(), len(u.touches), u.confirms)
			}
		}
		if r.card.Signatures() != signed {
			t.Error("the yubikey signed in a refused ceremony")
		}
	})

	t.Run("wrong pins with retries shown, then signed and fetched", func(t *testing.T) {
		rel := r.bundle("1.0.0")
		// Alice mistypes her YubiKey PIN: refused, saying how many tries
		// are left; no touch was asked for.
		ui := newScriptedUI(map[string][]string{alice: {"000000"}, bob: {tpmPIN}})
		o := r.ceremony(st, ui, nil, opts, rel)
		o.refused(t, appliance.RuleSign, "wrong pin: 2 retries left before the key is blocked")
		if diff := cmp.Diff([]string{alice + " 3"}, ui.asked()); diff != "" {
			t.Errorf("pin prompts (-want +got):\n%s", diff)
		}
		if got := ui.touchHolders(t); len(got) != 0 {
			t.Errorf("a wrong pin raised touch prompts for %v", got)
		}
		// Again: the prompt shows Alice's 2 tries left; now Bob mistypes
		// his TPM PIN.
		ui = newScriptedUI(map[string][]string{alice: {yubiKeyPIN}, bob: {"wrong-pin-0000"}})
		o = r.ceremony(st, ui, nil, opts, rel)
		o.refused(t, appliance.RuleSign, "wrong pin: ")
		asked := ui.asked()
		if len(asked) != 2 || asked[0] != alice+" 2" || !strings.HasPrefix(asked[1], bob+" ") {
			t.Fatalf("pin prompts %v, want alice with 2 tries left, then bob", asked)
		}
		var bobTries int
		fmt.Sscanf(strings.TrimPrefix(asked[1], bob+" "), "%d", &bobTries)
		if bobTries < 2 {
			t.Fatalf("tpm shows %d tries left, want at least 2", bobTries)
		}
		if want := fmt.Sprintf("wrong pin: %d retries left", bobTries-1); !strings.Contains(o.err.Error(), want) {
			t.Errorf("tpm refusal %q does not say %q", o.err, want)
		}
		// Both right: Alice's count is back to 3, Bob's shows the try
		// he used; Alice is asked to touch while her card waits.
		ui = newScriptedUI(both())
		ui.touched = make(chan appliance.TouchRequest, 1)
		waited := make(chan appliance.TouchRequest, 1)
		hook := func() {
			// The card waits until the holder is asked to touch (or, if
			// she never is, gives up and the test fails below).
			select {
			case tr := <-ui.touched:
				waited <- tr
			case <-time.After(screenWithin):
			}
		}
		r.onTouch.Store(&hook)
		o = r.ceremony(st, ui, nil, opts, rel)
		r.onTouch.Store(nil)
		resp := o.response(t)
		if diff := cmp.Diff([]string{alice + " 3", fmt.Sprintf("%s %d", bob, bobTries-1)}, ui.asked()); diff != "" {
			t.Errorf("pin prompts (-want +got):\n%s", diff)
		}
		select {
		case tr := <-waited:
			if tr.Holder != alice || tr.Key != r.ykURI.String() {
				t.Errorf("touch prompt for %q on %s, want %s on %s", tr.Holder, tr.Key, alice, r.ykURI)
			}
		default:
			t.Fatal("the card finished its touch without a touch prompt on the screen")
		}
		if diff := cmp.Diff([]string{alice}, ui.touchHolders(t)); diff != "" {
			t.Errorf("touch prompts (-want +got):\n%s", diff)
		}
		if !slices.Equal(ui.confirms, []string{alice, bob}) {
			t.Errorf("confirmations by %v, want %s then %s", ui.confirms, alice, bob)
		}
		r.publish(t, rel, resp)
	})

	var rel2 release
	t.Run("touch timeout", func(t *testing.T) {
		rel2 = r.bundle("2.0.0")
		rel := rel2
		ui := newScriptedUI(both())
		r.timeOut.Store(true)
		o := r.ceremony(st, ui, nil, opts, rel)
		o.refused(t, appliance.RuleSign, "the yubikey refused to sign: it was not touched in time")
		if r.timeOut.Load() {
			t.Fatal("the card never waited for a touch")
		}
		if diff := cmp.Diff([]string{alice}, ui.touchHolders(t)); diff != "" {
			t.Errorf("touch prompts (-want +got):\n%s", diff)
		}
		if o.state.Refusal == nil || o.state.Refusal.Step != appliance.StepSign || len(o.state.Signed) != 0 {
			t.Errorf("refusal %+v with %d signatures made, want a refusal at sign with none", o.state.Refusal, len(o.state.Signed))
		}
	})

	t.Run("card removed mid-signature, reinserted, signed", func(t *testing.T) {
		rel := rel2 // the bytes of the ceremony refused for the touch
		if rel.dir == "" {
			t.Fatal("no bundle from the touch timeout test")
		}
		ui := newScriptedUI(both())
		pull := func() { r.card.Remove() }
		r.onTouch.Store(&pull)
		o := r.ceremony(st, ui, nil, opts, rel)
		r.onTouch.Store(nil)
		o.refused(t, appliance.RuleSign, "the yubikey stopped answering")
		if !strings.Contains(o.err.Error(), "insert the key and try again") {
			t.Errorf("refusal %q does not tell the holder to insert the key", o.err)
		}
		if got := ui.touchHolders(t); len(got) != 1 {
			t.Errorf("touch prompts %v, want one", got)
		}
		r.env.WaitGone(t, r.card)
		r.env.Insert(t, r.card, 0)
		o = r.ceremony(st, newScriptedUI(both()), nil, opts, rel)
		r.publish(t, rel, o.response(t))
	})
}

// TestCeremonyTouchPolicy: the role demands touch policy "always". A TPM has
// no touch sensor and is waived (its PIN suffices); a YubiKey key made
// with touch policy "never" is refused, before anyone is asked anything.
func TestCeremonyTouchPolicy(t *testing.T) {
	r := newRigWith(t, tpmtest.Simulator, pivemu.TouchPolicyNever)
	st := r.state(true)
	rel := r.bundle("1.0.0")
	ui := newScriptedUI(map[string][]string{alice: {yubiKeyPIN}, bob: {tpmPIN}})
	o := r.ceremony(st, ui, nil, r.attestOptions(), rel)
	o.refused(t, appliance.RuleAttestation, "key "+r.ykURI.String()+`: policy requires touch policy always, key has "never"`)
	if len(ui.secrets) != 0 || len(ui.confirms) != 0 {
		t.Errorf("a holder was asked before the attestations were checked: pins %v, confirmations %v", ui.asked(), ui.confirms)
	}
	// Without the touch requirement the same keys sign, and nobody is
	// asked to touch.
	rp := r.policy.Roles[role]
	rp.Attestation.RequireTouchAlways = false
	r.policy.Roles[role] = rp
	ui = newScriptedUI(map[string][]string{alice: {yubiKeyPIN}, bob: {tpmPIN}})
	o = r.ceremony(r.state(true), ui, nil, r.attestOptions(), rel)
	o.response(t)
	if got := ui.touchHolders(t); len(got) != 0 {
		t.Errorf("touch prompts for %v from a key with touch policy never", got)
	}
}

// TestCeremonyPIVRootsFromState: an organisation's own PIV attestation CA
// (here the emulator's) provisioned in the appliance state with
// init-state --piv-roots is trusted with no other configuration; without
// it the same card's attestation is refused, naming the key.
func TestCeremonyPIVRootsFromState(t *testing.T) {
	r := newRig(t, tpmtest.Simulator)
	rel := r.bundle("1.0.0")
	pins := func() map[string][]string { return map[string][]string{alice: {yubiKeyPIN}, bob: {tpmPIN}} }
	o := r.ceremony(r.state(true), newScriptedUI(pins()), nil, attest.Options{}, rel)
	o.refused(t, appliance.RuleAttestation, "key "+r.ykURI.String()+": attestation does not verify")
	st := r.stateWith(true, func(p *appliance.Provision) {
		p.PIVRoots = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.ca.Root.Raw})
	})
	if len(st.PIVAttestationRoots) != 1 {
		t.Fatalf("state holds %d PIV roots, want 1", len(st.PIVAttestationRoots))
	}
	o = r.ceremony(st, newScriptedUI(pins()), nil, attest.Options{}, rel)
	o.response(t)
}
