//go:build cgo && linux

package piv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"

	pivgo "github.com/go-piv/piv-go/v2/piv"

	"airlock.dev/airlock/hsm"
)

// ReadStatus reads the status of the card with this serial: retry
// counters, management key, and every key slot with its policies, holder
// and attestation. It needs no PIN and changes nothing.
func ReadStatus(ctx context.Context, serial uint32) (*Status, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	card, err := findCard(serial)
	if err != nil {
		return nil, err
	}
	r, err := openRaw(card.Reader, serial)
	if err != nil {
		return nil, fmt.Errorf("yubikey %d: %w", serial, classify(err))
	}
	defer r.close()
	st := &Status{Card: card}
	if st.PINRetries, st.PINRetriesTotal, err = r.retries(refPIN); err != nil {
		return nil, fmt.Errorf("yubikey %d: reading the pin counter: %w", serial, classify(err))
	}
	if st.PUKRetries, st.PUKRetriesTotal, err = r.retries(refPUK); err != nil {
		return nil, fmt.Errorf("yubikey %d: reading the puk counter: %w", serial, classify(err))
	}
	alg, def, err := r.managementKeyInfo()
	if err != nil {
		return nil, fmt.Errorf("yubikey %d: reading the management key metadata: %w", serial, classify(err))
	}
	st.ManagementKey.Algorithm, st.ManagementKey.Default = algorithmName(alg), def
	raw, err := r.getObject(objAdminData)
	if err != nil {
		return nil, fmt.Errorf("yubikey %d: reading admin data 5fff00: %w", serial, classify(err))
	}
	if a, err := parseAdminData(raw); err != nil {
		st.ManagementKey.AdminDataError = err.Error()
	} else {
		st.ManagementKey.StoredProtected = a.managementKeyProtected()
		st.ManagementKey.DerivedFromPIN = a.salt != nil
		st.ManagementKey.PUKBlocked = a.flag(adminFlagPUKBlocked)
	}
	var device []byte
	for _, name := range []string{"9a", "9c", "9d", "9e"} {
		s, err := r.slotStatus(name, &device)
		if err != nil {
			return nil, fmt.Errorf("yubikey %d: slot %s: %w", serial, name, classify(err))
		}
		if s != nil {
			st.Slots = append(st.Slots, *s)
		}
	}
	return st, nil
}

// findCard returns the one card with this serial.
func findCard(serial uint32) (Card, error) {
	cards, busy, err := probe()
	if err != nil {
		return Card{}, fmt.Errorf("yubikey %d: %w", serial, err)
	}
	var found []Card
	for _, c := range cards {
		if c.Serial == serial {
			found = append(found, c)
		}
	}
	switch {
	case len(found) > 1:
		return Card{}, fmt.Errorf("yubikey %d: %d cards answer with this serial; remove all but one", serial, len(found))
	case len(found) == 0 && len(busy) > 0:
		return Card{}, fmt.Errorf("yubikey %d not found; readers %q are in use by another program: close it and try again: %w", serial, busy, hsm.ErrNotFound)
	case len(found) == 0:
		return Card{}, fmt.Errorf("yubikey %d not found: insert the key and try again: %w", serial, hsm.ErrNotFound)
	}
	return found[0], nil
}

var objSlotCert = map[string]uint32{"9a": 0x5fc105, "9c": 0x5fc10a, "9d": 0x5fc10b, "9e": 0x5fc101}

