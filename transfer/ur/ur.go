// Package ur implements Blockchain Commons Uniform Resources for crossing
// the air gap as animated QR codes: bytewords (BCR-2020-012), UR strings of
// type "bytes" (BCR-2020-005) and multipart fountain codes (BCR-2024-001).
//
// A sender cuts a message into equal fragments and shows an endless
// sequence of parts: first every fragment once ("pure" parts), then parts
// that XOR pseudo-randomly chosen fragments ("mixed" parts). Which
// fragments a part mixes follows from its sequence number and the message
// checksum alone, so any receiver that implements the standard, such as
// the reference JavaScript decoder, can use any part. The Encoder can order
// parts so that receivers need fewer frames when frames are lost; every
// part it produces is a standard UR part.
//
// Every part is hostile input. The Decoder parses strictly, refuses parts
// of a different message, and stops at the caps in Limits before it
// allocates. It solves mixed parts by Gaussian elimination over GF(2), so
// it uses every independent part it sees.
//
// Encoders and Decoders are not safe for concurrent use; package-level
// functions are.
package ur

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	// DefaultMaxMessageLen caps the payload a Decoder accepts (1 MiB).
	DefaultMaxMessageLen = 1 << 20
	// DefaultMaxFragments caps the fragment count a Decoder accepts.
	DefaultMaxFragments = 4096
	// DefaultMaxPendingMixed caps how many unsolved mixed parts a Decoder
	// keeps. It never binds for honest senders with the default fragment cap.
	DefaultMaxPendingMixed = 4096
	// MaxFragmentLen caps the data of one part; the largest QR symbol holds
	// less than half of it in UR form.
	MaxFragmentLen = 4096
	// MaxPartChars caps the length of one multipart UR string.
	MaxPartChars = 2*(MaxFragmentLen+32) + 64
)

// ErrLimit is matched (errors.Is) by every *LimitError.
var ErrLimit = errors.New("size cap exceeded")

// ErrDifferentMessage reports a part that belongs to another message than
// the one being received.
var ErrDifferentMessage = errors.New("part belongs to a different message")

