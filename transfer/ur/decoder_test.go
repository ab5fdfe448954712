package ur

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func newTestEncoder(t testing.TB, msg []byte, maxFrag int) *Encoder {
	t.Helper()
	e, err := NewEncoder(msg, EncoderOptions{MaxFragmentLen: maxFrag})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// forge returns the UR string of an arbitrary part, as a hostile sender
// could produce it.
func forge(p Part) string { return strings.ToUpper(encodeMultipart(p)) }

// TestDecoderThreats covers THREATS.md "QR frames": each case feeds frames
// to one Decoder and checks which frame is refused and why.
func TestDecoderThreats(t *testing.T) {
	msgA := makeMessage(900, "A")
	msgB := makeMessage(900, "B")
	a := newTestEncoder(t, msgA, 100)
	b := newTestEncoder(t, msgB, 100)
	a1 := a.PartString(1)
	k := a.SeqLen()
	type frame struct {
		s       string
		wantErr string // substring; empty means accepted
		is      error
	}
	cases := []struct {
		name   string
		frames []frame
		done   bool // whether the message must be complete at the end
	}{
		{"malformed scheme", []frame{{"HTTP://EXAMPLE.COM", "does not start with", nil}}, false},
		{"malformed path", []frame{{"UR:BYTES/1-9/AE/AE", "must have the form", nil}}, false},
		{"wrong type", []frame{{"UR:CRYPTO-PSBT/1-9/LPADAS", "not supported", nil}}, false},
		{"mixed case", []frame{{"ur:BYTES/1-9/lpadas", "mixes upper and lower", nil}}, false},
		{"bad sequence", []frame{{"UR:BYTES/0-9/LPADAS", "positive decimal", nil}, {"UR:BYTES/01-9/LPADAS", "leading zeros", nil}, {"UR:BYTES/1-99999999999/LPADAS", "leading zeros", nil}}, false},
		{"truncated", []frame{{a1[:len(a1)-10], "checksum mismatch", ErrChecksum}, {a1[:len(a1)-1], "odd length", nil}}, false},
		{"corrupted byteword checksum", []frame{{a1[:len(a1)-2] + "AE", "checksum mismatch", ErrChecksum}}, false},
		{"sequence path disagrees with cbor", []frame{{strings.Replace(a1, "/1-", "/2-", 1), "path says part 2", nil}}, false},
		{"duplicated and out of order", func() []frame {
			var fs []frame
			for i := k; i >= 1; i-- {
				fs = append(fs, frame{s: a.PartString(uint32(i))}, frame{s: a.PartString(uint32(i))})
			}
			return fs
		}(), true},
		{"two payloads mixed", []frame{{s: a1}, {b.PartString(2), "different message", ErrDifferentMessage}, {s: a.PartString(2)}}, false},
		{"single-part ur during multipart", []frame{{s: a1}, {EncodeSingle([]byte("x")), "single-part ur arrived", ErrDifferentMessage}}, false},
		{"same length different checksum", []frame{{s: a1}, {forge(Part{SeqNum: 2, SeqLen: uint32(k), MessageLen: uint32(len(msgA) + 3), Checksum: a.Checksum() ^ 1, Data: make([]byte, a.FragmentLen())}), "checksum", ErrDifferentMessage}}, false},
		{"claims a huge message", []frame{{forge(Part{SeqNum: 1, SeqLen: 1 << 20, MessageLen: 1<<20*4 - 3, Checksum: 1, Data: make([]byte, 4)}), "message length 4194301 exceeds the cap of 1048576", ErrLimit}}, false},
		{"claims too many fragments", []frame{{forge(Part{SeqNum: 1, SeqLen: 100000, MessageLen: 1000000, Checksum: 1, Data: make([]byte, 10)}), "fragment count 100000 exceeds the cap of 4096", ErrLimit}}, false},
		{"inconsistent lengths", []frame{{forge(Part{SeqNum: 1, SeqLen: 3, MessageLen: 100, Checksum: 1, Data: make([]byte, 10)}), "cannot hold", nil}}, false},
		{"oversized frame", []frame{{"UR:BYTES/1-2/" + strings.Repeat("AE", 1<<21), "exceeds the cap", ErrLimit}}, false},
		{"forged parts fail the message checksum", func() []frame {
			var fs []frame
			for i := 1; i <= k; i++ {
				p := a.Part(uint32(i))
				if i == 3 {
					p.Data[5] ^= 0x40 // re-encoded with a valid bytewords checksum
				}
				want := ""
				if i == k {
					want = "reassembled message has crc32"
				}
				fs = append(fs, frame{forge(p), want, nil})
			}
			return fs
		}(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(Limits{})
			for i, f := range tc.frames {
				err := d.Receive(f.s)
				switch {
				case f.wantErr == "" && err != nil:
					t.Fatalf("frame %d refused: %v", i, err)
				case f.wantErr != "" && (err == nil || !strings.Contains(err.Error(), f.wantErr)):
					t.Fatalf("frame %d: error %v, want one containing %q", i, err, f.wantErr)
				case f.is != nil && !errors.Is(err, f.is):
					t.Fatalf("frame %d: error %v does not match %v", i, err, f.is)
				}
			}
			if d.Done() != tc.done {
				t.Fatalf("done = %v, want %v", d.Done(), tc.done)
			}
			if tc.done {
				got, err := d.Message()
				if err != nil || !bytes.Equal(got, msgA) {
					t.Fatalf("message differs (err %v)", err)
				}
			}
		})
	}
}

func TestPendingMixedCap(t *testing.T) {
	e := newTestEncoder(t, makeMessage(3000, "cap"), 30)
	d := NewDecoder(Limits{MaxPendingMixed: 5})
	var err error
	for seq := uint32(e.SeqLen() + 1); err == nil && seq < 10000; seq++ {
		if e.ch.degree(seq) < 4 {
			continue
		}
		err = d.Receive(e.PartString(seq))
	}
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "pending mixed parts 6 exceeds the cap of 5") {
		t.Fatalf("error = %v, want the pending mixed part cap", err)
	}
}

