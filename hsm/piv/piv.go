// Package piv is Airlock's YubiKey back end: ECDSA P-256 keys in a PIV slot
// of a YubiKey, reached through PC/SC (pcscd) with piv-go.
//
// Importing the package registers it with hsm.Open for
// "yubikey:serial=N;slot=9c" URIs. Keys are enrolled with PIN policy
// "always" and touch policy "always", and the card's factory management key
// is replaced by a random one kept PIN-protected on the card itself, and
// flagged so in the ADMIN DATA object (5FFF00) exactly as ykman flags it, so
// no operator ever handles it and ykman keeps working on the card.
// Enrolment returns the card's attestation (slot
// attestation certificate and device attestation certificate), which
// hsm/attest verifies.
//
// Invariants:
//   - private keys never leave the card; a Signer holds the card open and
//     exposes only the public key, the URI and the attestation;
//   - PINs are asked for through the caller's hsm.Prompter when the card
//     needs one, with the retries left shown; a PIN is never guessed,
//     cached across operations or retried by this package;
//   - cards are found by serial with a shared-mode probe that always
//     disconnects, never by trial piv.Open calls (piv-go v2.6.0 leaks an
//     exclusive hold when Open fails after connecting);
//   - destroying an existing key, whatever it is, needs
//     EnrollOptions.ReallyOverwriteExistingKey and a ConfirmOverwrite that
//     accepts;
//   - an enrolment interrupted at any command can be run again (see
//     resumeManagementKey, docs/hardware.md and
//     TestEnrollInterruptedAtEveryCommand);
//   - every prompt shows the tries left, and touch prompts name the holder
//     and the key (hsm.AskTouch).
//
// A Signer is safe for concurrent use; signatures are serialised.
//
// The package needs cgo and libpcsclite; built without cgo every entry point
// fails with an error wrapping hsm.ErrUnsupported.
package piv

import (
	"crypto"
	"errors"
	"fmt"
	"strings"

	"airlock.dev/airlock/hsm"
)

// Card is a PIV card present in a reader.
type Card struct {
	// Reader is the PC/SC reader name; it changes with the USB port.
	Reader string
	// Serial identifies the YubiKey.
	Serial uint32
	// Firmware is the version the PIV applet reports ("5.7.2").
	Firmware string
	// PINRetriesTotal is the PIN counter's maximum (0 when the card does
	// not say: firmware before 5.3).
	PINRetriesTotal int
}

// EnrollOptions control Enroll.
type EnrollOptions struct {
	// Holder names the person holding the key; it goes into the subject of
	// the slot's self-signed certificate (at most 128 printable characters).
	Holder string
	// Slot is the PIV slot ("9c" when empty).
	Slot string
	// Prompter asks the holder for the PIN and the touch. Required.
	Prompter hsm.Prompter
	// ManagementKey is the card's current management key, needed only when
	// it is neither the factory default nor stored PIN-protected on the card.
	ManagementKey []byte
	// ReallyOverwriteExistingKey allows Enroll to replace a key already in
	// the slot. The old key is destroyed; signatures it made stay valid but
	// nothing can sign with it again.
	ReallyOverwriteExistingKey bool
	// ConfirmOverwrite is called before a key already in the slot is
	// destroyed, whatever that key is (generated on the card, imported, or
	// of another algorithm), with a description of the slot; enrolment goes
	// on only if it returns nil. Overwriting without it is refused.
	ConfirmOverwrite func(desc string) error
}

// Enrollment is a freshly generated key.
type Enrollment struct {
	URI         hsm.URI
	Public      crypto.PublicKey
	Attestation *hsm.Attestation
	// Signer holds the card open and can sign at once; Close it when done.
	Signer hsm.Signer
}

const maxHolderLen = 128

var slotKeys = map[string]byte{"9a": 0x9a, "9c": 0x9c, "9d": 0x9d, "9e": 0x9e}

func checkHolder(h string) error {
	if len(h) > maxHolderLen {
		return fmt.Errorf("holder name is %d bytes, over the %d-byte cap", len(h), maxHolderLen)
	}
	for _, r := range h {
		if r < 0x20 || r == 0x7f {
			return errors.New("holder name has a control character")
		}
	}
	return nil
}

func slotName(s string) (string, error) {
	if s == "" {
		return "9c", nil
	}
	s = strings.ToLower(s)
	if _, ok := slotKeys[s]; !ok {
		return "", fmt.Errorf("piv slot %q: want one of 9a, 9c, 9d, 9e", s)
	}
	return s, nil
}

// maxPINLen is the longest PIN or PUK a PIV card takes.
const maxPINLen = 8
