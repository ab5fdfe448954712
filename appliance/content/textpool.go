package content

import (
	"math/bits"
	"unsafe"
)

// A streamed comparison reads a text into a buffer, holds it as a string
// while it is needed and then drops it. Left to the garbage collector, the
// dropped texts of a large release would let the heap grow to twice what
// is live; instead the comparison gives the buffers of large texts back to
// a textPool, and the next large texts are read into them.
//
// A pooled buffer is overwritten by a later text: a string of a dropped
// text must not be kept. What a streamed comparison keeps of a text is
// copied out of it first (compactHunks); package.json texts, which the
// tree keeps, are not pooled. The package's tests fill a buffer given back
// with junk (poisonDroppedText), so that a string kept by mistake shows as
// a difference from the in-memory comparison.

// textPoolMinBytes is the size from which a text's buffer is pooled; a
// variable so that the tests can pool every text.
var textPoolMinBytes = 256 << 10

// poisonDroppedText makes textPool.put overwrite the buffers it is given
// (tests).
var poisonDroppedText = false

// textPool holds buffers of dropped texts, up to max bytes of them. It is
// not safe for concurrent use: streamCompare.mu guards it.
type textPool struct {
	free [][]byte
	idle int64
	max  int64
}

// get returns a buffer of n bytes, reused when a free buffer is large
// enough. A new buffer's capacity is n rounded up to an eighth of a power
// of two, so that it can serve a slightly larger file next.
func (p *textPool) get(n int) []byte {
	if n < textPoolMinBytes {
		return make([]byte, n)
	}
	best := -1
	for i, b := range p.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := p.free[best]
		p.free = append(p.free[:best], p.free[best+1:]...)
		p.idle -= int64(cap(b))
		return b[:n]
	}
	// No free buffer fits: the smaller ones would only stay idle.
	clear(p.free)
	p.free, p.idle = p.free[:0], 0
	return make([]byte, n, roundSize(n))
}

// roundSize rounds n up to a multiple of an eighth of the power of two
// below it.
func roundSize(n int) int {
	if n < 16 {
		return n
	}
	step := 1 << (bits.Len(uint(n)) - 4)
	return (n + step - 1) &^ (step - 1)
}

// put takes back a buffer whose text is dropped. b may be nil.
func (p *textPool) put(b []byte) {
	if cap(b) < textPoolMinBytes {
		return
	}
	if poisonDroppedText {
		b = b[:cap(b)]
		for i := range b {
			b[i] = 0xa5
		}
	}
	if p.idle+int64(cap(b)) > p.max {
		return
	}
	p.free = append(p.free, b[:0])
	p.idle += int64(cap(b))
}

// bytesText is b as a string without a copy: b must not change while the
// string is in use.
func bytesText(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
