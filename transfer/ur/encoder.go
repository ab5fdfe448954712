package ur

import (
	"crypto/subtle"
	"fmt"
	"strings"
)

const (
	// DefaultMaxFragmentLen suits camera-friendly QR versions: a 200-byte
	// fragment makes an uppercase UR part of about 470 characters, QR
	// version 12 at error correction level M.
	DefaultMaxFragmentLen = 200
	// DefaultMinFragmentLen is the reference implementation's lower bound.
	DefaultMinFragmentLen = 10
	// MaxEncodeLen caps the message an Encoder accepts: the fragment count
	// must stay within what default Decoders accept.
	MaxEncodeLen = DefaultMaxMessageLen
)

// Schedule chooses the order in which an Encoder shows parts.
type Schedule int

const (
	// ScheduleDense shows every pure part once and then, mostly, mixed
	// parts whose degree is near half the fragment count (skipping the
	// sequence numbers whose degree is far from it), with every
	// pureEvery-th frame repeating a pure part in turn so that decoders
	// that only peel (the reference) finish too. A Gaussian-elimination
	// decoder needs little more than fragments ÷ (1 − loss) frames.
	ScheduleDense Schedule = iota
	// ScheduleReference shows parts 1, 2, 3, … exactly as the reference
	// encoders do.
	ScheduleReference
)

// densePureEvery is how often ScheduleDense repeats a pure part after the
// first round: one frame in densePureEvery.
const densePureEvery = 4

// EncoderOptions configures an Encoder. The zero value is usable.
type EncoderOptions struct {
	MaxFragmentLen int      // default DefaultMaxFragmentLen
	MinFragmentLen int      // default DefaultMinFragmentLen
	Schedule       Schedule // default ScheduleDense
	Lowercase      bool     // produce "ur:bytes/…" instead of "UR:BYTES/…"
}

// Encoder produces the endless part sequence of one message.
type Encoder struct {
	msg       []byte // the user message
	payload   []byte // its CBOR byte string: the fountain-coded message
	fragLen   int
	fragments [][]byte
	checksum  uint32
	ch        *chooser
	opts      EncoderOptions

	frame     uint64 // frames produced so far
	nextMixed uint32 // next candidate sequence number for mixed parts
	nextPure  uint32 // next pure part to repeat, zero-based
	lo, hi    int    // degree window for dense mixed parts
}

// NewEncoder prepares msg (1 byte to MaxEncodeLen) for transfer.
func NewEncoder(msg []byte, opts EncoderOptions) (*Encoder, error) {
	if len(msg) == 0 {
		return nil, fmt.Errorf("ur: empty message; nothing to send")
	}
	if len(msg) > MaxEncodeLen {
		return nil, &LimitError{What: "message length", Got: uint64(len(msg)), Max: MaxEncodeLen}
	}
	if opts.MaxFragmentLen == 0 {
		opts.MaxFragmentLen = DefaultMaxFragmentLen
	}
	if opts.MinFragmentLen == 0 {
		opts.MinFragmentLen = DefaultMinFragmentLen
	}
	if opts.MinFragmentLen < 1 || opts.MaxFragmentLen < opts.MinFragmentLen || opts.MaxFragmentLen > MaxFragmentLen {
		return nil, fmt.Errorf("ur: fragment length bounds %d..%d must satisfy 1 <= min <= max <= %d", opts.MinFragmentLen, opts.MaxFragmentLen, MaxFragmentLen)
	}
	if opts.Schedule != ScheduleDense && opts.Schedule != ScheduleReference {
		return nil, fmt.Errorf("ur: unknown schedule %d", opts.Schedule)
	}
	payload := encodeBytesPayload(msg)
	e := &Encoder{
		msg:      append([]byte(nil), msg...),
		payload:  payload,
		fragLen:  nominalFragmentLen(len(payload), opts.MinFragmentLen, opts.MaxFragmentLen),
		checksum: crc32IEEE(payload),
		opts:     opts,
	}
	for off := 0; off < len(payload); off += e.fragLen {
		f := make([]byte, e.fragLen)
		copy(f, payload[off:])
		e.fragments = append(e.fragments, f)
	}
	if len(e.fragments) > DefaultMaxFragments {
		return nil, &LimitError{What: "fragment count", Got: uint64(len(e.fragments)), Max: DefaultMaxFragments}
	}
	k := len(e.fragments)
	e.ch = newChooser(k, e.checksum)
	e.nextMixed = uint32(k) + 1
	e.lo, e.hi = max(2, (k+2)/3), max(2, 2*k/3)
	return e, nil
}