// LimitError reports input that claims more than a named cap allows.
type LimitError struct {
	What     string // what was too large, for example "message length"
	Got, Max uint64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s %d exceeds the cap of %d; refusing the transfer (send a smaller payload or raise the limit)", e.What, e.Got, e.Max)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// BytesType is the only UR type this package produces and accepts.
const BytesType = "bytes"

// EncodeSingle returns msg as a single-part UR of type "bytes" in
// lowercase, for example "ur:bytes/hdcx...". Callers that render QR codes
// should upper-case it.
func EncodeSingle(msg []byte) string {
	return "ur:" + BytesType + "/" + EncodeBytewords(Minimal, encodeBytesPayload(msg))
}

// DecodeSingle decodes a single-part UR of type "bytes", in all-lowercase
// or all-uppercase form, whose message is at most maxLen bytes
// (DefaultMaxMessageLen if maxLen <= 0).
func DecodeSingle(s string, maxLen int) ([]byte, error) {
	if maxLen <= 0 {
		maxLen = DefaultMaxMessageLen
	}
	if cap := 2*(maxLen+9+4) + len("ur:bytes/"); len(s) > cap {
		return nil, &LimitError{What: "single-part ur length", Got: uint64(len(s)), Max: uint64(cap)}
	}
	u, err := parseUR(s)
	if err != nil {
		return nil, err
	}
	if u.seq != "" {
		return nil, fmt.Errorf("ur: %q is part %s of a multipart ur, not a single-part ur", truncate(s), u.seq)
	}
	cbor, err := DecodeBytewords(Minimal, u.body)
	if err != nil {
		return nil, fmt.Errorf("ur: %w", err)
	}
	msg, err := decodeBytesPayload(cbor, maxLen)
	if err != nil {
		return nil, fmt.Errorf("ur: %w", err)
	}
	return msg, nil
}

// encodeMultipart returns the lowercase UR string of one part.
func encodeMultipart(p Part) string {
	return "ur:" + BytesType + "/" + strconv.FormatUint(uint64(p.SeqNum), 10) + "-" +
		strconv.FormatUint(uint64(p.SeqLen), 10) + "/" + EncodeBytewords(Minimal, p.MarshalCBOR())
}

// DecodePart parses one multipart UR string of type "bytes" (all-lowercase
// or all-uppercase) into its part, checking that the sequence in the path
// matches the one in the CBOR.
func DecodePart(s string) (Part, error) {
	if len(s) > MaxPartChars {
		return Part{}, &LimitError{What: "ur part length", Got: uint64(len(s)), Max: MaxPartChars}
	}
	u, err := parseUR(s)
	if err != nil {
		return Part{}, err
	}
	if u.seq == "" {
		return Part{}, fmt.Errorf("ur: %q is a single-part ur, not a part of a multipart ur", truncate(s))
	}
	seqNum, seqLen, err := parseSeq(u.seq)
	if err != nil {
		return Part{}, err
	}
	cbor, err := DecodeBytewords(Minimal, u.body)
	if err != nil {
		return Part{}, fmt.Errorf("ur: %w", err)
	}
	p, err := ParsePart(cbor)
	if err != nil {
		return Part{}, fmt.Errorf("ur: %w", err)
	}
	if p.SeqNum != seqNum || p.SeqLen != seqLen {
		return Part{}, fmt.Errorf("ur: path says part %d-%d but its cbor says %d-%d", seqNum, seqLen, p.SeqNum, p.SeqLen)
	}
	return p, nil
}

type parsedUR struct {
	seq  string // "n-m", or empty for a single-part UR
	body string // lowercase minimal bytewords
}

// parseUR splits "ur:bytes[/seq]/body". It accepts one case throughout,
// lower or upper, and only the type "bytes".
func parseUR(s string) (parsedUR, error) {
	lower := strings.ToLower(s)
	if lower != s && strings.ToUpper(s) != s {
		return parsedUR{}, fmt.Errorf("ur: %q mixes upper and lower case", truncate(s))
	}
	rest, ok := strings.CutPrefix(lower, "ur:")
	if !ok {
		return parsedUR{}, fmt.Errorf("ur: %q does not start with \"ur:\" (not a uniform resource)", truncate(s))
	}
	comps := strings.Split(rest, "/")
	if len(comps) < 2 || len(comps) > 3 {
		return parsedUR{}, fmt.Errorf("ur: %q must have the form ur:type/body or ur:type/n-m/body", truncate(s))
	}
	if typ := comps[0]; typ != BytesType {
		if !validType(typ) {
			return parsedUR{}, fmt.Errorf("ur: invalid type %q", truncate(typ))
		}
		return parsedUR{}, fmt.Errorf("ur: type %q is not supported (want %q)", typ, BytesType)
	}
	if len(comps) == 2 {
		return parsedUR{body: comps[1]}, nil
	}
	return parsedUR{seq: comps[1], body: comps[2]}, nil
}

func validType(t string) bool {
	if t == "" {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// parseSeq parses "n-m" with canonical decimal numbers 1..2^32-1.
func parseSeq(seq string) (uint32, uint32, error) {
	a, b, ok := strings.Cut(seq, "-")
	if !ok {
		return 0, 0, fmt.Errorf("ur: sequence %q is not of the form n-m", truncate(seq))
	}
	n, err1 := parseSeqNumber(a)
	m, err2 := parseSeqNumber(b)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("ur: sequence %q: %w", truncate(seq), err)
	}
	return n, m, nil
}

func parseSeqNumber(s string) (uint32, error) {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return 0, fmt.Errorf("%q is not a positive decimal number without leading zeros", s)
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q does not fit in 32 bits", s)
	}
	return uint32(v), nil
}

// truncate shortens hostile text quoted in errors.
func truncate(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
