package piv

import (
	"crypto"
	"errors"
	"fmt"

	"airlock.dev/airlock/hsm"
)

// Status is what a card tells about itself without a PIN: what airlock key
// status shows.
type Status struct {
	Card
	// PINRetries and PUKRetries are the tries left, PINRetriesTotal and
	// PUKRetriesTotal the counters' maximum; -1 when the card does not say
	// without spending a try (firmware before 5.3).
	PINRetries, PINRetriesTotal int
	PUKRetries, PUKRetriesTotal int
	ManagementKey               ManagementKeyStatus
	// Slots are the key slots (9a, 9c, 9d, 9e) that hold a key.
	Slots []SlotStatus
}

// ManagementKeyStatus says how the card's management key is kept.
type ManagementKeyStatus struct {
	// Algorithm is TDES, AES128, AES192 or AES256.
	Algorithm string
	// Default is true while the factory key is in place; nil when the card
	// does not say (firmware before 5.3).
	Default *bool
	// StoredProtected is the ADMIN DATA flag ykman reads: the key is stored
	// on the card, behind the PIN.
	StoredProtected bool
	// DerivedFromPIN is ykman's deprecated PIN-derived key (a salt in ADMIN
	// DATA); Airlock cannot use such a card without --management-key.
	DerivedFromPIN bool
	// PUKBlocked is ADMIN DATA's "PUK blocked" flag, set by ykman when it
	// blocks the PUK on purpose.
	PUKBlocked bool
	// AdminDataError says why ADMIN DATA could not be read, if so.
	AdminDataError string
}

// SlotStatus describes a slot that holds a key.
type SlotStatus struct {
	Slot string
	// Algorithm is ECCP256, ECCP384, RSA2048, Ed25519, ...
	Algorithm string
	// PINPolicy and TouchPolicy are never, once, always (touch: cached).
	PINPolicy, TouchPolicy string
	// Generated is true for a key generated on the card, false for an
	// imported one (which no attestation covers).
	Generated bool
	// Holder is the common name of the slot's certificate, if any.
	Holder string
	// Public is the slot's public key when the card tells it.
	Public crypto.PublicKey
	// Attestation is the card's attestation of a generated key.
	Attestation *hsm.Attestation
	// Note says what could not be read.
	Note string
}

func algorithmName(a byte) string {
	switch a {
	case 0x03:
		return "TDES"
	case 0x08:
		return "AES128"
	case 0x0a:
		return "AES192"
	case 0x0c:
		return "AES256"
	case 0x06:
		return "RSA1024"
	case 0x07:
		return "RSA2048"
	case 0x05:
		return "RSA3072"
	case 0x16:
		return "RSA4096"
	case 0x11:
		return "ECCP256"
	case 0x14:
		return "ECCP384"
	case 0xe0:
		return "Ed25519"
	case 0xe1:
		return "X25519"
	}
	return fmt.Sprintf("algorithm %02x", a)
}

func pinPolicyName(p byte) string {
	return map[byte]string{0: "default", 1: "never", 2: "once", 3: "always", 4: "match-once", 5: "match-always"}[p]
}

func touchPolicyName(p byte) string {
	return map[byte]string{0: "default", 1: "never", 2: "always", 3: "cached"}[p]
}

// ErrPUKBlocked means the PUK has no tries left: only a reset of the PIV
// application (which destroys every key on it) makes the card usable.
var ErrPUKBlocked = errors.New("puk blocked")

// WrongPUKError is a PUK the card refused.
type WrongPUKError struct{ Retries int }

func (e *WrongPUKError) Error() string {
	return fmt.Sprintf("wrong puk, %d tries left", e.Retries)
}

// MinPINLen is the shortest PIN a YubiKey accepts.
const MinPINLen = 6

func checkNewPIN(p []byte) error {
	if len(p) < MinPINLen || len(p) > maxPINLen {
		return fmt.Errorf("a new piv pin is %d to %d characters, got %d", MinPINLen, maxPINLen, len(p))
	}
	for _, c := range p {
		if c < 0x20 || c > 0x7e {
			return errors.New("a new piv pin has only printable ascii characters")
		}
	}
	return nil
}
