// Package qr carries UR parts across the air gap as QR codes: it renders
// parts as PNG images and terminal half-block cells, decodes QR codes in
// images with libzbar, reads frames from folders of images, zbarcam output
// and V4L2 cameras, and runs the receive loop that feeds a ur.Decoder.
//
// Everything a camera sees is hostile: decoded payloads go to the strict
// ur.Decoder, which enforces its caps; the image paths here cap image
// dimensions (MaxImagePixels) before decoding.
//
// Renderers and Sources are not safe for concurrent use unless stated.
package qr

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"rsc.io/qr"
)

// Level is a QR error correction level.
type Level = qr.Level

// Error correction levels. UR transfers use M.
const (
	L = qr.L
	M = qr.M
	Q = qr.Q
	H = qr.H
)

const (
	// QuietZone is the white border, in modules, the standard asks for.
	QuietZone = 4
	// MaxImagePixels caps the images the decoders accept (16 MP).
	MaxImagePixels = 1 << 24
)

// ErrNoZbar is returned by NewZbar in builds without cgo.
var ErrNoZbar = errors.New("qr: compiled without zbar (cgo disabled); rebuild with CGO_ENABLED=1 and libzbar-dev installed to decode QR images")

// Symbol is one encoded QR code.
type Symbol struct {
	code *qr.Code
}

// Encode encodes a payload at the given level. Text made only of the QR
// alphanumeric characters (such as an upper-case UR part) uses the dense
// alphanumeric mode; anything else is encoded byte for byte.
func Encode(payload []byte, level Level) (*Symbol, error) {
	c, err := qr.Encode(string(payload), level)
	if err != nil {
		return nil, fmt.Errorf("qr: encoding %d bytes: %w", len(payload), err)
	}
	return &Symbol{code: c}, nil
}

// Size returns the symbol's width in modules, without the quiet zone.
func (s *Symbol) Size() int { return s.code.Size }

// Version returns the QR version (1..40).
func (s *Symbol) Version() int { return (s.code.Size - 17) / 4 }

// Dark reports whether module (x, y) is dark; outside the symbol is light.
func (s *Symbol) Dark(x, y int) bool {
	if x < 0 || y < 0 || x >= s.code.Size || y >= s.code.Size {
		return false
	}
	return s.code.Black(x, y)
}

// Image returns the symbol with its quiet zone, scale pixels per module,
// as an 8-bit grey image (black 0, white 255).
func (s *Symbol) Image(scale int) *image.Gray {
	if scale < 1 {
		scale = 1
	}
	n := (s.code.Size + 2*QuietZone) * scale
	img := image.NewGray(image.Rect(0, 0, n, n))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := 0; y < s.code.Size; y++ {
		for x := 0; x < s.code.Size; x++ {
			if !s.code.Black(x, y) {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				row := ((y+QuietZone)*scale + dy) * img.Stride
				for dx := 0; dx < scale; dx++ {
					img.Pix[row+(x+QuietZone)*scale+dx] = 0
				}
			}
		}
	}
	return img
}

// PNG returns the symbol as a PNG image, scale pixels per module, with
// its quiet zone.
func (s *Symbol) PNG(scale int) []byte {
	if scale < 1 {
		scale = 1
	}
	c := *s.code
	c.Scale = scale
	return c.PNG()
}

// RenderPNG encodes a payload (usually an upper-case UR part) at level M
// and returns it as a PNG with scale pixels per module.
func RenderPNG(payload []byte, scale int) ([]byte, error) {
	s, err := Encode(payload, M)
	if err != nil {
		return nil, err
	}
	return s.PNG(scale), nil
}

// encodePNG writes any image as PNG; tests and tools use it for frames.
func encodePNG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// toGray converts any image to 8-bit grey, the format the decoder scans.
func toGray(img image.Image) (*image.Gray, error) {
	b := img.Bounds()
	if w, h := b.Dx(), b.Dy(); w <= 0 || h <= 0 || int64(w)*int64(h) > MaxImagePixels {
		return nil, fmt.Errorf("qr: image of %dx%d pixels is empty or above the cap of %d pixels", w, h, MaxImagePixels)
	}
	if g, ok := img.(*image.Gray); ok && b.Min == (image.Point{}) {
		return g, nil
	}
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g.SetGray(x-b.Min.X, y-b.Min.Y, color.GrayModel.Convert(img.At(x, y)).(color.Gray))
		}
	}
	return g, nil
}
