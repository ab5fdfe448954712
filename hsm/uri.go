package hsm

import (
	"fmt"
	"strconv"
	"strings"
)

// URI names a key without carrying any secret:
//
//	yubikey:serial=12345678;slot=9c
//	tpm:handle=0x81000010
//	tpm:handle=0x81000010;device=/dev/tpmrm0
//	file:path/to/key.pem
//
// It is parsed once at the edge into this typed value.
type URI struct {
	Kind Kind
	// Serial is the YubiKey's serial number.
	Serial uint32
	// Slot is the PIV slot, two lowercase hex digits ("9c").
	Slot string
	// Handle is the TPM persistent handle (0x81000000–0x81FFFFFF).
	Handle uint32
	// Device optionally names the TPM: a device path (/dev/tpmrm0), a swtpm
	// server ("tcp:127.0.0.1:2321" or "unix:/path"), or "simulator".
	Device string
	// Path is the file of a software key.
	Path string
}

// maxURILen caps what ParseURI reads.
const maxURILen = 4096

var pivSlots = map[string]bool{"9a": true, "9c": true, "9d": true, "9e": true}

// ParseURI parses a key URI. Unknown parameters, repeated parameters and
// secrets (pin=, pin-value=, management-key=) are refused.
func ParseURI(s string) (URI, error) {
	if len(s) > maxURILen {
		return URI{}, fmt.Errorf("key uri is %d bytes, over the %d-byte cap", len(s), maxURILen)
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return URI{}, fmt.Errorf("key uri %q: want yubikey:serial=N;slot=9c, tpm:handle=0x81000010 or file:PATH", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return URI{}, fmt.Errorf("key uri %q: control character", s)
		}
	}
	switch Kind(scheme) {
	case KindFile:
		return URI{Kind: KindFile, Path: rest}, nil
	case KindYubiKey:
		params, err := parseParams(s, rest, "serial", "slot")
		if err != nil {
			return URI{}, err
		}
		u := URI{Kind: KindYubiKey, Slot: "9c"}
		serial, ok := params["serial"]
		if !ok {
			return URI{}, fmt.Errorf("key uri %q: missing serial=N", s)
		}
		n, err := strconv.ParseUint(serial, 10, 32)
		if err != nil || n == 0 {
			return URI{}, fmt.Errorf("key uri %q: serial must be a positive decimal number", s)
		}
		u.Serial = uint32(n)
		if slot, ok := params["slot"]; ok {
			slot = strings.ToLower(slot)
			if !pivSlots[slot] {
				return URI{}, fmt.Errorf("key uri %q: slot must be one of 9a, 9c, 9d, 9e", s)
			}
			u.Slot = slot
		}
		return u, nil
	case KindTPM:
		params, err := parseParams(s, rest, "handle", "device")
		if err != nil {
			return URI{}, err
		}
		h, ok := params["handle"]
		if !ok {
			return URI{}, fmt.Errorf("key uri %q: missing handle=0x81......", s)
		}
		n, err := strconv.ParseUint(h, 0, 32)
		if err != nil || n < 0x81000000 || n > 0x81FFFFFF {
			return URI{}, fmt.Errorf("key uri %q: handle must be a persistent handle 0x81000000–0x81ffffff", s)
		}
		return URI{Kind: KindTPM, Handle: uint32(n), Device: params["device"]}, nil
	default:
		return URI{}, fmt.Errorf("key uri %q: unknown scheme %q (want yubikey, tpm or file)", s, scheme)
	}
}

func parseParams(uri, rest string, allowed ...string) (map[string]string, error) {
	params := map[string]string{}
	for _, kv := range strings.Split(rest, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("key uri %q: parameter %q is not name=value", uri, kv)
		}
		k = strings.ToLower(k)
		if strings.Contains(k, "pin") || strings.Contains(k, "management") || strings.Contains(k, "password") {
			return nil, fmt.Errorf("key uri %q: secrets never go in a key uri; the pin is asked for when needed", uri)
		}
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			return nil, fmt.Errorf("key uri %q: unknown parameter %q (allowed: %s)", uri, k, strings.Join(allowed, ", "))
		}
		if _, dup := params[k]; dup {
			return nil, fmt.Errorf("key uri %q: parameter %q given twice", uri, k)
		}
		params[k] = v
	}
	return params, nil
}

// String formats the URI in its canonical form; ParseURI(u.String()) == u.
func (u URI) String() string {
	switch u.Kind {
	case KindFile:
		return "file:" + u.Path
	case KindYubiKey:
		return fmt.Sprintf("yubikey:serial=%d;slot=%s", u.Serial, u.Slot)
	case KindTPM:
		s := fmt.Sprintf("tpm:handle=0x%08x", u.Handle)
		if u.Device != "" {
			s += ";device=" + u.Device
		}
		return s
	default:
		return string(u.Kind) + ":"
	}
}
