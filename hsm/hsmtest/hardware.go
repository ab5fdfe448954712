package hsmtest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
)

// Scenario is a row of the hardware conformance table.
type Scenario string

// The scenarios every signer kind is put through.
const (
	SignVerify         Scenario = "sign and verify"
	WrongPIN           Scenario = "wrong pin"
	BlockedPIN         Scenario = "blocked pin"
	TouchTimeout       Scenario = "touch timeout"
	RemovedMidSign     Scenario = "device removed mid-operation"
	AttestationRefused Scenario = "attestation refused"
)

// Outcome is what a signer kind must do in a scenario.
type Outcome string

// The outcomes of the table.
const (
	Signs Outcome = "signs; the signature verifies under Public()"
	// RefusesWrongPIN: an *hsm.WrongPINError with one try fewer than the
	// prompt showed, nothing signed, no touch asked.
	RefusesWrongPIN Outcome = "refuses with WrongPINError and the tries left; no touch asked"
	// RefusesBlocked: hsm.ErrPINBlocked, and once blocked the holder is
	// not asked for a PIN again.
	RefusesBlocked Outcome = "refuses with ErrPINBlocked; no PIN asked once blocked"
	// RefusesTouch: the signature fails saying the touch was not given,
	// the PIN counter is untouched, and the next signature works.
	RefusesTouch Outcome = "refuses naming the touch; the next signature works"
	// RefusesRemoved: hsm.ErrNotFound saying to insert the key; the same
	// signer signs once the device is back.
	RefusesRemoved Outcome = "refuses with ErrNotFound saying to insert the key; signs once it is back"
	// RefusedWithReason: attest.Verify refuses an attestation the options
	// do not trust, saying why.
	RefusedWithReason Outcome = "attest.Verify refuses, naming the reason"
	// NoAttestation: the signer has none, and a hardware policy refuses it.
	NoAttestation Outcome = "no attestation; a hardware policy refuses the key"
	// NotApplicable: the kind has no such thing (a file key has no PIN).
	NotApplicable Outcome = "does not apply"
)

// Expected is the one table of outcomes every signer kind is held to.
var Expected = map[Scenario]map[hsm.Kind]Outcome{
	SignVerify:         {hsm.KindYubiKey: Signs, hsm.KindTPM: Signs, hsm.KindFile: Signs},
	WrongPIN:           {hsm.KindYubiKey: RefusesWrongPIN, hsm.KindTPM: RefusesWrongPIN, hsm.KindFile: NotApplicable},
	BlockedPIN:         {hsm.KindYubiKey: RefusesBlocked, hsm.KindTPM: RefusesBlocked, hsm.KindFile: NotApplicable},
	TouchTimeout:       {hsm.KindYubiKey: RefusesTouch, hsm.KindTPM: NotApplicable, hsm.KindFile: NotApplicable},
	RemovedMidSign:     {hsm.KindYubiKey: RefusesRemoved, hsm.KindTPM: NotApplicable, hsm.KindFile: NotApplicable},
	AttestationRefused: {hsm.KindYubiKey: RefusedWithReason, hsm.KindTPM: RefusedWithReason, hsm.KindFile: NoAttestation},
}

// Device is what a back end gives the hardware conformance suite: one
// enrolled key, fresh for each scenario.
type Device struct {
	// Open opens the key with this prompter.
	Open func(t *testing.T, p hsm.Prompter) hsm.Signer
	// PIN is the key's PIN; WrongPIN one that is not.
	PIN, WrongPIN []byte
	// BeforeBlocking, if set, runs before the blocked-PIN scenario (a TPM
	// lowers its lockout threshold there).
	BeforeBlocking func(t *testing.T)
	// TimeOutNextTouch makes the device's next touch wait time out.
	TimeOutNextTouch func(t *testing.T)
	// RemoveDuringNextSign pulls the device out while it signs next;
	// Reinsert puts it back.
	RemoveDuringNextSign, Reinsert func(t *testing.T)
	// Untrusting are attestation options that do not trust this device,
	// and RefusalSays what the refusal must name.
	Untrusting  attest.Options
	RefusalSays []string
}

