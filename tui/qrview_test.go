package tui

import (
	"bytes"
	"errors"
	"image"
	"testing"

	"github.com/gdamore/tcell/v2"

	"airlock.dev/airlock/transfer/qr"
	"airlock.dev/airlock/transfer/ur"
)

// screenQR reads the half-block cells of a screen back into a grey image,
// scale pixels per module: what a camera pointed at the console would see.
func screenQR(scr tcell.SimulationScreen, scale int) image.Image {
	cells, w, h := scr.GetContents()
	img := image.NewGray(image.Rect(0, 0, w*scale, 2*h*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := cells[y*w+x]
			fg, bg, _ := c.Style.Decompose()
			top, bottom := false, false
			if len(c.Runes) == 1 && c.Runes[0] == qr.HalfBlock {
				top, bottom = fg == tcell.ColorBlack, bg == tcell.ColorBlack
			} else {
				// Anything else: dark, as a console shows it (black background).
				top, bottom = true, true
			}
			for dy := 0; dy < 2*scale; dy++ {
				dark := top
				if dy >= scale {
					dark = bottom
				}
				if !dark {
					continue
				}
				row := (2*y*scale + dy) * img.Stride
				for dx := 0; dx < scale; dx++ {
					img.Pix[row+x*scale+dx] = 0
				}
			}
		}
	}
	return img
}

func TestQRViewRoundTripsThroughScreen(t *testing.T) {
	z, err := qr.NewZbar()
	if errors.Is(err, qr.ErrNoZbar) {
		t.Skip("built without cgo: no zbar")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	msg := bytes.Repeat([]byte("airlock signature response "), 12)
	anim, err := NewQRAnimation(msg, QRFragmentLen)
	if err != nil {
		t.Fatal(err)
	}
	scr := tcell.NewSimulationScreen("UTF-8")
	if err := scr.Init(); err != nil {
		t.Fatal(err)
	}
	defer scr.Fini()
	scr.SetSize(80, 25)
	v := NewQRView()
	v.SetRect(0, 2, 80, 21) // the space the export screen gives it at 80×25
	dec := ur.NewDecoder(ur.Limits{})
	for i := 0; i < 4*anim.Parts && !dec.Done(); i++ {
		part := anim.Next()
		v.SetPart(part)
		scr.Clear()
		v.Draw(scr)
		scr.Show()
		got, err := z.Decode(screenQR(scr, 3))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(got) != 1 || string(got[0]) != part {
			t.Fatalf("frame %d: decoded %q, want %q", i, got, part)
		}
		if err := dec.Receive(string(got[0])); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	out, err := dec.Message()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, msg) {
		t.Fatal("message read back from the screen differs")
	}
	if dec.Fingerprint() != anim.Fingerprint {
		t.Errorf("fingerprint %s, want %s", dec.Fingerprint(), anim.Fingerprint)
	}
}
