package hardware_test

// Appliance ceremonies with hardware keys: the signing ceremony of
// appliance/ run by its scripted UI (the one airlock-appliance sign and
// the tests use) with the release role's two holders, one with an emulated
// YubiKey reached through pcscd and vpcd, one with a TPM key. Nothing in
// the signing path is replaced: keys are opened by URI through hsm.Open.

import (
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
	"airlock.dev/airlock/internal/testrig"
)

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
	opts := r.AttestOptions()
	both := func() map[string][]string {
		return r.PINsByHolder()
	}

	t.Run("attestation refused", func(t *testing.T) {
		rel := r.bundle("0.9.0")
		signed := r.Card.Signatures()
		// Shipped Yubico roots only: the emulator's attestation CA is
		// not among them.
		ui := testrig.NewScriptedUI(both())
		o := r.ceremony(st, ui, nil, attest.Options{}, rel)
		o.Refused(t, appliance.RuleAttestation, "key "+r.YubiKeyURI.String()+": attestation does not verify")
		// The TPM's attestation key not pinned in the appliance state.
		ui2 := testrig.NewScriptedUI(both())
		o = r.ceremony(r.state(false), ui2, nil, opts, rel)
		o.Refused(t, appliance.RuleAttestation, "key "+r.TPMURI.String()+": attestation does not verify")
		for _, u := range []*testrig.ScriptedUI{ui, ui2} {
			if len(u.Secrets) != 0 || len(u.Touches) != 0 || len(u.Confirms) != 0 {
				t.Errorf("a holder was asked before the attestations were checked: pins %v, touches %d, confirmations %v", u.Asked(), len(u.Touches), u.Confirms)
			}
		}
		if r.Card.Signatures() != signed {
			t.Error("the yubikey signed in a refused ceremony")
		}
	})

	t.Run("wrong pins with retries shown, then signed and fetched", func(t *testing.T) {
		rel := r.bundle("1.0.0")
		// Alice mistypes her YubiKey PIN: refused, saying how many tries
		// are left; no touch was asked for.
		ui := testrig.NewScriptedUI(map[string][]string{alice: {"000000"}, bob: {tpmPIN}})
		o := r.ceremony(st, ui, nil, opts, rel)
		o.Refused(t, appliance.RuleSign, "wrong pin: 2 retries left before the key is blocked")
		if diff := cmp.Diff([]string{alice + " 3"}, ui.Asked()); diff != "" {
			t.Errorf("pin prompts (-want +got):\n%s", diff)
		}
		if got := ui.TouchHolders(t); len(got) != 0 {
			t.Errorf("a wrong pin raised touch prompts for %v", got)
		}
		// Again: the prompt shows Alice's 2 tries left; now Bob mistypes
		// his TPM PIN.
		ui = testrig.NewScriptedUI(map[string][]string{alice: {yubiKeyPIN}, bob: {"wrong-pin-0000"}})
		o = r.ceremony(st, ui, nil, opts, rel)
		o.Refused(t, appliance.RuleSign, "wrong pin: ")
		asked := ui.Asked()
		if len(asked) != 2 || asked[0] != alice+" 2" || !strings.HasPrefix(asked[1], bob+" ") {
			t.Fatalf("pin prompts %v, want alice with 2 tries left, then bob", asked)
		}
		var bobTries int
		fmt.Sscanf(strings.TrimPrefix(asked[1], bob+" "), "%d", &bobTries)
		if bobTries < 2 {
			t.Fatalf("tpm shows %d tries left, want at least 2", bobTries)
		}
		if want := fmt.Sprintf("wrong pin: %d retries left", bobTries-1); !strings.Contains(o.Err.Error(), want) {
			t.Errorf("tpm refusal %q does not say %q", o.Err, want)
		}
		// Both right: Alice's count is back to 3, Bob's shows the try
		// he used; Alice is asked to touch while her card waits.
		ui = testrig.NewScriptedUI(both())
		ui.Touched = make(chan appliance.TouchRequest, 1)
		waited := make(chan appliance.TouchRequest, 1)
		hook := func() {
			// The card waits until the holder is asked to touch (or, if
			// she never is, gives up and the test fails below).
			select {
			case tr := <-ui.Touched:
				waited <- tr
			case <-time.After(screenWithin):
			}
		}
		r.OnTouch.Store(&hook)
		o = r.ceremony(st, ui, nil, opts, rel)
		r.OnTouch.Store(nil)
		resp := o.Response(t)
		if diff := cmp.Diff([]string{alice + " 3", fmt.Sprintf("%s %d", bob, bobTries-1)}, ui.Asked()); diff != "" {
			t.Errorf("pin prompts (-want +got):\n%s", diff)
		}
		select {
		case tr := <-waited:
			if tr.Holder != alice || tr.Key != r.YubiKeyURI.String() {
				t.Errorf("touch prompt for %q on %s, want %s on %s", tr.Holder, tr.Key, alice, r.YubiKeyURI)
			}
		default:
			t.Fatal("the card finished its touch without a touch prompt on the screen")
		}
		if diff := cmp.Diff([]string{alice}, ui.TouchHolders(t)); diff != "" {
			t.Errorf("touch prompts (-want +got):\n%s", diff)
		}
		if !slices.Equal(ui.Confirms, []string{alice, bob}) {
			t.Errorf("confirmations by %v, want %s then %s", ui.Confirms, alice, bob)
		}
		r.publish(t, rel, resp)
	})

	var rel2 release
	t.Run("touch timeout", func(t *testing.T) {
		rel2 = r.bundle("2.0.0")
		rel := rel2
		ui := testrig.NewScriptedUI(both())
		r.TimeOut.Store(true)
		o := r.ceremony(st, ui, nil, opts, rel)
		o.Refused(t, appliance.RuleSign, "the yubikey refused to sign: it was not touched in time")
		if r.TimeOut.Load() {
			t.Fatal("the card never waited for a touch")
		}
		if diff := cmp.Diff([]string{alice}, ui.TouchHolders(t)); diff != "" {
			t.Errorf("touch prompts (-want +got):\n%s", diff)
		}
		if o.State.Refusal == nil || o.State.Refusal.Step != appliance.StepSign || len(o.State.Signed) != 0 {
			t.Errorf("refusal %+v with %d signatures made, want a refusal at sign with none", o.State.Refusal, len(o.State.Signed))
		}
	})

	t.Run("card removed mid-signature, reinserted, signed", func(t *testing.T) {
		rel := rel2 // the bytes of the ceremony refused for the touch
		if rel.dir == "" {
			t.Fatal("no bundle from the touch timeout test")
		}
		ui := testrig.NewScriptedUI(both())
		pull := func() { r.Card.Remove() }
		r.OnTouch.Store(&pull)
		o := r.ceremony(st, ui, nil, opts, rel)
		r.OnTouch.Store(nil)
		o.Refused(t, appliance.RuleSign, "the yubikey stopped answering")
		if !strings.Contains(o.Err.Error(), "insert the key and try again") {
			t.Errorf("refusal %q does not tell the holder to insert the key", o.Err)
		}
		if got := ui.TouchHolders(t); len(got) != 1 {
			t.Errorf("touch prompts %v, want one", got)
		}
		r.Env.WaitGone(t, r.Card)
		r.Env.Insert(t, r.Card, 0)
		o = r.ceremony(st, testrig.NewScriptedUI(both()), nil, opts, rel)
		r.publish(t, rel, o.Response(t))
	})
}

