package tuf

import (
	"bytes"
	"strconv"
	"strings"
)

// The fast path of targets verification (see ParseTargets) checks that the
// received signed bytes are already in the canonical form signatures are
// made over, instead of decoding them into go-tuf's types and encoding them
// again. This file is that check: a scanner that accepts only JSON that
// go-securesystemslib's cjson would produce byte for byte, and that
// checkStrictJSON would also accept. Anything else (whitespace, unsorted or
// repeated keys, escapes other than \\ and \", floating point or "-0"
// numbers, nesting past MaxJSONDepth) is not an error here: the caller
// falls back to the slow path, which refuses or re-encodes it.

// cscan walks JSON in b from i. ws allows whitespace between tokens (the
// envelope around "signed"); inside "signed" it is false.
type cscan struct {
	b  []byte
	i  int
	ws bool
}

func (s *cscan) skip() {
	if !s.ws {
		return
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, or 0 at the end.
func (s *cscan) peek() byte {
	s.skip()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// expect consumes c.
func (s *cscan) expect(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// str scans a canonical string and returns the span of its contents
// (without quotes) and whether it holds escapes.
func (s *cscan) str() (start, end int, esc, ok bool) {
	if !s.expect('"') {
		return 0, 0, false, false
	}
	start = s.i
	b := s.b
	for i := s.i; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return start, i, esc, true
		case c == '\\':
			// cjson escapes only backslash and double quote.
			if i+1 >= len(b) || (b[i+1] != '\\' && b[i+1] != '"') {
				return 0, 0, false, false
			}
			esc = true
			i++
		case c < 0x20:
			// Raw control characters are not JSON.
			return 0, 0, false, false
		}
	}
	return 0, 0, false, false
}

// unescape returns the decoded contents of a canonical string.
func unescape(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var sb strings.Builder
	sb.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' {
			i++
		}
		sb.WriteByte(raw[i])
	}
	return sb.String()
}

// keyLess reports whether the decoded key a sorts strictly before b, as
// cjson sorts object keys (byte order of the decoded strings).
func keyLess(a []byte, aesc bool, b []byte, besc bool) bool {
	if !aesc && !besc {
		return bytes.Compare(a, b) < 0
	}
	return unescape(a) < unescape(b)
}

// integer scans a canonical integer: -?(0|[1-9][0-9]*), not -0, within
// int64.
func (s *cscan) integer() (int64, bool) {
	s.skip()
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		return 0, false
	}
	if b[i] == '0' {
		i++
	} else {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, false
	}
	txt := b[start:i]
	if len(txt) > 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(txt), 10, 64)
	if err != nil || (v == 0 && txt[0] == '-') {
		return 0, false
	}
	s.i = i
	return v, true
}

// value scans any canonical value at nesting depth depth.
func (s *cscan) value(depth int) bool {
	switch s.peek() {
	case '{':
		return s.object(depth, nil)
	case '[':
		if depth >= MaxJSONDepth-1 {
			return false
		}
		s.i++
		if s.expect(']') {
			return true
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			if s.expect(']') {
				return true
			}
			if !s.expect(',') {
				return false
			}
		}
	case '"':
		_, _, _, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		_, ok := s.integer()
		return ok
	}
}

func (s *cscan) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// object scans a canonical object: keys strictly increasing (so none
// repeats). member, when not nil, scans each member's value itself and
// receives the key's span; otherwise values are scanned generically.
func (s *cscan) object(depth int, member func(ks, ke int, esc bool) bool) bool {
	if depth >= MaxJSONDepth-1 || !s.expect('{') {
		return false
	}
	if s.expect('}') {
		return true
	}
	pks, pke, pesc := -1, -1, false
	for {
		ks, ke, esc, ok := s.str()
		if !ok {
			return false
		}
		if pks >= 0 && !keyLess(s.b[pks:pke], pesc, s.b[ks:ke], esc) {
			return false
		}
		pks, pke, pesc = ks, ke, esc
		if !s.expect(':') {
			return false
		}
		if member != nil {
			if !member(ks, ke, esc) {
				return false
			}
		} else if !s.value(depth + 1) {
			return false
		}
		if s.expect('}') {
			return true
		}
		if !s.expect(',') {
			return false
		}
	}
}

// isCanonical reports whether b is one JSON value in canonical form.
func isCanonical(b []byte) bool {
	s := &cscan{b: b}
	return s.value(0) && s.i == len(b)
}

// isLowerHex reports whether b is lowercase hex of even length, the only
// form go-tuf's HexBytes encodes back unchanged.
func isLowerHex(b []byte) bool {
	if len(b)%2 != 0 {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
