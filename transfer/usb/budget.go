package usb

import (
	"fmt"
	"sync/atomic"

	"github.com/diskfs/go-diskfs/backend"
)

// Caps on the medium reads one call into the filesystem code may make.
// go-diskfs follows structures from the medium without bounding the work: an
// ext4 extent tree node that points at itself, or at one child many times,
// makes it recurse without end or re-read the same blocks exponentially
// often. Every call is given a budget of reads, and a call that spends it
// fails instead of stalling the appliance.
const (
	// MaxOpReads caps the reads of one metadata call (open, list, stat),
	// and, with one more per 512 bytes asked for, of one file read.
	MaxOpReads = 1 << 16
	// MaxOpReadBytes caps the bytes one call reads, beyond 4 times what a
	// file read asks for. Opening a volume reads both copies of a FAT of
	// up to MaxFATBytes.
	MaxOpReadBytes = 4*MaxFATBytes + 64<<20
)

// errBudget is the panic value of a call that spent its budget; recoverTo
// turns it into an error.
type errBudget struct{ reads, bytes int64 }

func (e errBudget) String() string {
	return fmt.Sprintf("reading it took more than %d reads or %s: the structures on the medium loop or are hostile", e.reads, formatSize(e.bytes))
}

// budgetStorage is a backend.Storage whose reads draw on a budget that
// each guarded call resets.
type budgetStorage struct {
	backend.Storage
	reads, bytes       atomic.Int64 // left
	maxReads, maxBytes int64        // of the current call, for the message
}

func newBudgetStorage(s backend.Storage) *budgetStorage {
	b := &budgetStorage{Storage: s}
	b.reset(0)
	return b
}

// reset gives the next call its budget: MaxOpReads reads and
// MaxOpReadBytes bytes, plus what a read of want bytes needs.
func (b *budgetStorage) reset(want int) {
	b.maxReads = MaxOpReads + int64(want)/512
	b.maxBytes = MaxOpReadBytes + 4*int64(want)
	b.reads.Store(b.maxReads)
	b.bytes.Store(b.maxBytes)
}

func (b *budgetStorage) spend(n int) {
	if b.reads.Add(-1) < 0 || b.bytes.Add(-int64(n)) < 0 {
		panic(errBudget{b.maxReads, b.maxBytes})
	}
}

func (b *budgetStorage) ReadAt(p []byte, off int64) (int, error) {
	b.spend(len(p))
	return b.Storage.ReadAt(p, off)
}

func (b *budgetStorage) Read(p []byte) (int, error) {
	b.spend(len(p))
	return b.Storage.Read(p)
}
