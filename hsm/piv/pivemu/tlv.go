package pivemu

// appendTLV appends a BER-TLV with a one- or two-byte tag and a definite
// length (short form, 81 xx or 82 xx xx).
func appendTLV(b []byte, tag int, v []byte) []byte {
	if tag > 0xff {
		b = append(b, byte(tag>>8))
	}
	b = append(b, byte(tag))
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

// findTLV returns the value of the first top-level TLV with a one-byte tag
// in b. Malformed input yields false.
func findTLV(b []byte, tag byte) ([]byte, bool) {
	for len(b) > 0 {
		t := b[0]
		b = b[1:]
		if t&0x1f == 0x1f {
			// Two-byte tag: skip the second byte; never the one we look for.
			if len(b) == 0 {
				return nil, false
			}
			b = b[1:]
			t = 0
		}
		if len(b) == 0 {
			return nil, false
		}
		n := int(b[0])
		b = b[1:]
		switch n {
		case 0x81:
			if len(b) < 1 {
				return nil, false
			}
			n, b = int(b[0]), b[1:]
		case 0x82:
			if len(b) < 2 {
				return nil, false
			}
			n, b = int(b[0])<<8|int(b[1]), b[2:]
		default:
			if n >= 0x80 {
				return nil, false
			}
		}
		if len(b) < n {
			return nil, false
		}
		if t == tag {
			return b[:n], true
		}
		b = b[n:]
	}
	return nil, false
}