// slotStatus describes one slot, or returns nil when it holds no key.
// device caches the card's attestation certificate.
func (r *rawSession) slotStatus(name string, device *[]byte) (*SlotStatus, error) {
	ref := slotKeys[name]
	s := &SlotStatus{Slot: name}
	if r.atLeast(5, 3) {
		md, err := r.metadata(ref)
		if status(err) == 0x6a88 || status(err) == 0x6a82 {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the slot metadata: %w", err)
		}
		if v, ok := findField(md, 0x01); ok && len(v) == 1 {
			s.Algorithm = algorithmName(v[0])
		}
		if v, ok := findField(md, 0x02); ok && len(v) == 2 {
			s.PINPolicy, s.TouchPolicy = pinPolicyName(v[0]), touchPolicyName(v[1])
		}
		if v, ok := findField(md, 0x03); ok && len(v) == 1 {
			s.Generated = v[0] == 0x01
		}
		if v, ok := findField(md, 0x04); ok {
			if pt, ok := findField(v, 0x86); ok && len(pt) == 65 && pt[0] == 4 {
				x, y := new(big.Int).SetBytes(pt[1:33]), new(big.Int).SetBytes(pt[33:])
				pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
				if s.Algorithm == "ECCP256" && pub.Curve.IsOnCurve(x, y) {
					s.Public = pub
				}
			}
		}
	}
	att, err := r.send(0, 0xf9, ref, 0, nil)
	switch {
	case err == nil:
		cert, perr := x509.ParseCertificate(att)
		if perr != nil {
			s.Note = "the card's attestation does not parse: " + perr.Error()
			break
		}
		if *device == nil {
			obj, err := r.getObject(0x5fff01)
			if err != nil {
				return nil, fmt.Errorf("reading the card's attestation certificate: %w", err)
			}
			der, ok := findField(obj, 0x70)
			if !ok {
				s.Note = "the card has no attestation certificate"
				break
			}
			*device = der
		}
		s.Generated = true
		s.Attestation = &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: [][]byte{att, *device}}
		if s.Public == nil {
			if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); ok {
				s.Public = pub
			}
		}
		if s.PINPolicy == "" {
			for _, ext := range cert.Extensions {
				if ext.Id.Equal(oidYubicoPolicy) && len(ext.Value) == 2 {
					s.PINPolicy, s.TouchPolicy = pinPolicyName(ext.Value[0]), touchPolicyName(ext.Value[1])
				}
			}
		}
	case !r.atLeast(5, 3) && (status(err) == 0x6a80 || status(err) == 0x6a88 || status(err) == 0x6a82):
		return nil, nil // nothing to attest, and no metadata to say more
	case status(err) == 0x6a80 || status(err) == 0x6a88:
		if s.Generated {
			s.Note = "the card does not attest this key"
		} else {
			s.Note = "imported key: no attestation covers it"
		}
	default:
		return nil, fmt.Errorf("reading the slot attestation: %w", err)
	}
	if obj, err := r.getObject(objSlotCert[name]); err == nil && obj != nil {
		if der, ok := findField(obj, 0x70); ok {
			if c, err := x509.ParseCertificate(der); err == nil {
				s.Holder = c.Subject.CommonName
			}
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading the slot certificate: %w", err)
	}
	return s, nil
}

// ChangePIN changes the card's PIN. A wrong PIN gives an
// *hsm.WrongPINError with the tries left.
func ChangePIN(ctx context.Context, serial uint32, oldPIN, newPIN []byte) error {
	if err := checkNewPIN(newPIN); err != nil {
		return err
	}
	if len(oldPIN) == 0 || len(oldPIN) > maxPINLen {
		return fmt.Errorf("a piv pin is 1 to %d characters, got %d", maxPINLen, len(oldPIN))
	}
	yk, _, err := openCard(serial)
	if err != nil {
		return err
	}
	defer yk.Close()
	if err := yk.SetPIN(string(oldPIN), string(newPIN)); err != nil {
		if e := pinError(err); e != nil {
			return fmt.Errorf("yubikey %d: %w", serial, e)
		}
		return fmt.Errorf("yubikey %d: changing the pin: %w", serial, classify(err))
	}
	return nil
}

// UnblockPIN sets a new PIN with the PUK, which also resets the PIN's
// retry counter.
func UnblockPIN(ctx context.Context, serial uint32, puk, newPIN []byte) error {
	if err := checkNewPIN(newPIN); err != nil {
		return err
	}
	if len(puk) == 0 || len(puk) > maxPINLen {
		return fmt.Errorf("a piv puk is 1 to %d characters, got %d", maxPINLen, len(puk))
	}
	yk, _, err := openCard(serial)
	if err != nil {
		return err
	}
	defer yk.Close()
	if err := yk.Unblock(string(puk), string(newPIN)); err != nil {
		var ae pivgo.AuthErr
		switch {
		case status(err) == 0x6983:
			return fmt.Errorf("yubikey %d: %w: the pin cannot be unblocked any more; only a reset of the card's piv application (ykman piv reset), which destroys every key on it, makes it usable again", serial, ErrPUKBlocked)
		case errors.As(err, &ae) && ae.Retries == 0:
			return fmt.Errorf("yubikey %d: wrong puk, and that was the last try: %w: only a reset of the card's piv application (ykman piv reset) makes it usable again", serial, ErrPUKBlocked)
		case errors.As(err, &ae):
			return fmt.Errorf("yubikey %d: %w", serial, &WrongPUKError{Retries: ae.Retries})
		}
		return fmt.Errorf("yubikey %d: unblocking the pin: %w", serial, classify(err))
	}
	return nil
}
