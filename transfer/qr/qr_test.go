package qr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"airlock.dev/airlock/transfer/ur"
)

func testMessage(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func TestEncodeAlphanumericUR(t *testing.T) {
	e, err := ur.NewEncoder(testMessage(5000, 1), ur.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := e.NextPart()
	s, err := Encode([]byte(part), M)
	if err != nil {
		t.Fatal(err)
	}
	// A 200-byte fragment is about 470 alphanumeric characters: version 12
	// at level M in alphanumeric mode, version 17 or more in byte mode.
	if v := s.Version(); v < 10 || v > 13 {
		t.Errorf("default part of %d characters is QR version %d, want 10..13", len(part), v)
	}
	if !bytes.HasPrefix(s.PNG(2), []byte("\x89PNG")) {
		t.Error("PNG output is not a PNG")
	}
}

func TestCells(t *testing.T) {
	s, err := Encode([]byte("UR:BYTES/TEST"), M)
	if err != nil {
		t.Fatal(err)
	}
	const quiet = 2
	cells := s.Cells(quiet)
	n := s.Size() + 2*quiet
	if len(cells) != (n+1)/2 || len(cells[0]) != n {
		t.Fatalf("cells are %dx%d, want %dx%d", len(cells[0]), len(cells), n, (n+1)/2)
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			c := cells[y/2][x]
			got := c.Top
			if y%2 == 1 {
				got = c.Bottom
			}
			if want := s.Dark(x-quiet, y-quiet); got != want {
				t.Fatalf("module (%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
	ansi := s.ANSI(quiet)
	if got := strings.Count(ansi, "\n"); got != len(cells) {
		t.Errorf("ANSI has %d lines, want %d", got, len(cells))
	}
	if got := strings.Count(ansi, string(HalfBlock)); got != n*len(cells) {
		t.Errorf("ANSI has %d half blocks, want %d", got, n*len(cells))
	}
}

func TestLineSource(t *testing.T) {
	src := NewLineSource(strings.NewReader("UR:BYTES/A\r\n\nUR:BYTES/B\n"))
	defer src.Close()
	ctx := context.Background()
	var got []string
	for {
		p, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(p))
	}
	if strings.Join(got, ",") != "UR:BYTES/A,UR:BYTES/B" {
		t.Fatalf("lines = %q", got)
	}
	long := NewLineSource(strings.NewReader(strings.Repeat("A", MaxLineLen+10) + "\n"))
	defer long.Close()
	if _, err := long.Next(ctx); err == nil || !strings.Contains(err.Error(), "longer than the cap") {
		t.Fatalf("long line: %v", err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	blocked := NewLineSource(pr)
	defer blocked.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := blocked.Next(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Next: %v", err)
	}
}

// TestReceiveLines runs the receive loop over zbarcam-style lines: junk,
// another sender's frame, duplicates and losses, as a camera would see.
func TestReceiveLines(t *testing.T) {
	msg := testMessage(3000, 2)
	e, err := ur.NewEncoder(msg, ur.EncoderOptions{MaxFragmentLen: 150})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ur.NewEncoder(testMessage(3000, 3), ur.EncoderOptions{MaxFragmentLen: 150})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := 0; i < 6*e.SeqLen(); i++ {
		p := e.NextPart()
		switch {
		case i%3 == 1:
			continue // lost
		case i == 3:
			lines = append(lines, "HTTPS://EXAMPLE.COM/NOT-A-UR")
		case i == 5:
			lines = append(lines, other.NextPart())
		}
		lines = append(lines, p, p)
	}
	src := NewLineSource(strings.NewReader(strings.Join(lines, "\n")))
	defer src.Close()
	var rejected, calls int
	got, err := Receive(context.Background(), src, ur.NewDecoder(ur.Limits{}), func(p ur.Progress, ferr error) {
		calls++
		if ferr != nil {
			rejected++
		}
		if p.Fraction < 0 || p.Fraction > 1 {
			t.Errorf("fraction %v", p.Fraction)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("message differs")
	}
	if rejected != 2 || calls < e.SeqLen() {
		t.Errorf("rejected %d frames in %d calls, want 2 rejections", rejected, calls)
	}
}

func TestReceiveStops(t *testing.T) {
	huge := ur.Part{SeqNum: 1, SeqLen: 3000, MessageLen: 3000 * 1000, Checksum: 1, Data: make([]byte, 1000)}
	huge2 := "UR:BYTES/1-3000/" + strings.ToUpper(ur.EncodeBytewords(ur.Minimal, huge.MarshalCBOR()))
	src := NewLineSource(strings.NewReader(huge2 + "\n"))
	defer src.Close()
	_, err := Receive(context.Background(), src, ur.NewDecoder(ur.Limits{}), nil)
	if !errors.Is(err, ur.ErrLimit) || !strings.Contains(err.Error(), "message length 3000000 exceeds the cap") {
		t.Fatalf("huge claim: %v", err)
	}
	e, _ := ur.NewEncoder(testMessage(3000, 2), ur.EncoderOptions{MaxFragmentLen: 150})
	src = NewLineSource(strings.NewReader(e.NextPart() + "\n"))
	defer src.Close()
	if _, err := Receive(context.Background(), src, ur.NewDecoder(ur.Limits{}), nil); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), fmt.Sprintf("1 of %d fragments", e.SeqLen())) {
		t.Fatalf("early end: %v", err)
	}
}

func TestSend(t *testing.T) {
	e, err := ur.NewEncoder(testMessage(2000, 4), ur.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := ur.NewDecoder(ur.Limits{})
	err = Send(ctx, e, 120, func(part string) error {
		if err := d.Receive(part); err != nil {
			return err
		}
		if d.Done() {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || !d.Done() {
		t.Fatalf("Send = %v, done %v", err, d.Done())
	}
	if err := Send(ctx, e, 0, nil); err == nil {
		t.Error("Send accepted 0 fps")
	}
	sentinel := errors.New("screen gone")
	if err := Send(context.Background(), e, 120, func(string) error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Send = %v, want the show error", err)
	}
}

func TestNoCamera(t *testing.T) {
	_, err := OpenCamera("/dev/video-airlock-test-none", nil)
	if !errors.Is(err, ErrNoCamera) || !strings.Contains(err.Error(), "connect a camera") {
		t.Fatalf("OpenCamera = %v, want ErrNoCamera", err)
	}
}

func TestFrameImageRejects(t *testing.T) {
	for _, tc := range []struct {
		format uint32
		data   []byte
		w, h   int
		want   string
	}{
		{FormatYUYV, make([]byte, 10), 4, 4, "yuyv frame has 10 bytes"},
		{FormatGrey, make([]byte, 10), 4, 4, "grey frame has 10 bytes"},
		{FormatMJPEG, []byte("not a jpeg"), 4, 4, "not a png or jpeg"},
		{0x12345678, nil, 4, 4, "not supported"},
		{FormatGrey, nil, 1 << 15, 1 << 15, "above the cap"},
	} {
		if _, err := FrameImage(tc.format, tc.data, tc.w, tc.h); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FrameImage(%08x): %v, want %q", tc.format, err, tc.want)
		}
	}
}