// RunHardwareTests runs every scenario for kind, checking the outcome
// Expected names. newDevice is called once per scenario. A scenario whose
// outcome is not NotApplicable but whose Device lacks the hook it needs
// fails, so a back end cannot skip a row.
func RunHardwareTests(t *testing.T, kind hsm.Kind, newDevice func(t *testing.T) *Device) {
	scenarios := make([]string, 0, len(Expected))
	for s := range Expected {
		scenarios = append(scenarios, string(s))
	}
	sort.Strings(scenarios)
	for _, name := range scenarios {
		sc := Scenario(name)
		want, ok := Expected[sc][kind]
		if !ok {
			t.Fatalf("the table has no outcome for %s in %q", kind, sc)
		}
		t.Run(name, func(t *testing.T) {
			d := newDevice(t)
			if err := run(t, kind, sc, want, d); err != nil {
				t.Fatalf("%s, %s: want %q: %v", kind, sc, want, err)
			}
		})
	}
}

func digestOf(msg string) []byte {
	d := sha256.Sum256([]byte(msg))
	return d[:]
}

func signMsg(s hsm.Signer, msg string) ([]byte, error) {
	if _, ok := s.Public().(ed25519.PublicKey); ok {
		return s.Sign(rand.Reader, []byte(msg), crypto.Hash(0))
	}
	return s.Sign(rand.Reader, digestOf(msg), crypto.SHA256)
}