func TestDecoderLossyOrders(t *testing.T) {
	msg := makeMessage(5000, "lossy")
	for _, sched := range []Schedule{ScheduleDense, ScheduleReference} {
		e, err := NewEncoder(msg, EncoderOptions{MaxFragmentLen: 120, Schedule: sched})
		if err != nil {
			t.Fatal(err)
		}
		var frames []string
		for range 6 * e.SeqLen() {
			frames = append(frames, e.NextPart())
		}
		rng := rand.New(rand.NewPCG(1, uint64(sched)))
		rng.Shuffle(len(frames), func(i, j int) { frames[i], frames[j] = frames[j], frames[i] })
		d := NewDecoder(Limits{})
		var last Progress
		for i, f := range frames {
			if rng.Float64() < 0.3 {
				continue
			}
			if err := d.Receive(f); err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			p := d.Progress()
			if p.Fraction < last.Fraction || p.Known < last.Known || p.Frames != last.Frames+1 {
				t.Fatalf("progress went from %+v to %+v", last, p)
			}
			last = p
			if d.Done() {
				break
			}
		}
		got, err := d.Message()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("schedule %d: message not recovered: %v", sched, err)
		}
		if d.Fingerprint() != Fingerprint(msg) || e.Fingerprint() != Fingerprint(msg) {
			t.Errorf("fingerprints differ")
		}
	}
}

func TestReceivePartRejectsZeroes(t *testing.T) {
	for _, p := range []Part{
		{SeqNum: 0, SeqLen: 1, MessageLen: 5, Data: make([]byte, 5)},
		{SeqNum: 1, SeqLen: 1, MessageLen: 5},
		{SeqNum: 1, SeqLen: 0, MessageLen: 5, Data: make([]byte, 5)},
	} {
		if err := NewDecoder(Limits{}).ReceivePart(p); err == nil || !strings.Contains(err.Error(), "must all be non-zero") {
			t.Errorf("ReceivePart(%+v) = %v", p, err)
		}
	}
}
