//go:build cgo && linux

package piv

// A raw PIV session for the few commands piv-go v2.6.0 does not offer:
// reading and writing the ADMIN DATA object 5FFF00 (see admindata.go) and
// reading the PIN, PUK and management key metadata. It holds the card
// exclusively inside one PC/SC transaction and is never open at the same
// time as a piv-go handle on the same card.

// #cgo pkg-config: libpcsclite
// #include <stdlib.h>
// #include <PCSC/winscard.h>
// #include <PCSC/wintypes.h>
import "C"

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unsafe"
)

const (
	maxRawResponse = 4096 // bytes gathered over GET RESPONSE
	insGetData     = 0xcb
	insPutData     = 0xdb
	insMetadata    = 0xf7
	insAuth        = 0x87
	refMgmt        = 0x9b
	refPIN         = 0x80
	refPUK         = 0x81
	algTDES        = 0x03
)

// swError is a status word other than 9000.
type swError uint16

func (e swError) Error() string { return fmt.Sprintf("the card answered %04x", uint16(e)) }

// Status returns the status word, as piv-go's errors do.
func (e swError) Status() uint16 { return uint16(e) }

type rawSession struct {
	ctx C.SCARDCONTEXT
	h   C.SCARDHANDLE
	fw  [3]byte
}

// openRaw connects to reader, selects PIV and checks that the card there
// is the one with serial (firmware 5 and later, where PIV tells it).
func openRaw(reader string, serial uint32) (*rawSession, error) {
	r := &rawSession{}
	if err := rcErr(C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &r.ctx)); err != nil {
		return nil, fmt.Errorf("connecting to pcscd: %w", err)
	}
	cname := C.CString(reader)
	defer C.free(unsafe.Pointer(cname))
	var proto C.DWORD
	if err := rcErr(C.SCardConnect(r.ctx, cname, C.SCARD_SHARE_EXCLUSIVE, C.SCARD_PROTOCOL_T1, &r.h, &proto)); err != nil {
		C.SCardReleaseContext(r.ctx)
		return nil, fmt.Errorf("connecting to %q: %w", reader, err)
	}
	if err := rcErr(C.SCardBeginTransaction(r.h)); err != nil {
		r.close()
		return nil, fmt.Errorf("connecting to %q: %w", reader, err)
	}
	if _, err := r.send(0, 0xa4, 0x04, 0x00, aidPIV); err != nil {
		r.close()
		return nil, fmt.Errorf("selecting piv: %w", err)
	}
	v, err := r.send(0, 0xfd, 0, 0, nil)
	if err != nil || len(v) != 3 {
		r.close()
		return nil, fmt.Errorf("reading the firmware version: %v", errOr(err, "bad answer"))
	}
	copy(r.fw[:], v)
	if v[0] >= 5 {
		s, err := r.send(0, 0xf8, 0, 0, nil)
		if err != nil || len(s) != 4 {
			r.close()
			return nil, fmt.Errorf("reading the serial: %w", errOr(err, "bad answer"))
		}
		if got := binary.BigEndian.Uint32(s); got != serial {
			r.close()
			return nil, fmt.Errorf("the card in %q is now %d, not %d; try again", reader, got, serial)
		}
	}
	return r, nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

func (r *rawSession) close() {
	C.SCardEndTransaction(r.h, C.SCARD_LEAVE_CARD)
	C.SCardDisconnect(r.h, C.SCARD_LEAVE_CARD)
	C.SCardReleaseContext(r.ctx)
}

func (r *rawSession) atLeast(major, minor byte) bool {
	return r.fw[0] > major || (r.fw[0] == major && r.fw[1] >= minor)
}

// send transmits one short APDU, chaining data over 255 bytes and
// gathering a long answer with GET RESPONSE, and returns the answer's data
// when the status is 9000.
func (r *rawSession) send(cla, ins, p1, p2 byte, data []byte) ([]byte, error) {
	for len(data) > 255 {
		if _, err := r.transmit(append([]byte{cla | 0x10, ins, p1, p2, 255}, data[:255]...)); err != nil {
			return nil, err
		}
		data = data[255:]
	}
	apdu := []byte{cla, ins, p1, p2}
	if len(data) > 0 {
		apdu = append(append(apdu, byte(len(data))), data...)
	} else {
		apdu = append(apdu, 0)
	}
	var out []byte
	for {
		resp, err := r.transmit(apdu)
		if err != nil {
			return nil, err
		}
		n := len(resp)
		sw1, sw2 := resp[n-2], resp[n-1]
		out = append(out, resp[:n-2]...)
		if len(out) > maxRawResponse {
			return nil, fmt.Errorf("answer over %d bytes", maxRawResponse)
		}
		switch {
		case sw1 == 0x90 && sw2 == 0x00:
			return out, nil
		case sw1 == 0x61:
			apdu = []byte{0x00, 0xc0, 0x00, 0x00, sw2}
		default:
			return nil, swError(uint16(sw1)<<8 | uint16(sw2))
		}
	}
}

func (r *rawSession) transmit(apdu []byte) ([]byte, error) {
	var resp [maxProbeResponse]byte
	n := C.DWORD(len(resp))
	rc := C.SCardTransmit(r.h, &C.g_rgSCardT1Pci,
		(*C.BYTE)(unsafe.Pointer(&apdu[0])), C.DWORD(len(apdu)), nil,
		(*C.BYTE)(unsafe.Pointer(&resp[0])), &n)
	if err := rcErr(rc); err != nil {
		return nil, err
	}
	if n < 2 || int(n) > len(resp) {
		return nil, fmt.Errorf("scard response too short: %d bytes", n)
	}
	return append([]byte(nil), resp[:n]...), nil
}