// nominalFragmentLen is the reference's findNominalFragmentLength: the
// length of the fewest equal fragments no longer than maxLen, but no
// more fragments than minLen allows.
func nominalFragmentLen(msgLen, minLen, maxLen int) int {
	maxCount := (msgLen + minLen - 1) / minLen
	fl := 0
	for n := 1; n <= maxCount; n++ {
		fl = (msgLen + n - 1) / n
		if fl <= maxLen {
			break
		}
	}
	return fl
}

// SeqLen returns the number of fragments.
func (e *Encoder) SeqLen() int { return len(e.fragments) }

// FragmentLen returns the length of each fragment.
func (e *Encoder) FragmentLen() int { return e.fragLen }

// SinglePart reports whether the message fits one part; every frame is
// then the same single-part UR.
func (e *Encoder) SinglePart() bool { return len(e.fragments) == 1 }

// Fingerprint returns Fingerprint of the message.
func (e *Encoder) Fingerprint() string { return Fingerprint(e.msg) }

// Checksum returns the CRC-32 that identifies the transfer in every part.
func (e *Encoder) Checksum() uint32 { return e.checksum }

// NextPart returns the next frame's UR string.
func (e *Encoder) NextPart() string {
	seq := e.nextSeqNum()
	e.frame++
	return e.PartString(seq)
}

// PartString returns the UR string of part seqNum (one-based), whatever
// the schedule, or the single-part UR for one-fragment messages.
func (e *Encoder) PartString(seqNum uint32) string {
	var s string
	if e.SinglePart() {
		s = EncodeSingle(e.msg)
	} else {
		s = encodeMultipart(e.Part(seqNum))
	}
	if e.opts.Lowercase {
		return s
	}
	return strings.ToUpper(s)
}

// Part returns part seqNum (one-based; zero is treated as one).
func (e *Encoder) Part(seqNum uint32) Part {
	if seqNum == 0 {
		seqNum = 1
	}
	data := make([]byte, e.fragLen)
	for _, i := range e.ch.fragments(seqNum) {
		subtle.XORBytes(data, data, e.fragments[i])
	}
	return Part{SeqNum: seqNum, SeqLen: uint32(len(e.fragments)), MessageLen: uint32(len(e.payload)), Checksum: e.checksum, Data: data}
}

// nextSeqNum picks the sequence number of the next frame.
func (e *Encoder) nextSeqNum() uint32 {
	k := uint64(len(e.fragments))
	if e.opts.Schedule == ScheduleReference || e.frame < k || k == 1 {
		return uint32(e.frame%(1<<32-1)) + 1
	}
	if (e.frame-k)%densePureEvery == densePureEvery-1 {
		s := e.nextPure + 1
		e.nextPure = (e.nextPure + 1) % uint32(k)
		return s
	}
	// Bounded search: a degree in the window turns up within a few
	// candidates on average; give up after a fixed budget and take the
	// candidate as it is.
	for range 4096 {
		s := e.nextMixed
		e.nextMixed++
		if e.nextMixed == 0 {
			e.nextMixed = uint32(k) + 1
		}
		if d := e.ch.degree(s); d >= e.lo && d <= e.hi {
			return s
		}
	}
	return e.nextMixed
}
