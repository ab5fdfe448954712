package qr

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"

	"github.com/blackjack/webcam"
)

// Pixel formats (V4L2 fourcc codes) a Camera accepts.
const (
	FormatYUYV  = uint32('Y') | uint32('U')<<8 | uint32('Y')<<16 | uint32('V')<<24
	FormatGrey  = uint32('G') | uint32('R')<<8 | uint32('E')<<16 | uint32('Y')<<24
	FormatMJPEG = uint32('M') | uint32('J')<<8 | uint32('P')<<16 | uint32('G')<<24
)

// ErrNoCamera reports that the camera device does not exist.
var ErrNoCamera = errors.New("no camera")

// Camera yields QR payloads from a V4L2 camera, decoding each frame with
// an ImageDecoder.
type Camera struct {
	cam    *webcam.Webcam
	dec    ImageDecoder
	format uint32
	w, h   int
	queue  [][]byte
}

// OpenCamera opens a V4L2 device such as /dev/video0 and starts streaming
// at about 1280x720 in a format it can convert (grey, YUYV or MJPEG).
func OpenCamera(device string, dec ImageDecoder) (*Camera, error) {
	if _, err := os.Stat(device); err != nil {
		return nil, fmt.Errorf("qr: camera %s: %w (connect a camera, or read frames from a folder)", device, ErrNoCamera)
	}
	cam, err := webcam.Open(device)
	if err != nil {
		return nil, fmt.Errorf("qr: camera %s: %w", device, err)
	}
	formats := cam.GetSupportedFormats()
	var chosen webcam.PixelFormat
	for _, f := range []uint32{FormatGrey, FormatYUYV, FormatMJPEG} {
		if _, ok := formats[webcam.PixelFormat(f)]; ok {
			chosen = webcam.PixelFormat(f)
			break
		}
	}
	if chosen == 0 {
		cam.Close()
		return nil, fmt.Errorf("qr: camera %s offers none of the grey, yuyv or mjpeg formats", device)
	}
	f, w, h, err := cam.SetImageFormat(chosen, 1280, 720)
	if err != nil {
		cam.Close()
		return nil, fmt.Errorf("qr: camera %s: setting the image format: %w", device, err)
	}
	if err := cam.StartStreaming(); err != nil {
		cam.Close()
		return nil, fmt.Errorf("qr: camera %s: starting to stream: %w", device, err)
	}
	return &Camera{cam: cam, dec: dec, format: uint32(f), w: int(w), h: int(h)}, nil
}

// Next returns the next payload seen by the camera.
func (c *Camera) Next(ctx context.Context) ([]byte, error) {
	for len(c.queue) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := c.cam.WaitForFrame(1)
		var timeout *webcam.Timeout
		if errors.As(err, &timeout) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("qr: camera: %w", err)
		}
		data, err := c.cam.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("qr: camera: %w", err)
		}
		if len(data) == 0 {
			continue
		}
		img, err := FrameImage(c.format, data, c.w, c.h)
		if err != nil {
			return nil, err
		}
		if c.queue, err = c.dec.Decode(img); err != nil {
			return nil, err
		}
	}
	p := c.queue[0]
	c.queue = c.queue[1:]
	return p, nil
}

// Close stops streaming and closes the device.
func (c *Camera) Close() error {
	_ = c.cam.StopStreaming()
	return c.cam.Close()
}

// FrameImage converts one raw camera frame to an image: grey frames and
// the luma of YUYV frames become *image.Gray, MJPEG frames are decoded.
func FrameImage(format uint32, data []byte, w, h int) (image.Image, error) {
	if w <= 0 || h <= 0 || int64(w)*int64(h) > MaxImagePixels {
		return nil, fmt.Errorf("qr: camera frame of %dx%d pixels is empty or above the cap of %d pixels", w, h, MaxImagePixels)
	}
	switch format {
	case FormatGrey:
		if len(data) < w*h {
			return nil, fmt.Errorf("qr: grey frame has %d bytes, want %d", len(data), w*h)
		}
		g := image.NewGray(image.Rect(0, 0, w, h))
		copy(g.Pix, data[:w*h])
		return g, nil
	case FormatYUYV:
		if len(data) < 2*w*h || w%2 != 0 {
			return nil, fmt.Errorf("qr: yuyv frame has %d bytes for %dx%d pixels, want %d and an even width", len(data), w, h, 2*w*h)
		}
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = data[2*i]
		}
		return g, nil
	case FormatMJPEG:
		return decodeImageBytes(data, "camera frame")
	default:
		return nil, fmt.Errorf("qr: camera pixel format %08x is not supported", format)
	}
}
