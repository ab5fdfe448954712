package ur

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math/bits"
)

// Limits are the caps a Decoder enforces before allocating. Zero fields
// take the defaults.
type Limits struct {
	MaxMessageLen   int // bytes of the fountain-coded message; default DefaultMaxMessageLen
	MaxFragments    int // fragments (seqLen); default DefaultMaxFragments
	MaxPendingMixed int // unsolved mixed parts kept; default DefaultMaxPendingMixed
}

func (l Limits) withDefaults() Limits {
	if l.MaxMessageLen <= 0 {
		l.MaxMessageLen = DefaultMaxMessageLen
	}
	if l.MaxFragments <= 0 {
		l.MaxFragments = DefaultMaxFragments
	}
	if l.MaxPendingMixed <= 0 {
		l.MaxPendingMixed = DefaultMaxPendingMixed
	}
	return l
}

// Progress describes a transfer in progress.
type Progress struct {
	Fraction  float64 // 0..1: independent information received ÷ fragments
	Frames    int     // frames accepted, duplicates included
	Rejected  int     // frames refused (malformed or of another message)
	Known     int     // fragments solved so far
	Fragments int     // fragments in the message; 0 before the first part
	Pending   int     // mixed parts kept but not solved yet
	Done      bool
}

// Decoder reassembles one message from UR parts in any order, with
// duplicates and losses.
type Decoder struct {
	lim Limits

	started  bool
	seqLen   int
	msgLen   int
	checksum uint32
	fragLen  int
	ch       *chooser

	solved  [][]byte // per fragment, nil while unknown
	nSolved int
	rows    []*row // by pivot (lowest unknown fragment index); nil if none
	pending int
	words   int // uint64 words per row bitset

	frames, rejected int
	result           []byte
	err              error // sticky failure of the whole transfer
}

type row struct {
	bits  []uint64
	data  []byte
	pivot int
}

// NewDecoder returns a Decoder enforcing lim (zero fields: defaults).
func NewDecoder(lim Limits) *Decoder {
	return &Decoder{lim: lim.withDefaults()}
}

// Receive feeds one scanned UR string, single-part or multipart. A nil
// error means the frame was accepted (maybe as a duplicate). Errors name
// what was wrong with the frame; they wrap ErrDifferentMessage,
// ErrLimit or ErrChecksum where callers may want to branch. After the
// message is complete further frames are ignored.
func (d *Decoder) Receive(s string) error {
	if d.result != nil {
		return nil
	}
	if d.err != nil {
		return d.err
	}
	err := d.receive(s)
	if err != nil && d.err == nil {
		d.rejected++
	}
	return err
}

func (d *Decoder) receive(s string) error {
	if max := 2*(d.lim.MaxMessageLen+13) + len("ur:bytes/"); len(s) > max {
		return &LimitError{What: "ur length", Got: uint64(len(s)), Max: uint64(max)}
	}
	u, err := parseUR(s)
	if err != nil {
		return err
	}
	if u.seq == "" {
		msg, err := DecodeSingle(s, d.lim.MaxMessageLen)
		if err != nil {
			return err
		}
		if d.started {
			return fmt.Errorf("%w: a single-part ur arrived during a multipart transfer; show only one sender's code", ErrDifferentMessage)
		}
		d.frames++
		d.result = msg
		return nil
	}
	p, err := DecodePart(s)
	if err != nil {
		return err
	}
	return d.receivePart(p)
}

// ReceivePart feeds one already parsed part.
func (d *Decoder) ReceivePart(p Part) error {
	if d.result != nil {
		return nil
	}
	if d.err != nil {
		return d.err
	}
	err := d.receivePart(p)
	if err != nil && d.err == nil {
		d.rejected++
	}
	return err
}

func (d *Decoder) receivePart(p Part) error {
	if p.SeqNum == 0 || p.SeqLen == 0 || p.MessageLen == 0 || len(p.Data) == 0 {
		return fmt.Errorf("ur: part: seqNum, seqLen, messageLen and data must all be non-zero (got %d, %d, %d, %d bytes)", p.SeqNum, p.SeqLen, p.MessageLen, len(p.Data))
	}
	if len(p.Data) > MaxFragmentLen {
		return &LimitError{What: "fragment length", Got: uint64(len(p.Data)), Max: MaxFragmentLen}
	}
	if !d.started {
		if err := d.start(p); err != nil {
			return err
		}
	} else if int(p.SeqLen) != d.seqLen || int(p.MessageLen) != d.msgLen || p.Checksum != d.checksum || len(p.Data) != d.fragLen {
		return fmt.Errorf("%w: part %d is of a %d-byte message in %d fragments with checksum %08x, but this transfer is a %d-byte message in %d fragments with checksum %08x; show only one sender's code or restart",
			ErrDifferentMessage, p.SeqNum, p.MessageLen, p.SeqLen, p.Checksum, d.msgLen, d.seqLen, d.checksum)
	}
	d.frames++
	if err := d.add(d.ch.fragments(p.SeqNum), p.Data); err != nil {
		return err
	}
	if d.nSolved == d.seqLen {
		return d.finish()
	}
	return nil
}

