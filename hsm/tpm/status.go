package tpm

import (
	"context"
	"crypto"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Status is what airlock key status shows about a TPM: who made it, its
// firmware, the dictionary-attack counter every key's PIN shares, whether
// Airlock's attestation key is there, and the persistent keys.
type Status struct {
	Device string
	// Manufacturer is the vendor's four-character id ("IBM ", "MSFT", ...).
	Manufacturer string
	// Firmware is the vendor's firmware version, as four 16-bit parts.
	Firmware string
	// PINRetries is how many wrong PINs the TPM accepts before it locks
	// out (shared by every key's PIN), PINRetriesTotal its maximum; -1 when
	// the TPM does not say.
	PINRetries, PINRetriesTotal int
	// LockoutInterval is how many seconds restore one try after a wrong
	// PIN; LockedOut says the TPM refuses PINs now.
	LockoutInterval uint32
	LockedOut       bool
	// AttestationKey is Airlock's attestation key at AKHandle, nil when
	// the TPM has none yet (the first enrolment makes it).
	AttestationKey crypto.PublicKey
	// Keys are the persistent keys, as List gives them.
	Keys []KeyInfo
}

// ReadStatus reads the status of the TPM dev. It needs no PIN and changes
// nothing.
func ReadStatus(ctx context.Context, dev string) (*Status, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	keys, err := List(ctx, dev)
	if err != nil {
		return nil, err
	}
	t, err := OpenDevice(dev)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	st := &Status{Device: dev, Keys: keys, PINRetries: -1, PINRetriesTotal: -1}
	props, err := properties(t, tpm2.TPMPTManufacturer, 1)
	if err != nil {
		return nil, fmt.Errorf("reading the tpm's manufacturer: %w", err)
	}
	if v, ok := props[tpm2.TPMPTManufacturer]; ok {
		st.Manufacturer = string([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	props, err = properties(t, tpm2.TPMPTFirmwareVersion1, 2)
	if err != nil {
		return nil, fmt.Errorf("reading the tpm's firmware version: %w", err)
	}
	v1, v2 := props[tpm2.TPMPTFirmwareVersion1], props[tpm2.TPMPTFirmwareVersion2]
	st.Firmware = fmt.Sprintf("%d.%d.%d.%d", v1>>16, v1&0xffff, v2>>16, v2&0xffff)
	if c, m, ok := daState(t); ok {
		st.PINRetriesTotal = int(m)
		st.PINRetries = max(int(m)-int(c), 0)
	}
	props, err = properties(t, tpm2.TPMPTPermanent, 1)
	if err != nil {
		return nil, fmt.Errorf("reading the tpm's lockout state: %w", err)
	}
	st.LockedOut = props[tpm2.TPMPTPermanent]&(1<<9) != 0 // TPMA_PERMANENT.inLockout
	props, err = properties(t, tpm2.TPMPTLockoutInterval, 1)
	if err != nil {
		return nil, fmt.Errorf("reading the tpm's lockout interval: %w", err)
	}
	st.LockoutInterval = props[tpm2.TPMPTLockoutInterval]
	if ak, err := readPublic(t, AKHandle); err == nil {
		if pub, err := tpm2.Pub(ak.public); err == nil {
			st.AttestationKey = pub
		}
	}
	return st, nil
}

// properties reads n TPM properties from first.
func properties(t transport.TPM, first tpm2.TPMPT, n uint32) (map[tpm2.TPMPT]uint32, error) {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(first),
		PropertyCount: n,
	}.Execute(t)
	if err != nil {
		return nil, err
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return nil, err
	}
	out := map[tpm2.TPMPT]uint32{}
	for _, p := range props.TPMProperty {
		out[p.Property] = p.Value
	}
	return out, nil
}
