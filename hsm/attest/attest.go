// Package attest verifies hardware key attestations offline: that a public
// key was generated inside a YubiKey (PIV attestation chained to Yubico's
// roots) or is resident in a TPM (TPM2_Certify by a trusted attestation key),
// and with which PIN and touch policy. Registries and the appliance use it to
// require hardware keys; it needs no device, no cgo and no network.
package attest

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"airlock.dev/airlock/hsm"
)

// Facts are what a verified attestation says about a key.
type Facts struct {
	Format string `json:"format"`
	// Hardware is true when the chain proves the key lives in hardware.
	Hardware bool `json:"hardware"`
	// Serial and Firmware identify a YubiKey.
	Serial   uint32 `json:"serial,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	// PINPolicy and TouchPolicy: "never", "once", "always", "cached" (touch).
	// For a TPM key bound to its authValue, PINPolicy is "always".
	PINPolicy   string `json:"pin_policy,omitempty"`
	TouchPolicy string `json:"touch_policy,omitempty"`
	// PCRs lists the PCR indexes a TPM key's policy is bound to.
	PCRs []int `json:"pcrs,omitempty"`
	// Issuer names what the chain was verified to (a root's subject, or a
	// pinned TPM attestation key's fingerprint).
	Issuer string `json:"issuer,omitempty"`
}

// Options carries the trust anchors. Zero values mean the shipped defaults.
type Options struct {
	// YubicoRoots replaces the shipped Yubico PIV attestation roots.
	YubicoRoots *x509.CertPool
	// YubicoIntermediates adds intermediates (the shipped ones are always
	// available when YubicoRoots is nil).
	YubicoIntermediates *x509.CertPool
	// PIVRoots are PIV attestation roots trusted besides Yubico's (or
	// YubicoRoots): an organisation's own, or another PIV vendor's whose
	// slot attestations carry the same extensions. A refusal names them.
	PIVRoots []*x509.Certificate
	// TPMAttestationKeys are the public keys of attestation keys trusted to
	// certify TPM-resident keys (for example the appliance's own AK recorded
	// when the appliance was provisioned).
	TPMAttestationKeys []crypto.PublicKey
	// TPMRoots verify an attestation key certificate chain, when the
	// attestation carries one instead of a pinned key.
	TPMRoots *x509.CertPool
}

// Policy is what a role demands of its keys' attestations.
type Policy struct {
	RequireHardware    bool `json:"require_hardware"`
	RequirePINAlways   bool `json:"require_pin_always"`
	RequireTouchAlways bool `json:"require_touch_always"`
}

// ErrNoAttestation means the key carries no attestation.
var ErrNoAttestation = errors.New("key has no hardware attestation")

// Verify checks att is a valid attestation of pub and returns what it says.
func Verify(att *hsm.Attestation, pub crypto.PublicKey, opts Options) (*Facts, error) {
	if att == nil {
		return nil, ErrNoAttestation
	}
	switch att.Format {
	case hsm.AttestationYubiKeyPIV:
		return verifyYubiKey(att, pub, opts)
	case hsm.AttestationTPM2Certify:
		return verifyTPM(att, pub, opts)
	default:
		return nil, fmt.Errorf("attestation format %q is not supported (want %s or %s)", att.Format, hsm.AttestationYubiKeyPIV, hsm.AttestationTPM2Certify)
	}
}

// Check applies the policy to verified facts (nil facts: no attestation).
func (p Policy) Check(f *Facts) error {
	if f == nil || !f.Hardware {
		if p.RequireHardware || p.RequirePINAlways || p.RequireTouchAlways {
			return errors.New("policy requires a hardware key with a verified attestation")
		}
		return nil
	}
	if p.RequirePINAlways && f.PINPolicy != "always" {
		return fmt.Errorf("policy requires pin policy always, key has %q; re-enrol the key with pin policy always", f.PINPolicy)
	}
	if p.RequireTouchAlways && f.Format == hsm.AttestationYubiKeyPIV && f.TouchPolicy != "always" {
		return fmt.Errorf("policy requires touch policy always, key has %q; re-enrol the key with touch policy always", f.TouchPolicy)
	}
	return nil
}