func (d *Decoder) start(p Part) error {
	if int64(p.MessageLen) > int64(d.lim.MaxMessageLen) {
		return &LimitError{What: "message length", Got: uint64(p.MessageLen), Max: uint64(d.lim.MaxMessageLen)}
	}
	if int64(p.SeqLen) > int64(d.lim.MaxFragments) {
		return &LimitError{What: "fragment count", Got: uint64(p.SeqLen), Max: uint64(d.lim.MaxFragments)}
	}
	fl := len(p.Data)
	if (int(p.MessageLen)+fl-1)/fl != int(p.SeqLen) {
		return fmt.Errorf("ur: part: %d fragments of %d bytes cannot hold a %d-byte message exactly", p.SeqLen, fl, p.MessageLen)
	}
	d.started = true
	d.seqLen, d.msgLen, d.checksum, d.fragLen = int(p.SeqLen), int(p.MessageLen), p.Checksum, fl
	d.ch = newChooser(d.seqLen, d.checksum)
	d.solved = make([][]byte, d.seqLen)
	d.rows = make([]*row, d.seqLen)
	d.words = (d.seqLen + 63) / 64
	return nil
}

// add folds one equation "XOR of fragments idx = data" into the system.
func (d *Decoder) add(idx []int, data []byte) error {
	r := &row{bits: make([]uint64, d.words), data: append([]byte(nil), data...)}
	for _, i := range idx {
		if s := d.solved[i]; s != nil {
			subtle.XORBytes(r.data, r.data, s)
		} else {
			r.bits[i/64] ^= 1 << (i % 64)
		}
	}
	// Reduce by the kept rows: each row's pivot is its lowest bit, so
	// XORing it clears that bit and only touches higher ones.
	for {
		p := lowestBit(r.bits)
		if p < 0 {
			return nil // nothing new
		}
		o := d.rows[p]
		if o == nil {
			r.pivot = p
			break
		}
		for w := range r.bits {
			r.bits[w] ^= o.bits[w]
		}
		subtle.XORBytes(r.data, r.data, o.data)
	}
	if onesCount(r.bits) == 1 {
		d.solve(r.pivot, r.data)
		return nil
	}
	if d.pending >= d.lim.MaxPendingMixed {
		return &LimitError{What: "pending mixed parts", Got: uint64(d.pending + 1), Max: uint64(d.lim.MaxPendingMixed)}
	}
	d.rows[r.pivot] = r
	d.pending++
	return nil
}

// solve records fragment i and substitutes it into every kept row,
// cascading to rows that become single fragments.
func (d *Decoder) solve(i int, data []byte) {
	type item struct {
		i    int
		data []byte
	}
	queue := []item{{i, data}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if d.solved[it.i] != nil {
			continue
		}
		d.solved[it.i] = it.data
		d.nSolved++
		w, m := it.i/64, uint64(1)<<(it.i%64)
		// Only rows with a lower pivot can contain fragment it.i.
		for p := 0; p < it.i && d.pending > 0; p++ {
			r := d.rows[p]
			if r == nil || r.bits[w]&m == 0 {
				continue
			}
			r.bits[w] &^= m
			subtle.XORBytes(r.data, r.data, it.data)
			if onesCount(r.bits) == 1 {
				d.rows[p] = nil
				d.pending--
				queue = append(queue, item{p, r.data})
			}
		}
	}
}

func (d *Decoder) finish() error {
	payload := make([]byte, 0, d.seqLen*d.fragLen)
	for _, f := range d.solved {
		payload = append(payload, f...)
	}
	for _, b := range payload[d.msgLen:] {
		if b != 0 {
			d.err = errors.New("ur: the last fragment's padding is not zero; the sender is faulty or forged, restart the transfer")
			return d.err
		}
	}
	payload = payload[:d.msgLen]
	if got := crc32IEEE(payload); got != d.checksum {
		d.err = fmt.Errorf("ur: reassembled message has crc32 %08x, parts promised %08x: %w; restart the transfer", got, d.checksum, ErrChecksum)
		return d.err
	}
	msg, err := decodeBytesPayload(payload, d.lim.MaxMessageLen)
	if err != nil {
		d.err = fmt.Errorf("ur: %w", err)
		return d.err
	}
	d.result = msg
	d.solved, d.rows = nil, nil
	return nil
}

// Done reports whether the message is complete.
func (d *Decoder) Done() bool { return d.result != nil }

// Err returns the error that ended the transfer, if any: a message that
// failed its checksum cannot be repaired by more frames.
func (d *Decoder) Err() error { return d.err }

// Message returns the complete message.
func (d *Decoder) Message() ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	if d.result == nil {
		return nil, errors.New("ur: message not complete yet; keep scanning")
	}
	return d.result, nil
}

// Progress returns the transfer's state.
func (d *Decoder) Progress() Progress {
	p := Progress{Frames: d.frames, Rejected: d.rejected, Known: d.nSolved, Fragments: d.seqLen, Pending: d.pending, Done: d.result != nil}
	switch {
	case p.Done:
		p.Fraction, p.Known, p.Pending = 1, d.seqLen, 0
	case d.seqLen > 0:
		p.Fraction = float64(d.nSolved+d.pending) / float64(d.seqLen)
	}
	return p
}

func lowestBit(b []uint64) int {
	for w, v := range b {
		if v != 0 {
			return w*64 + bits.TrailingZeros64(v)
		}
	}
	return -1
}

func onesCount(b []uint64) int {
	n := 0
	for _, v := range b {
		n += bits.OnesCount64(v)
	}
	return n
}

// Fingerprint returns Fingerprint of the complete message, or "" before.
func (d *Decoder) Fingerprint() string {
	if d.result == nil {
		return ""
	}
	return Fingerprint(d.result)
}