func run(t *testing.T, kind hsm.Kind, sc Scenario, want Outcome, d *Device) error {
	p := &ScriptedPrompter{}
	switch want {
	case NotApplicable:
		return checkNotApplicable(t, kind, sc, d)

	case Signs:
		for range 2 {
			p.PINs = append(p.PINs, d.PIN)
		}
		s := d.Open(t, p)
		sig, err := signMsg(s, "conformance")
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		if !verify(t, s.Public(), []byte("conformance"), sig) {
			return errors.New("the signature does not verify")
		}
		return nil

	case RefusesWrongPIN:
		p.PINs = [][]byte{d.WrongPIN, d.PIN}
		s := d.Open(t, p)
		_, err := signMsg(s, "wrong")
		var wp *hsm.WrongPINError
		if !errors.As(err, &wp) {
			return fmt.Errorf("got %v", err)
		}
		if len(p.Asked) != 1 || p.Asked[0].Retries < 1 || wp.Retries != p.Asked[0].Retries-1 {
			return fmt.Errorf("prompt showed %+v, the error says %d tries left; want one fewer than shown", p.Asked, wp.Retries)
		}
		if p.Touches != 0 {
			return errors.New("a wrong PIN asked for a touch")
		}
		if _, err := signMsg(s, "right"); err != nil {
			return fmt.Errorf("the right PIN after a wrong one: %w", err)
		}
		return nil

	case RefusesBlocked:
		if d.BeforeBlocking != nil {
			d.BeforeBlocking(t)
		}
		for range 32 {
			p.PINs = append(p.PINs, d.WrongPIN)
		}
		s := d.Open(t, p)
		var err error
		for i := 0; i < 16 && !errors.Is(err, hsm.ErrPINBlocked); i++ {
			_, err = signMsg(s, "block")
			var wp *hsm.WrongPINError
			if err != nil && !errors.As(err, &wp) && !errors.Is(err, hsm.ErrPINBlocked) {
				return fmt.Errorf("wrong PIN %d: %v", i+1, err)
			}
		}
		if !errors.Is(err, hsm.ErrPINBlocked) {
			return fmt.Errorf("16 wrong PINs did not block the key: %v", err)
		}
		asked := len(p.Asked)
		_, err = signMsg(s, "blocked")
		if !errors.Is(err, hsm.ErrPINBlocked) {
			return fmt.Errorf("signing once blocked: %v", err)
		}
		if len(p.Asked) != asked {
			return errors.New("the holder was asked for a PIN although it is blocked")
		}
		return nil

	case RefusesTouch:
		if d.TimeOutNextTouch == nil {
			return errors.New("the device has no TimeOutNextTouch hook")
		}
		p.PINs = [][]byte{d.PIN, d.PIN}
		s := d.Open(t, p)
		d.TimeOutNextTouch(t)
		_, err := signMsg(s, "no touch")
		if err == nil || !strings.Contains(err.Error(), "touch") {
			return fmt.Errorf("got %v, want a refusal naming the touch", err)
		}
		var wp *hsm.WrongPINError
		if errors.As(err, &wp) || errors.Is(err, hsm.ErrPINBlocked) || errors.Is(err, hsm.ErrNotFound) {
			return fmt.Errorf("a missed touch reported as %v", err)
		}
		if _, err := signMsg(s, "touched"); err != nil {
			return fmt.Errorf("the next signature: %w", err)
		}
		if len(p.Asked) != 2 || p.Asked[1].Retries != p.Asked[0].Retries {
			return fmt.Errorf("prompts %+v: a missed touch must not cost a PIN try", p.Asked)
		}
		return nil

	case RefusesRemoved:
		if d.RemoveDuringNextSign == nil || d.Reinsert == nil {
			return errors.New("the device has no RemoveDuringNextSign or Reinsert hook")
		}
		p.PINs = [][]byte{d.PIN, d.PIN}
		s := d.Open(t, p)
		d.RemoveDuringNextSign(t)
		_, err := signMsg(s, "removed")
		if !errors.Is(err, hsm.ErrNotFound) || !strings.Contains(err.Error(), "insert the key and try again") {
			return fmt.Errorf("got %v", err)
		}
		d.Reinsert(t)
		sig, err := signMsg(s, "back")
		if err != nil {
			return fmt.Errorf("signing once the device is back: %w", err)
		}
		if !verify(t, s.Public(), []byte("back"), sig) {
			return errors.New("the signature after reinsertion does not verify")
		}
		return nil

	case RefusedWithReason:
		s := d.Open(t, p)
		att := s.Attestation()
		if att == nil {
			return errors.New("no attestation")
		}
		_, err := attest.Verify(att, s.Public(), d.Untrusting)
		if err == nil {
			return errors.New("an untrusted attestation verified")
		}
		for _, w := range d.RefusalSays {
			if !strings.Contains(err.Error(), w) {
				return fmt.Errorf("refusal %q does not say %q", err, w)
			}
		}
		return nil

	case NoAttestation:
		s := d.Open(t, p)
		if s.Attestation() != nil {
			return errors.New("a software key claims an attestation")
		}
		if err := (attest.Policy{RequireHardware: true}).Check(nil); err == nil {
			return errors.New("a hardware policy accepted a key without attestation")
		}
		if _, err := attest.Verify(nil, s.Public(), attest.Options{}); !errors.Is(err, attest.ErrNoAttestation) {
			return fmt.Errorf("attest.Verify(nil): %v", err)
		}
		return nil
	}
	return fmt.Errorf("outcome %q has no check", want)
}

// checkNotApplicable checks that a kind the table exempts really has no
// such thing: no PIN is asked, and a file key signs without one.
func checkNotApplicable(t *testing.T, kind hsm.Kind, sc Scenario, d *Device) error {
	p := &ScriptedPrompter{}
	switch {
	case kind == hsm.KindFile:
		s := d.Open(t, p)
		if _, err := signMsg(s, "no pin"); err != nil {
			return err
		}
		if len(p.Asked) != 0 || p.Touches != 0 {
			return fmt.Errorf("a file key asked for a PIN or a touch")
		}
	case sc == TouchTimeout:
		p.PINs = [][]byte{d.PIN}
		s := d.Open(t, p)
		if _, err := signMsg(s, "no touch"); err != nil {
			return err
		}
		if p.Touches != 0 {
			return fmt.Errorf("a %s key asked for a touch", kind)
		}
	}
	return nil
}