// metadata returns the GET METADATA answer for a key reference (firmware
// 5.3 and later).
func (r *rawSession) metadata(ref byte) ([]byte, error) {
	return r.send(0, insMetadata, 0, ref, nil)
}

// retries reads the PIN or PUK retry counters from its metadata: (left,
// total). Before firmware 5.3 they cannot be read without spending a try.
func (r *rawSession) retries(ref byte) (left, total int, err error) {
	if !r.atLeast(5, 3) {
		return -1, -1, nil
	}
	md, err := r.metadata(ref)
	if err != nil {
		return 0, 0, err
	}
	v, ok := findField(md, 0x06)
	if !ok || len(v) != 2 {
		return 0, 0, errors.New("the card's pin metadata has no retry counters")
	}
	return int(v[1]), int(v[0]), nil
}

// managementKeyInfo reads the management key's algorithm and whether it is
// the factory default. Before firmware 5.3 it is 3DES and unknown.
func (r *rawSession) managementKeyInfo() (alg byte, isDefault *bool, err error) {
	if !r.atLeast(5, 3) {
		return algTDES, nil, nil
	}
	md, err := r.metadata(refMgmt)
	if err != nil {
		return 0, nil, err
	}
	a, ok := findField(md, 0x01)
	if !ok || len(a) != 1 {
		return 0, nil, errors.New("the card's management key metadata names no algorithm")
	}
	if d, ok := findField(md, 0x05); ok && len(d) == 1 {
		b := d[0] == 1
		isDefault = &b
	}
	return a[0], isDefault, nil
}

// authenticate proves the management key to the card (mutual
// authentication, NIST SP 800-73-4 part 2, 3.2.4).
func (r *rawSession) authenticate(key []byte) error {
	alg, _, err := r.managementKeyInfo()
	if err != nil {
		return err
	}
	var block cipher.Block
	switch alg {
	case algTDES:
		block, err = des.NewTripleDESCipher(key)
	case 0x08, 0x0a, 0x0c:
		block, err = aes.NewCipher(key)
	default:
		return fmt.Errorf("management key algorithm %02x is not supported", alg)
	}
	if err != nil {
		return fmt.Errorf("management key: %w", err)
	}
	n := block.BlockSize()
	resp, err := r.send(0, insAuth, alg, refMgmt, []byte{0x7c, 0x02, 0x80, 0x00})
	if err != nil {
		return err
	}
	outer, ok := findField(resp, 0x7c)
	witness, ok2 := findField(outer, 0x80)
	if !ok || !ok2 || len(witness) != n {
		return errors.New("the card's management key witness is malformed")
	}
	plain := make([]byte, n)
	block.Decrypt(plain, witness)
	challenge := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, challenge); err != nil {
		return err
	}
	inner := append(appendTLV(nil, 0x80, plain), appendTLV(nil, 0x81, challenge)...)
	resp, err = r.send(0, insAuth, alg, refMgmt, appendTLV(nil, 0x7c, inner))
	if err != nil {
		return err
	}
	outer, ok = findField(resp, 0x7c)
	answer, ok2 := findField(outer, 0x82)
	want := make([]byte, n)
	block.Encrypt(want, challenge)
	if !ok || !ok2 || !bytes.Equal(answer, want) {
		return errors.New("the card did not prove it holds the management key")
	}
	return nil
}

// getObject reads a data object's content (inside 53); an absent object
// gives nil and no error.
func (r *rawSession) getObject(id uint32) ([]byte, error) {
	resp, err := r.send(0, insGetData, 0x3f, 0xff, []byte{0x5c, 0x03, byte(id >> 16), byte(id >> 8), byte(id)})
	if status(err) == 0x6a82 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tag, v, rest, err := readTLV(resp)
	if err != nil || tag != 0x53 || len(rest) != 0 {
		return nil, fmt.Errorf("object %06x: not a 53 data object", id)
	}
	return v, nil
}

// putObject writes a data object; the management key must be proven.
func (r *rawSession) putObject(id uint32, content []byte) error {
	data := append([]byte{0x5c, 0x03, byte(id >> 16), byte(id >> 8), byte(id)}, appendTLV(nil, 0x53, content)...)
	_, err := r.send(0, insPutData, 0x3f, 0xff, data)
	return err
}

// findField returns the value of the first TLV with tag in b (one-byte
// tags), or false.
func findField(b []byte, tag byte) ([]byte, bool) {
	for len(b) > 0 {
		t, v, rest, err := readTLV(b)
		if err != nil {
			return nil, false
		}
		if t == tag {
			return v, true
		}
		b = rest
	}
	return nil, false
}

// markManagementKeyProtected sets the "management key stored on the card,
// PIN-protected" flag in ADMIN DATA (5FFF00), as ykman does, keeping the
// object's other fields. It writes nothing when the flag is already set.
func markManagementKeyProtected(reader string, serial uint32, mgmt []byte) error {
	r, err := openRaw(reader, serial)
	if err != nil {
		return err
	}
	defer r.close()
	raw, err := r.getObject(objAdminData)
	if err != nil {
		return fmt.Errorf("reading the admin data object 5fff00: %w", err)
	}
	a, err := parseAdminData(raw)
	if err != nil {
		// Another tool wrote something ykman could not read either: start
		// afresh, as ykman does with an absent object.
		a = adminData{}
	}
	if a.managementKeyProtected() {
		return nil
	}
	a.setFlag(adminFlagManagementProtected)
	if err := r.authenticate(mgmt); err != nil {
		return fmt.Errorf("authenticating with the stored management key: %w", err)
	}
	if err := r.putObject(objAdminData, a.marshal()); err != nil {
		return fmt.Errorf("writing the admin data object 5fff00: %w", err)
	}
	return nil
}
