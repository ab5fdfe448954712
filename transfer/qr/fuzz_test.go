package qr

import (
	"bytes"
	"image/jpeg"
	"testing"
)

// FuzzFrameImage feeds hostile camera frames and image files to the
// conversions in front of the QR decoder.
func FuzzFrameImage(f *testing.F) {
	s, err := Encode([]byte("UR:BYTES/TEST"), M)
	if err != nil {
		f.Fatal(err)
	}
	g := s.Image(1)
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, g, nil); err != nil {
		f.Fatal(err)
	}
	pngb, err := encodePNG(g)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(FormatMJPEG, jb.Bytes(), uint16(g.Rect.Dx()), uint16(g.Rect.Dy()))
	f.Add(FormatMJPEG, pngb, uint16(g.Rect.Dx()), uint16(g.Rect.Dy()))
	f.Add(FormatGrey, g.Pix, uint16(g.Rect.Dx()), uint16(g.Rect.Dy()))
	f.Add(FormatYUYV, append(g.Pix, g.Pix...), uint16(g.Rect.Dx()-1), uint16(g.Rect.Dy()))
	f.Fuzz(func(t *testing.T, format uint32, data []byte, w, h uint16) {
		img, err := FrameImage(format, data, int(w), int(h))
		if err != nil {
			return
		}
		b := img.Bounds()
		if int64(b.Dx())*int64(b.Dy()) > MaxImagePixels {
			t.Fatalf("accepted a %dx%d image", b.Dx(), b.Dy())
		}
		if _, err := toGray(img); err != nil {
			t.Fatal(err)
		}
	})
}