// TestCeremonyTouchPolicy: the role demands touch policy "always". A TPM has
// no touch sensor and is waived (its PIN suffices); a YubiKey key made
// with touch policy "never" is refused, before anyone is asked anything.
func TestCeremonyTouchPolicy(t *testing.T) {
	r := newRigWith(t, tpmtest.Simulator, pivemu.TouchPolicyNever)
	st := r.state(true)
	rel := r.bundle("1.0.0")
	ui := testrig.NewScriptedUI(r.PINsByHolder())
	o := r.ceremony(st, ui, nil, r.AttestOptions(), rel)
	o.Refused(t, appliance.RuleAttestation, "key "+r.YubiKeyURI.String()+`: policy requires touch policy always, key has "never"`)
	if len(ui.Secrets) != 0 || len(ui.Confirms) != 0 {
		t.Errorf("a holder was asked before the attestations were checked: pins %v, confirmations %v", ui.Asked(), ui.Confirms)
	}
	// Without the touch requirement the same keys sign, and nobody is
	// asked to touch.
	rp := r.policy.Roles[role]
	rp.Attestation.RequireTouchAlways = false
	r.policy.Roles[role] = rp
	ui = testrig.NewScriptedUI(r.PINsByHolder())
	o = r.ceremony(r.state(true), ui, nil, r.AttestOptions(), rel)
	o.Response(t)
	if got := ui.TouchHolders(t); len(got) != 0 {
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
	pins := func() map[string][]string { return r.PINsByHolder() }
	o := r.ceremony(r.state(true), testrig.NewScriptedUI(pins()), nil, attest.Options{}, rel)
	o.Refused(t, appliance.RuleAttestation, "key "+r.YubiKeyURI.String()+": attestation does not verify")
	st := r.stateWith(true, func(p *appliance.Provision) {
		p.PIVRoots = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.CA.Root.Raw})
	})
	if len(st.PIVAttestationRoots) != 1 {
		t.Fatalf("state holds %d PIV roots, want 1", len(st.PIVAttestationRoots))
	}
	o = r.ceremony(st, testrig.NewScriptedUI(pins()), nil, attest.Options{}, rel)
	o.Response(t)
}
