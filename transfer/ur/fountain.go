package ur

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// xoshiro is Xoshiro256** seeded, as BCR-2024-001 specifies, from the
// SHA-256 of a seed: the four state words are the digest's four big-endian
// 64-bit words.
type xoshiro struct{ s [4]uint64 }

func newXoshiro(seed []byte) *xoshiro {
	d := sha256.Sum256(seed)
	var x xoshiro
	for i := range x.s {
		x.s[i] = binary.BigEndian.Uint64(d[8*i:])
	}
	return &x
}

func (x *xoshiro) next() uint64 {
	s := &x.s
	result := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return result
}

// nextDouble returns a value in [0, 1): next() / 2^64.
func (x *xoshiro) nextDouble() float64 {
	return float64(x.next()) / (math.MaxUint64 + 1.0)
}

// nextInt returns an integer in [low, high].
func (x *xoshiro) nextInt(low, high int) int {
	return int(math.Floor(x.nextDouble()*float64(high-low+1) + float64(low)))
}

func (x *xoshiro) nextByte() byte { return byte(x.nextInt(0, 255)) }

// aliasTable is Vose's alias method, built exactly as the reference
// implementations build it so that both sides draw the same degrees.
type aliasTable struct {
	prob  []float64
	alias []int
}

func newAliasTable(p []float64) *aliasTable {
	n := len(p)
	sum := 0.0
	for _, v := range p {
		sum += v
	}
	scaled := make([]float64, n)
	for i, v := range p {
		scaled[i] = (v * float64(n)) / sum
	}
	t := &aliasTable{prob: make([]float64, n), alias: make([]int, n)}
	var small, large []int
	for i := n - 1; i >= 0; i-- {
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		less := small[len(small)-1]
		small = small[:len(small)-1]
		more := large[len(large)-1]
		large = large[:len(large)-1]
		t.prob[less] = scaled[less]
		t.alias[less] = more
		scaled[more] = (scaled[more] + scaled[less]) - 1
		if scaled[more] < 1 {
			small = append(small, more)
		} else {
			large = append(large, more)
		}
	}
	for _, i := range large {
		t.prob[i] = 1
	}
	for _, i := range small {
		t.prob[i] = 1
	}
	return t
}

func (t *aliasTable) draw(x *xoshiro) int {
	c := int(math.Floor(x.nextDouble() * float64(len(t.prob))))
	if x.nextDouble() < t.prob[c] {
		return c
	}
	return t.alias[c]
}

// chooser computes which fragments a part of one message mixes. It caches
// the degree table, which depends only on the fragment count.
type chooser struct {
	seqLen   int
	checksum uint32
	degrees  *aliasTable
}

func newChooser(seqLen int, checksum uint32) *chooser {
	return &chooser{seqLen: seqLen, checksum: checksum}
}

func (c *chooser) table() *aliasTable {
	if c.degrees == nil {
		p := make([]float64, c.seqLen)
		for i := range p {
			p[i] = 1 / float64(i+1)
		}
		c.degrees = newAliasTable(p)
	}
	return c.degrees
}

// rng returns the generator for a mixed part and draws its degree.
func (c *chooser) rngDegree(seqNum uint32) (*xoshiro, int) {
	var seed [8]byte
	binary.BigEndian.PutUint32(seed[:4], seqNum)
	binary.BigEndian.PutUint32(seed[4:], c.checksum)
	x := newXoshiro(seed[:])
	return x, c.table().draw(x) + 1
}

// degree returns how many fragments part seqNum mixes without computing
// which ones.
func (c *chooser) degree(seqNum uint32) int {
	if seqNum <= uint32(c.seqLen) {
		return 1
	}
	_, d := c.rngDegree(seqNum)
	return d
}

// fragments returns the zero-based fragment indexes mixed into part seqNum
// (one-based). Parts 1..seqLen are the pure fragments in order; later parts
// draw a degree and take that many items of a seeded shuffle.
func (c *chooser) fragments(seqNum uint32) []int {
	if seqNum <= uint32(c.seqLen) {
		return []int{int(seqNum) - 1}
	}
	x, d := c.rngDegree(seqNum)
	remaining := make([]int, c.seqLen)
	for i := range remaining {
		remaining[i] = i
	}
	out := make([]int, 0, d)
	for len(out) < d {
		i := x.nextInt(0, len(remaining)-1)
		out = append(out, remaining[i])
		remaining = append(remaining[:i], remaining[i+1:]...)
	}
	return out
}

// Part is one fountain-coded part of a multipart UR (BCR-2024-001). Its
// CBOR form is the array [seqNum, seqLen, messageLen, checksum, data].
type Part struct {
	SeqNum     uint32 // one-based sequence number
	SeqLen     uint32 // number of fragments the message was cut into
	MessageLen uint32 // length of the message (the UR's CBOR payload)
	Checksum   uint32 // CRC-32 of the whole message
	Data       []byte // the fragment or XOR of fragments
}

// MarshalCBOR returns the part's canonical CBOR encoding.
func (p Part) MarshalCBOR() []byte {
	b := make([]byte, 0, len(p.Data)+24)
	b = appendHead(b, cborArray, 5)
	b = appendHead(b, cborUint, uint64(p.SeqNum))
	b = appendHead(b, cborUint, uint64(p.SeqLen))
	b = appendHead(b, cborUint, uint64(p.MessageLen))
	b = appendHead(b, cborUint, uint64(p.Checksum))
	b = appendHead(b, cborBytes, uint64(len(p.Data)))
	return append(b, p.Data...)
}

// ParsePart decodes and checks the CBOR of one part: canonical encoding,
// no trailing bytes, non-zero fields, and a fragment length consistent
// with the message length and fragment count. Size caps are the decoder's
// business; ParsePart refuses only fragments above MaxPartChars.
func ParsePart(b []byte) (Part, error) {
	major, n, rest, err := readHead(b)
	if err != nil {
		return Part{}, fmt.Errorf("part: %w", err)
	}
	if major != cborArray || n != 5 {
		return Part{}, fmt.Errorf("part: not a five-element cbor array")
	}
	var p Part
	if p.SeqNum, rest, err = readUint32(rest, "part seqNum"); err != nil {
		return Part{}, err
	}
	if p.SeqLen, rest, err = readUint32(rest, "part seqLen"); err != nil {
		return Part{}, err
	}
	if p.MessageLen, rest, err = readUint32(rest, "part messageLen"); err != nil {
		return Part{}, err
	}
	if p.Checksum, rest, err = readUint32(rest, "part checksum"); err != nil {
		return Part{}, err
	}
	if p.Data, rest, err = readBytes(rest, MaxPartChars, "part data"); err != nil {
		return Part{}, err
	}
	if len(rest) != 0 {
		return Part{}, fmt.Errorf("part: %d bytes of trailing data", len(rest))
	}
	if p.SeqNum == 0 || p.SeqLen == 0 || p.MessageLen == 0 || len(p.Data) == 0 {
		return Part{}, fmt.Errorf("part: seqNum, seqLen, messageLen and data must all be non-zero (got %d, %d, %d, %d bytes)", p.SeqNum, p.SeqLen, p.MessageLen, len(p.Data))
	}
	fl := uint64(len(p.Data))
	if (uint64(p.MessageLen)+fl-1)/fl != uint64(p.SeqLen) {
		return Part{}, fmt.Errorf("part: %d fragments of %d bytes cannot hold a %d-byte message exactly", p.SeqLen, fl, p.MessageLen)
	}
	return p, nil
}
