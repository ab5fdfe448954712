//go:build cgo

package qr

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"airlock.dev/airlock/transfer/ur"
)

func newZbar(t testing.TB) *Zbar {
	t.Helper()
	z, err := NewZbar()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Close() })
	return z
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed; scripts/install-test-deps.sh installs it", name)
	}
}

func decodeOne(t testing.TB, z *Zbar, img image.Image) []byte {
	t.Helper()
	got, err := z.Decode(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("found %d codes, want 1", len(got))
	}
	return got[0]
}

func TestZbarDecodesOurSymbols(t *testing.T) {
	z := newZbar(t)
	e, err := ur.NewEncoder(testMessage(4000, 5), ur.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		part := e.NextPart()
		s, err := Encode([]byte(part), M)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeOne(t, z, s.Image(3)); string(got) != part {
			t.Fatalf("decoded %q, want %q", got, part)
		}
	}
	if got, err := z.Decode(image.NewGray(image.Rect(0, 0, 50, 50))); err != nil || len(got) != 0 {
		t.Fatalf("blank image: %q, %v", got, err)
	}
}

// TestZbarimgBinary: the zbarimg tool reads our PNGs of binary payloads
// byte for byte, and our decoder agrees.
func TestZbarimgBinary(t *testing.T) {
	needTool(t, "zbarimg")
	z := newZbar(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for i, n := range []int{1, 17, 300, 1200} {
		payload := make([]byte, n)
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		png, err := RenderPNG(payload, 4)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("%d.png", i))
		if err := os.WriteFile(f, png, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("zbarimg", "-q", "--raw", "-Sbinary", f).Output()
		if err != nil {
			t.Fatalf("zbarimg %d bytes: %v", n, err)
		}
		// --raw ends the symbol with a newline.
		if got := bytes.TrimSuffix(out, []byte("\n")); !bytes.Equal(got, payload) {
			t.Fatalf("zbarimg read %d bytes, want the %d written", len(got), n)
		}
		img, err := readImage(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeOne(t, z, img); !bytes.Equal(got, payload) {
			t.Fatalf("our decoder read %d bytes, want the %d written", len(got), n)
		}
	}
}

// TestReadsQrencode: our decoder reads PNGs made by the independent
// qrencode tool.
func TestReadsQrencode(t *testing.T) {
	needTool(t, "qrencode")
	dir := t.TempDir()
	payload := testMessage(700, 6)
	in := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(in, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qrencode", "-8", "-l", "M", "-r", in, "-o", filepath.Join(dir, "out.png")).CombinedOutput(); err != nil {
		t.Fatalf("qrencode: %v: %s", err, out)
	}
	src, err := NewDirSource(dir, newZbar(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("read %d bytes, want the %d qrencode wrote", len(got), len(payload))
	}
}

// TestPNGTransferWithLoss renders a message as PNG frames, drops 30 % of
// them, and receives the rest from the folder byte for byte.
func TestPNGTransferWithLoss(t *testing.T) {
	msg := testMessage(6000, 7)
	e, err := ur.NewEncoder(msg, ur.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3*e.SeqLen(); i++ {
		part := e.NextPart()
		if rng.Float64() < 0.3 {
			continue
		}
		png, err := RenderPNG([]byte(part), 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("frame-%04d.png", i)), png, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src, err := NewDirSource(dir, newZbar(t))
	if err != nil {
		t.Fatal(err)
	}
	dec := ur.NewDecoder(ur.Limits{})
	got, err := Receive(context.Background(), src, dec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("message differs")
	}
	if dec.Fingerprint() != e.Fingerprint() {
		t.Errorf("fingerprints differ: %q vs %q", dec.Fingerprint(), e.Fingerprint())
	}
	if src.Skipped != 0 {
		t.Errorf("%d clean frames had no readable code", src.Skipped)
	}
}

// degrade imitates a phone or webcam filming a screen: pxPerModule pixels
// per module, rotated by angle degrees, contrast squeezed, Gaussian noise.
func degrade(s *Symbol, pxPerModule, angle, contrast, noise float64, rng *rand.Rand) *image.Gray {
	const srcScale = 8
	src := s.Image(srcScale)
	modules := float64(s.Size() + 2*QuietZone)
	n := int(math.Ceil(modules*pxPerModule)) + 6
	dst := image.NewGray(image.Rect(0, 0, n, n))
	sin, cos := math.Sincos(angle * math.Pi / 180)
	c := float64(n) / 2
	sc := float64(src.Rect.Dx()) / 2
	k := srcScale / pxPerModule
	sample := func(x, y float64) float64 {
		// bilinear, white outside
		x0, y0 := math.Floor(x), math.Floor(y)
		fx, fy := x-x0, y-y0
		at := func(xi, yi int) float64 {
			if xi < 0 || yi < 0 || xi >= src.Rect.Dx() || yi >= src.Rect.Dy() {
				return 255
			}
			return float64(src.Pix[yi*src.Stride+xi])
		}
		xi, yi := int(x0), int(y0)
		return (at(xi, yi)*(1-fx)+at(xi+1, yi)*fx)*(1-fy) + (at(xi, yi+1)*(1-fx)+at(xi+1, yi+1)*fx)*fy
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			// 3x3 supersampling stands in for the lens and sensor blur.
			sum := 0.0
			for sy := 0; sy < 3; sy++ {
				for sx := 0; sx < 3; sx++ {
					dx := (float64(x) + (float64(sx)+0.5)/3 - c) * k
					dy := (float64(y) + (float64(sy)+0.5)/3 - c) * k
					sum += sample(sc+dx*cos-dy*sin, sc+dx*sin+dy*cos)
				}
			}
			v := 128 + (sum/9-128)*contrast + rng.NormFloat64()*noise
			dst.Pix[y*dst.Stride+x] = uint8(math.Max(0, math.Min(255, math.Round(v))))
		}
	}
	return dst
}

// TestDegradedFrames decodes camera-like frames of default-size UR parts
// (2 to 3 pixels per module, up to 5 degrees of rotation, half contrast,
// noise) with zbar, and still receives the whole message.
func TestDegradedFrames(t *testing.T) {
	z := newZbar(t)
	msg := testMessage(8000, 8)
	e, err := ur.NewEncoder(msg, ur.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	dec := ur.NewDecoder(ur.Limits{})
	const frames = 60
	ok, shown := 0, 0
	for i := 0; i < frames && !dec.Done(); i++ {
		shown++
		part := e.NextPart()
		s, err := Encode([]byte(part), M)
		if err != nil {
			t.Fatal(err)
		}
		px := []float64{2, 2.5, 3}[i%3]
		angle := (rng.Float64()*2 - 1) * 5
		img := degrade(s, px, angle, 0.5, 12, rng)
		got, err := z.Decode(img)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Logf("frame %d (%.1f px/module, %.1f°): not decoded", i, px, angle)
			continue
		}
		if string(got[0]) != part {
			t.Fatalf("frame %d decoded to different text", i)
		}
		ok++
		if err := dec.Receive(string(got[0])); err != nil {
			t.Fatal(err)
		}
	}
	if !dec.Done() {
		t.Fatalf("message not received from %d degraded frames (%d decoded)", frames, ok)
	}
	p := dec.Progress()
	// At least 90 % of the frames shown decode (the fountain code would
	// hide a decoder that loses many).
	if ok*10 < shown*9 {
		t.Errorf("only %d of the %d frames shown decoded, want 90 %%", ok, shown)
	}
	t.Logf("%d of %d degraded frames decoded; message complete after %d frames for %d fragments", ok, shown, p.Frames, p.Fragments)
}

// TestTerminalCellsScan draws the cells as pixels (each cell 4x8, top and
// bottom halves) and scans them: what the TUI shows is a readable code.
func TestTerminalCellsScan(t *testing.T) {
	z := newZbar(t)
	part := "UR:BYTES/1-9/LPADASCFADAXCYWENBPLJKHDCAHKADAEMEJTSWHHYLKEPMYKHHTSYTSNOYOYAXAEDSUTTYDMMHHPKTPMSRJTDKGSLPGH"
	s, err := Encode([]byte(part), M)
	if err != nil {
		t.Fatal(err)
	}
	cells := s.Cells(QuietZone)
	img := image.NewGray(image.Rect(0, 0, 4*len(cells[0]), 8*len(cells)))
	for r, row := range cells {
		for x, c := range row {
			for dy := 0; dy < 8; dy++ {
				dark := c.Top
				if dy >= 4 {
					dark = c.Bottom
				}
				v := uint8(255)
				if dark {
					v = 0
				}
				for dx := 0; dx < 4; dx++ {
					img.Pix[(8*r+dy)*img.Stride+4*x+dx] = v
				}
			}
		}
	}
	if got := decodeOne(t, z, img); string(got) != part {
		t.Fatalf("scanned %q", got)
	}
}

// TestCameraFrameConversion converts YUYV and MJPEG frames of a code as a
// camera would deliver them and scans the result.
func TestCameraFrameConversion(t *testing.T) {
	z := newZbar(t)
	part := "UR:BYTES/3-9/LPAXASCFADAXCYWENBPLJKHDCAHELBKNLKUEJNBADMSSFHFRDPSBIEGECPASVSSOVLGEYKSSJYKKLRONVSJKSOPDZMOL"
	s, err := Encode([]byte(part), M)
	if err != nil {
		t.Fatal(err)
	}
	g := s.Image(4)
	w, h := g.Rect.Dx(), g.Rect.Dy()
	yuyv := make([]byte, 2*w*h)
	for i, v := range g.Pix {
		yuyv[2*i], yuyv[2*i+1] = v, 128
	}
	img, err := FrameImage(FormatYUYV, yuyv, w, h)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeOne(t, z, img); string(got) != part {
		t.Fatalf("yuyv: %q", got)
	}
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, g, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	img, err = FrameImage(FormatMJPEG, jb.Bytes(), w, h)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeOne(t, z, img); string(got) != part {
		t.Fatalf("mjpeg: %q", got)
	}
}

// TestZbarcamNoCamera spawns zbarcam on a device that does not exist and
// expects its failure to be reported.
func TestZbarcamNoCamera(t *testing.T) {
	needTool(t, "zbarcam")
	zc, err := StartZbarcam("/dev/video-airlock-test-none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zc.Close() })
	_, err = zc.Next(context.Background())
	if err == nil {
		t.Fatal("zbarcam without a camera produced a frame")
	}
	t.Logf("zbarcam error: %v", err)
}
