package ur

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The UR payloads used here need a tiny, strict CBOR subset (RFC 8949):
// unsigned integers up to 2^32-1, definite-length byte strings and one
// five-element array. Encodings must be minimal ("preferred serialization");
// anything else is refused, so parse followed by marshal reproduces the
// input byte for byte.

var errCBORShort = errors.New("cbor: input ends early")

const (
	cborUint  = 0
	cborBytes = 2
	cborArray = 4
)

func appendHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xff:
		return append(b, m|24, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, m|27), v)
	}
}

// readHead reads one item head and insists on the minimal encoding of its
// argument. It returns the major type, the argument and the rest of b.
func readHead(b []byte) (major byte, v uint64, rest []byte, err error) {
	if len(b) == 0 {
		return 0, 0, nil, errCBORShort
	}
	major, info := b[0]>>5, b[0]&0x1f
	b = b[1:]
	var n int
	switch {
	case info < 24:
		return major, uint64(info), b, nil
	case info == 24:
		n = 1
	case info == 25:
		n = 2
	case info == 26:
		n = 4
	case info == 27:
		n = 8
	default:
		return 0, 0, nil, fmt.Errorf("cbor: unsupported additional information %d (indefinite lengths and reserved values are refused)", info)
	}
	if len(b) < n {
		return 0, 0, nil, errCBORShort
	}
	switch n {
	case 1:
		v = uint64(b[0])
		if v < 24 {
			return 0, 0, nil, errors.New("cbor: non-minimal integer encoding")
		}
	case 2:
		v = uint64(binary.BigEndian.Uint16(b))
		if v <= 0xff {
			return 0, 0, nil, errors.New("cbor: non-minimal integer encoding")
		}
	case 4:
		v = uint64(binary.BigEndian.Uint32(b))
		if v <= 0xffff {
			return 0, 0, nil, errors.New("cbor: non-minimal integer encoding")
		}
	case 8:
		v = binary.BigEndian.Uint64(b)
		if v <= 0xffffffff {
			return 0, 0, nil, errors.New("cbor: non-minimal integer encoding")
		}
	}
	return major, v, b[n:], nil
}

func readUint32(b []byte, what string) (uint32, []byte, error) {
	major, v, rest, err := readHead(b)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	if major != cborUint {
		return 0, nil, fmt.Errorf("%s: cbor major type %d is not an unsigned integer", what, major)
	}
	if v > 0xffffffff {
		return 0, nil, fmt.Errorf("%s: %d does not fit in 32 bits", what, v)
	}
	return uint32(v), rest, nil
}

// readBytes reads a definite-length byte string of at most max bytes.
func readBytes(b []byte, max int, what string) ([]byte, []byte, error) {
	major, n, rest, err := readHead(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if major != cborBytes {
		return nil, nil, fmt.Errorf("%s: cbor major type %d is not a byte string", what, major)
	}
	if n > uint64(max) {
		return nil, nil, &LimitError{What: what + " length", Got: n, Max: uint64(max)}
	}
	if uint64(len(rest)) < n {
		return nil, nil, fmt.Errorf("%s: %w", what, errCBORShort)
	}
	return rest[:n], rest[n:], nil
}

// encodeBytesPayload wraps msg as the CBOR byte string that a UR of type
// "bytes" carries.
func encodeBytesPayload(msg []byte) []byte {
	return append(appendHead(make([]byte, 0, len(msg)+9), cborBytes, uint64(len(msg))), msg...)
}

// decodeBytesPayload unwraps the CBOR byte string of a "bytes" UR.
func decodeBytesPayload(cbor []byte, max int) ([]byte, error) {
	msg, rest, err := readBytes(cbor, max, "bytes payload")
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("bytes payload: %d bytes of trailing data after the cbor byte string", len(rest))
	}
	return msg, nil
}
