//go:build cgo && linux

package piv_test

import (
	"sync/atomic"
	"testing"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/hsmtest"
	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/piv/pivtest"
)

// TestHardwareConformance holds the YubiKey back end (on the emulated card,
// through pcscd) to hsmtest's table of outcomes.
func TestHardwareConformance(t *testing.T) {
	env := pivtest.Start(t)
	serial := uint32(3_000_000)
	hsmtest.RunHardwareTests(t, hsm.KindYubiKey, func(t *testing.T) *hsmtest.Device {
		serial++
		var card *pivemu.Card
		var pull atomic.Bool
		card = newCard(t, pivemu.Config{Serial: serial, Touch: func() {
			if pull.CompareAndSwap(true, false) {
				card.Remove()
			}
		}})
		env.Insert(t, card, 0)
		t.Cleanup(func() { env.Remove(t, card) })
		enroll(t, card.Serial(), "Alice Example", newRecorder(pins(testPIN)...)).Signer.(hsm.Closer).Close()
		return &hsmtest.Device{
			Open:                 func(t *testing.T, p hsm.Prompter) hsm.Signer { return openSigner(t, card.Serial(), p) },
			PIN:                  []byte(testPIN),
			WrongPIN:             []byte("000000"),
			TimeOutNextTouch:     func(*testing.T) { card.TimeOutNextTouch() },
			RemoveDuringNextSign: func(*testing.T) { pull.Store(true) },
			Reinsert: func(t *testing.T) {
				env.WaitGone(t, card)
				env.Replug(t, card, 0)
			},
			Untrusting:  attest.Options{},
			RefusalSays: []string{"reaches no trusted root", "Airlock Test PIV Attestation Root", "yubico's shipped piv attestation roots"},
		}
	})
}
