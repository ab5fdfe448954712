package ur

import "testing"

// BenchmarkEncoderNextPart: one default-size (200-byte) part of a 20 KB
// message, as an upper-case UR string.
func BenchmarkEncoderNextPart(b *testing.B) {
	e, err := NewEncoder(makeMessage(20000, "bench"), EncoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = e.NextPart()
	}
}

// BenchmarkDecoderReceive: parsing and solving one part of that message,
// with 30 % of frames lost, restarting when complete.
func BenchmarkDecoderReceive(b *testing.B) {
	e, err := NewEncoder(makeMessage(20000, "bench"), EncoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var parts []string
	for i := 0; len(parts) < 4*e.SeqLen(); i++ {
		p := e.NextPart()
		if i%10 < 3 {
			continue
		}
		parts = append(parts, p)
	}
	d := NewDecoder(Limits{})
	i := 0
	for b.Loop() {
		if d.Done() {
			d = NewDecoder(Limits{})
			i = 0
		}
		if err := d.Receive(parts[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
