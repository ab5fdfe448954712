//go:build cgo

package qr

import (
	"image"
	"testing"

	"airlock.dev/airlock/transfer/ur"
)

// BenchmarkEncodeFramePNG: next UR part of a 20 KB message (default
// 200-byte fragments), QR encode at level M, PNG at 3 px/module.
func BenchmarkEncodeFramePNG(b *testing.B) {
	e, err := ur.NewEncoder(testMessage(20000, 9), ur.EncoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Encode([]byte(e.NextPart()), M)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.PNG(3)
	}
}

// BenchmarkEncodeFrameCells: the same, to terminal cells.
func BenchmarkEncodeFrameCells(b *testing.B) {
	e, err := ur.NewEncoder(testMessage(20000, 9), ur.EncoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Encode([]byte(e.NextPart()), M)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Cells(QuietZone)
	}
}

// BenchmarkDecodeFrame: zbar scan of a 3 px/module frame plus the UR
// decoder's work on the part.
func BenchmarkDecodeFrame(b *testing.B) {
	e, err := ur.NewEncoder(testMessage(20000, 9), ur.EncoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	z := newZbar(b)
	var imgs []*Symbol // rendered outside the timed loop
	for range 64 {
		s, err := Encode([]byte(e.NextPart()), M)
		if err != nil {
			b.Fatal(err)
		}
		imgs = append(imgs, s)
	}
	frames := make([]*image.Gray, len(imgs))
	for i, s := range imgs {
		frames[i] = s.Image(3)
	}
	d := ur.NewDecoder(ur.Limits{})
	i := 0
	for b.Loop() {
		got := decodeOne(b, z, frames[i%len(frames)])
		if d.Done() {
			d = ur.NewDecoder(ur.Limits{})
		}
		if err := d.Receive(string(got)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
