package piv

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The ADMIN DATA object (5FFF00) is where Yubico's tools (ykman, the
// YubiKey Manager GUI, yubico-piv-tool) record how the card's management
// key is kept. Its content, inside the 53 wrapper of every data object, is
//
//	80 L { 81 01 FLAGS } { 82 L SALT } { 83 04 PIN-TIMESTAMP }
//
// with each inner field optional and in that order. FLAGS bit 0x01 says
// the PUK is blocked, bit 0x02 that the management key is stored on the
// card in the PIN-protected object 5FC109 (80 88 { 89 L KEY }); a SALT says
// the key is derived from the PIN (a deprecated scheme). ykman reads the
// fields it knows and writes back only those, in that order; adminData does
// the same, so that a card enrolled by Airlock reads in ykman as "Management
// key is stored on the YubiKey, protected by PIN".
const (
	objAdminData = 0x5fff00

	adminFlagPUKBlocked          = 0x01
	adminFlagManagementProtected = 0x02

	// maxAdminData caps the object read back; ykman writes at most 25 bytes.
	maxAdminData = 256
	// maxAdminSalt caps the salt field (ykman writes 16 bytes).
	maxAdminSalt = 64
)

// adminData is the parsed ADMIN DATA object.
type adminData struct {
	flags         *byte
	salt          []byte
	pinTimestamp  *uint32
	hadOtherField bool // a field ykman does not know either; dropped on write
}

func (a adminData) flag(mask byte) bool { return a.flags != nil && *a.flags&mask != 0 }

func (a *adminData) setFlag(mask byte) {
	f := mask
	if a.flags != nil {
		f |= *a.flags
	}
	a.flags = &f
}

// ManagementKeyProtected reports the "stored on the card, PIN-protected"
// flag.
func (a adminData) managementKeyProtected() bool { return a.flag(adminFlagManagementProtected) }

// parseAdminData parses the content of object 5FFF00 (inside 53). Empty
// content is an absent object.
func parseAdminData(b []byte) (adminData, error) {
	var a adminData
	if len(b) == 0 {
		return a, nil
	}
	if len(b) > maxAdminData {
		return a, fmt.Errorf("admin data object is %d bytes, over the %d-byte cap", len(b), maxAdminData)
	}
	tag, inner, rest, err := readTLV(b)
	if err != nil {
		return a, fmt.Errorf("admin data object: %w", err)
	}
	if tag != 0x80 {
		return a, fmt.Errorf("admin data object: tag %02x, want 80", tag)
	}
	if len(rest) != 0 {
		return a, fmt.Errorf("admin data object: %d bytes after the 80 field", len(rest))
	}
	seen := map[byte]bool{}
	for len(inner) > 0 {
		var v []byte
		tag, v, inner, err = readTLV(inner)
		if err != nil {
			return a, fmt.Errorf("admin data object: %w", err)
		}
		if seen[tag] {
			return a, fmt.Errorf("admin data object: field %02x twice", tag)
		}
		seen[tag] = true
		switch tag {
		case 0x81:
			if len(v) != 1 {
				return a, fmt.Errorf("admin data object: flags field is %d bytes, want 1", len(v))
			}
			f := v[0]
			a.flags = &f
		case 0x82:
			if len(v) > maxAdminSalt {
				return a, fmt.Errorf("admin data object: salt is %d bytes, over the %d-byte cap", len(v), maxAdminSalt)
			}
			a.salt = append([]byte{}, v...)
		case 0x83:
			if len(v) != 4 {
				return a, fmt.Errorf("admin data object: pin timestamp is %d bytes, want 4", len(v))
			}
			ts := binary.BigEndian.Uint32(v)
			a.pinTimestamp = &ts
		default:
			a.hadOtherField = true
		}
	}
	return a, nil
}

// marshal encodes the object content as ykman writes it.
func (a adminData) marshal() []byte {
	var inner []byte
	if a.flags != nil {
		inner = appendTLV(inner, 0x81, []byte{*a.flags})
	}
	if a.salt != nil {
		inner = appendTLV(inner, 0x82, a.salt)
	}
	if a.pinTimestamp != nil {
		inner = appendTLV(inner, 0x83, binary.BigEndian.AppendUint32(nil, *a.pinTimestamp))
	}
	return appendTLV(nil, 0x80, inner)
}

// appendTLV appends a one-byte tag and a definite BER length.
func appendTLV(b []byte, tag byte, v []byte) []byte {
	b = append(b, tag)
	switch n := len(v); {
	case n < 0x80:
		b = append(b, byte(n))
	case n < 0x100:
		b = append(b, 0x81, byte(n))
	default:
		b = append(b, 0x82, byte(n>>8), byte(n))
	}
	return append(b, v...)
}

var errTLV = errors.New("malformed tlv")

// readTLV reads one TLV with a one-byte tag and a minimally encoded
// definite length.
func readTLV(b []byte) (tag byte, v, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, fmt.Errorf("%w: %d bytes left", errTLV, len(b))
	}
	tag, n, b := b[0], int(b[1]), b[2:]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, fmt.Errorf("%w: multi-byte tag %02x", errTLV, tag)
	}
	switch {
	case n < 0x80:
	case n == 0x81 && len(b) >= 1 && b[0] >= 0x80:
		n, b = int(b[0]), b[1:]
	case n == 0x82 && len(b) >= 2 && b[0] != 0:
		n, b = int(b[0])<<8|int(b[1]), b[2:]
	default:
		return 0, nil, nil, fmt.Errorf("%w: length byte %02x", errTLV, n)
	}
	if len(b) < n {
		return 0, nil, nil, fmt.Errorf("%w: length %d, %d bytes left", errTLV, n, len(b))
	}
	return tag, b[:n], b[n:], nil
}
