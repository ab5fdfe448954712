package qr

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // frames from cameras and phones
	_ "image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

const (
	// MaxImageFileBytes caps one image file a DirSource reads.
	MaxImageFileBytes = 64 << 20
	// MaxLineLen caps one line of zbarcam output.
	MaxLineLen = 64 << 10
)

// Source yields the payloads of scanned QR codes, one per call. It returns
// io.EOF when no more frames will come.
type Source interface {
	Next(ctx context.Context) ([]byte, error)
}

// ImageDecoder finds QR payloads in an image; *Zbar is one.
type ImageDecoder interface {
	Decode(img image.Image) ([][]byte, error)
}

// DirSource yields the QR payloads of the PNG and JPEG files in a folder,
// in file name order. Images without a readable code are skipped and
// counted.
type DirSource struct {
	dec     ImageDecoder
	files   []string
	queue   [][]byte
	Skipped int // images with no QR code found
}

// NewDirSource lists dir's *.png, *.jpg and *.jpeg files.
func NewDirSource(dir string, dec ImageDecoder) (*DirSource, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("qr: frames folder: %w", err)
	}
	s := &DirSource{dec: dec}
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg":
			if e.Type().IsRegular() {
				s.files = append(s.files, filepath.Join(dir, e.Name()))
			}
		}
	}
	slices.Sort(s.files)
	return s, nil
}

// Next returns the next payload, or io.EOF after the last image.
func (s *DirSource) Next(ctx context.Context) ([]byte, error) {
	for len(s.queue) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(s.files) == 0 {
			return nil, io.EOF
		}
		name := s.files[0]
		s.files = s.files[1:]
		img, err := readImage(name)
		if err != nil {
			return nil, err
		}
		payloads, err := s.dec.Decode(img)
		if err != nil {
			return nil, fmt.Errorf("qr: %s: %w", filepath.Base(name), err)
		}
		if len(payloads) == 0 {
			s.Skipped++
		}
		s.queue = payloads
	}
	p := s.queue[0]
	s.queue = s.queue[1:]
	return p, nil
}

// readImage reads a PNG or JPEG file within the size caps.
func readImage(name string) (image.Image, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxImageFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("qr: reading %s: %w", name, err)
	}
	if len(data) > MaxImageFileBytes {
		return nil, fmt.Errorf("qr: %s is larger than the cap of %d bytes", filepath.Base(name), MaxImageFileBytes)
	}
	return decodeImageBytes(data, filepath.Base(name))
}

func decodeImageBytes(data []byte, name string) (image.Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("qr: %s is not a png or jpeg image: %w", name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, fmt.Errorf("qr: %s is %dx%d pixels, outside the cap of %d pixels", name, cfg.Width, cfg.Height, MaxImagePixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("qr: decoding %s: %w", name, err)
	}
	return img, nil
}

// LineSource yields one payload per line of a reader, such as the output
// of `zbarcam --nodisplay --raw -Sbinary`. Empty lines are skipped; lines
// longer than MaxLineLen end the source with an error.
type LineSource struct {
	lines chan lineResult
	stop  chan struct{}
	once  sync.Once
}

type lineResult struct {
	line []byte
	err  error
}

// NewLineSource starts reading r in the background. Close stops handing
// out lines; the reader itself is the caller's to close.
func NewLineSource(r io.Reader) *LineSource {
	s := &LineSource{lines: make(chan lineResult), stop: make(chan struct{})}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(r)
		// Room for a line of MaxLineLen bytes and its "\r\n".
		sc.Buffer(make([]byte, 4096), MaxLineLen+3)
		tooLong := fmt.Errorf("qr: a scanned line is longer than the cap of %d bytes", MaxLineLen)
		for sc.Scan() {
			line := sc.Bytes() // bufio.ScanLines has dropped "\r\n" or "\n"
			if len(line) == 0 {
				continue
			}
			if len(line) > MaxLineLen {
				select {
				case s.lines <- lineResult{err: tooLong}:
				case <-s.stop:
				}
				return
			}
			select {
			case s.lines <- lineResult{line: bytes.Clone(line)}:
			case <-s.stop:
				return
			}
		}
		err := sc.Err()
		if errors.Is(err, bufio.ErrTooLong) {
			err = tooLong
		}
		if err != nil {
			select {
			case s.lines <- lineResult{err: err}:
			case <-s.stop:
			}
		}
	}()
	return s
}

// Next returns the next line, or io.EOF when the reader ends.
func (s *LineSource) Next(ctx context.Context) ([]byte, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r, ok := <-s.lines:
		if !ok {
			return nil, io.EOF
		}
		return r.line, r.err
	}
}

// Close stops the background reader at its next line.
func (s *LineSource) Close() error {
	s.once.Do(func() { close(s.stop) })
	return nil
}

// Zbarcam runs `zbarcam --nodisplay --raw -Sbinary DEVICE` and yields the
// symbols it prints.
type Zbarcam struct {
	*LineSource
	cmd    *exec.Cmd
	out    *os.File
	stderr *bytes.Buffer
	done   chan struct{}
	err    error
}

// StartZbarcam spawns zbarcam on a V4L2 device such as /dev/video0. The
// program is looked up as "zbarcam" in PATH.
func StartZbarcam(device string) (*Zbarcam, error) {
	return startZbarcam("zbarcam", device)
}

func startZbarcam(program, device string) (*Zbarcam, error) {
	cmd := exec.Command(program, "--nodisplay", "--raw", "-Sbinary", device)
	// An os.Pipe we own (rather than StdoutPipe) lets Wait run while the
	// line reader still drains the output.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("qr: zbarcam: %w", err)
	}
	cmd.Stdout = w
	z := &Zbarcam{cmd: cmd, out: r, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = &limitedWriter{w: z.stderr, n: 4096}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("qr: starting zbarcam (install zbar-tools): %w", err)
	}
	z.LineSource = NewLineSource(r)
	go func() {
		z.err = cmd.Wait()
		close(z.done)
	}()
	return z, nil
}

// Next returns the next symbol; when zbarcam exits it reports why.
func (z *Zbarcam) Next(ctx context.Context) ([]byte, error) {
	p, err := z.LineSource.Next(ctx)
	if errors.Is(err, io.EOF) {
		select {
		case <-z.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if z.err != nil {
			return nil, fmt.Errorf("qr: zbarcam %s: %w: %s", z.cmd.Args[len(z.cmd.Args)-1], z.err, strings.TrimSpace(z.stderr.String()))
		}
	}
	return p, err
}

// Close stops zbarcam (by its process id) and waits for it.
func (z *Zbarcam) Close() error {
	z.LineSource.Close()
	if z.cmd.Process != nil {
		_ = z.cmd.Process.Kill()
	}
	<-z.done
	return z.out.Close()
}

type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
