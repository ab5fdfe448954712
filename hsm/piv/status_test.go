//go:build cgo && linux

package piv_test

import (
	"context"
	"testing"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/piv"
	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/piv/pivtest"
)

// TestReadStatusOldFirmware: a firmware 5.2 card has no metadata command;
// status still shows the slot (policies from its attestation), says the
// counters are not shown, and enrolment still flags the stored key.
func TestReadStatusOldFirmware(t *testing.T) {
	env := pivtest.Start(t)
	card := newCard(t, pivemu.Config{Serial: 1015, Firmware: [3]byte{5, 2, 7}})
	env.Insert(t, card, 0)
	enroll(t, card.Serial(), "Bob Example", newRecorder(pins(testPIN)...)).Signer.(hsm.Closer).Close()
	st, err := piv.ReadStatus(context.Background(), card.Serial())
	if err != nil {
		t.Fatal(err)
	}
	if st.PINRetries != -1 || st.PUKRetries != -1 || st.ManagementKey.Default != nil || st.ManagementKey.Algorithm != "TDES" || !st.ManagementKey.StoredProtected {
		t.Errorf("status %+v, management key %+v", st, st.ManagementKey)
	}
	if len(st.Slots) != 1 {
		t.Fatalf("slots %+v, want 9c", st.Slots)
	}
	s := st.Slots[0]
	if s.Slot != "9c" || s.PINPolicy != "always" || s.TouchPolicy != "always" || !s.Generated || s.Holder != "Bob Example" || s.Attestation == nil || s.Public == nil {
		t.Errorf("slot %+v", s)
	}
}
