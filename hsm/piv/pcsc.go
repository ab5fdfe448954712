//go:build cgo && linux

package piv

// A minimal PC/SC client used only to find cards. piv-go's Open takes the
// card exclusively and, in v2.6.0, keeps that hold when it fails after
// connecting (for example when a card refuses the PIV select), so probing
// readers with it can lock a reader for the rest of the process. This probe
// connects in shared mode, asks for the version and serial, and always
// disconnects and releases its context before it returns; piv.Open is then
// called only for the one reader that answered with the wanted serial.

// #cgo pkg-config: libpcsclite
// #include <stdlib.h>
// #include <PCSC/winscard.h>
// #include <PCSC/wintypes.h>
import "C"

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"
)

const (
	rcNoReaders        = 0x8010002E
	rcSharingViolation = 0x8010000B
	rcNoSmartcard      = 0x8010000C
	rcRemovedCard      = 0x80100069
	rcNoService        = 0x8010001D
	maxReadersBytes    = 64 << 10
	maxProbeResponse   = 258
)

type pcscError uint32

func (e pcscError) Error() string {
	switch uint32(e) {
	case rcNoService:
		return "pc/sc service not running (start pcscd)"
	case rcSharingViolation:
		return "card is in use by another program"
	case rcNoSmartcard, rcRemovedCard:
		return "no card in the reader"
	}
	return fmt.Sprintf("pc/sc error 0x%08x", uint32(e))
}

func rcErr(rc C.LONG) error {
	if rc == C.SCARD_S_SUCCESS {
		return nil
	}
	return pcscError(uint32(rc))
}

// probe lists the PIV cards present. Readers with no card, or whose card is
// not a PIV card, are left out; readers busy in another program are named
// in busy.
func probe() (cards []Card, busy []string, err error) {
	var ctx C.SCARDCONTEXT
	if err := rcErr(C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &ctx)); err != nil {
		return nil, nil, fmt.Errorf("connecting to pcscd: %w", err)
	}
	defer C.SCardReleaseContext(ctx)

	var n C.DWORD
	rc := C.SCardListReaders(ctx, nil, nil, &n)
	if uint32(rc) == rcNoReaders {
		return nil, nil, nil
	}
	if err := rcErr(rc); err != nil {
		return nil, nil, fmt.Errorf("listing smart card readers: %w", err)
	}
	if n == 0 || n > maxReadersBytes {
		return nil, nil, fmt.Errorf("listing smart card readers: %d bytes of names", n)
	}
	buf := make([]byte, n)
	rc = C.SCardListReaders(ctx, nil, (*C.char)(unsafe.Pointer(&buf[0])), &n)
	if uint32(rc) == rcNoReaders {
		return nil, nil, nil
	}
	if err := rcErr(rc); err != nil {
		return nil, nil, fmt.Errorf("listing smart card readers: %w", err)
	}
	for _, name := range bytes.Split(buf[:min(int(n), len(buf))], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		reader := string(name)
		card, err := probeReader(ctx, reader)
		switch {
		case err == nil:
			cards = append(cards, card)
		case err == pcscError(rcSharingViolation):
			busy = append(busy, reader)
		}
	}
	return cards, busy, nil
}

func probeReader(ctx C.SCARDCONTEXT, reader string) (Card, error) {
	cname := C.CString(reader)
	defer C.free(unsafe.Pointer(cname))
	var h C.SCARDHANDLE
	var proto C.DWORD
	if err := rcErr(C.SCardConnect(ctx, cname, C.SCARD_SHARE_SHARED, C.SCARD_PROTOCOL_T1, &h, &proto)); err != nil {
		return Card{}, err
	}
	defer C.SCardDisconnect(h, C.SCARD_LEAVE_CARD)

	if _, err := transmit(h, append([]byte{0x00, 0xa4, 0x04, 0x00, byte(len(aidPIV))}, aidPIV...)); err != nil {
		return Card{}, fmt.Errorf("selecting piv: %w", err)
	}
	v, err := transmit(h, []byte{0x00, 0xfd, 0x00, 0x00, 0x00})
	if err != nil || len(v) != 3 {
		return Card{}, fmt.Errorf("reading version: %v", err)
	}
	card := Card{Reader: reader, Firmware: fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])}
	var s []byte
	if v[0] >= 5 {
		s, err = transmit(h, []byte{0x00, 0xf8, 0x00, 0x00, 0x00})
	} else {
		// Before firmware 5 the serial comes from the YubiKey applet.
		if _, err = transmit(h, append([]byte{0x00, 0xa4, 0x04, 0x00, byte(len(aidYubiKey))}, aidYubiKey...)); err == nil {
			s, err = transmit(h, []byte{0x00, 0x01, 0x10, 0x00, 0x00})
		}
		_, _ = transmit(h, append([]byte{0x00, 0xa4, 0x04, 0x00, byte(len(aidPIV))}, aidPIV...))
	}
	if err != nil || len(s) != 4 {
		return Card{}, fmt.Errorf("reading serial: %v", err)
	}
	card.Serial = binary.BigEndian.Uint32(s)
	if v[0] > 5 || (v[0] == 5 && v[1] >= 3) {
		// PIN metadata: 06 02 TOTAL LEFT.
		if md, err := transmit(h, []byte{0x00, 0xf7, 0x00, 0x80, 0x00}); err == nil {
			if c, ok := findField(md, 0x06); ok && len(c) == 2 {
				card.PINRetriesTotal = int(c[0])
			}
		}
	}
	return card, nil
}

var (
	aidPIV     = []byte{0xa0, 0x00, 0x00, 0x03, 0x08}
	aidYubiKey = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01, 0x01}
)

// transmit sends one short APDU and returns the data of a 9000 answer.
func transmit(h C.SCARDHANDLE, apdu []byte) ([]byte, error) {
	var resp [maxProbeResponse]byte
	n := C.DWORD(len(resp))
	rc := C.SCardTransmit(h, &C.g_rgSCardT1Pci,
		(*C.BYTE)(unsafe.Pointer(&apdu[0])), C.DWORD(len(apdu)), nil,
		(*C.BYTE)(unsafe.Pointer(&resp[0])), &n)
	if err := rcErr(rc); err != nil {
		return nil, err
	}
	if n < 2 || int(n) > len(resp) {
		return nil, fmt.Errorf("answer of %d bytes", n)
	}
	if resp[n-2] != 0x90 || resp[n-1] != 0x00 {
		return nil, fmt.Errorf("card answered %02x%02x", resp[n-2], resp[n-1])
	}
	return append([]byte(nil), resp[:n-2]...), nil
}
