package ur

import (
	"bytes"
	"strings"
	"testing"
)

func fuzzSeedParts(f *testing.F) []string {
	e, err := NewEncoder(makeMessage(256, "Wolf"), EncoderOptions{MaxFragmentLen: 30})
	if err != nil {
		f.Fatal(err)
	}
	var parts []string
	for range 14 {
		parts = append(parts, e.NextPart())
	}
	return parts
}

func FuzzDecodeSingle(f *testing.F) {
	f.Add(EncodeSingle([]byte("hello")))
	f.Add(strings.ToUpper(EncodeSingle(makeMessage(300, "seed"))))
	f.Add("ur:bytes/")
	f.Add("ur:bytes/aeadaolazmjendeoti")
	f.Add("UR:BYTES/1-9/LPADAS")
	f.Fuzz(func(t *testing.T, s string) {
		msg, err := DecodeSingle(s, 4096)
		if err != nil {
			return
		}
		// Strict parsing: re-encoding reproduces the input in its case.
		again := EncodeSingle(msg)
		if again != s && strings.ToUpper(again) != s {
			t.Fatalf("DecodeSingle accepted non-canonical %q (canonical %q)", s, again)
		}
	})
}

func FuzzDecodePart(f *testing.F) {
	for _, p := range fuzzSeedParts(f) {
		f.Add(p)
		f.Add(strings.ToLower(p))
	}
	f.Add("ur:bytes/1-1/lpadadadadadadad")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := DecodePart(s)
		if err != nil {
			return
		}
		again := encodeMultipart(p)
		if again != s && strings.ToUpper(again) != s {
			t.Fatalf("DecodePart accepted non-canonical %q (canonical %q)", s, again)
		}
		q, err := ParsePart(p.MarshalCBOR())
		if err != nil || !bytes.Equal(q.MarshalCBOR(), p.MarshalCBOR()) {
			t.Fatalf("part does not round-trip: %v", err)
		}
	})
}

// FuzzDecoder feeds arbitrary frame sequences (newline-separated) to a
// Decoder with small caps. A complete message must match its checksum.
func FuzzDecoder(f *testing.F) {
	parts := fuzzSeedParts(f)
	f.Add(strings.Join(parts, "\n"))
	f.Add(strings.Join(parts[9:], "\n"))
	f.Add(parts[3] + "\n" + parts[3] + "\n" + EncodeSingle([]byte("x")))
	other, _ := NewEncoder(makeMessage(256, "Fox"), EncoderOptions{MaxFragmentLen: 30})
	f.Add(parts[0] + "\n" + other.PartString(12) + "\n" + parts[1])
	f.Fuzz(func(t *testing.T, in string) {
		d := NewDecoder(Limits{MaxMessageLen: 2048, MaxFragments: 64, MaxPendingMixed: 32})
		for _, s := range strings.Split(in, "\n") {
			_ = d.Receive(s)
			p := d.Progress()
			if p.Fraction < 0 || p.Fraction > 1 || p.Known > p.Fragments || p.Pending > 32 {
				t.Fatalf("bad progress %+v", p)
			}
		}
		if d.Done() {
			msg, err := d.Message()
			if err != nil || len(msg) > 2048 {
				t.Fatalf("done with message of %d bytes, err %v", len(msg), err)
			}
		}
	})
}
