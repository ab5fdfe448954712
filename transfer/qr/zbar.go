//go:build cgo

package qr

/*
#cgo pkg-config: zbar
#include <stdlib.h>
#include <zbar.h>
*/
import "C"

import (
	"fmt"
	"image"
	"sync"
	"unsafe"
)

// Zbar decodes QR codes in images with libzbar, binary payloads byte for
// byte (ZBAR_CFG_BINARY). It is safe for concurrent use.
type Zbar struct {
	mu      sync.Mutex
	scanner *C.zbar_image_scanner_t
}

// NewZbar returns a QR decoder. Call Close when done.
func NewZbar() (*Zbar, error) {
	sc := C.zbar_image_scanner_create()
	if sc == nil {
		return nil, fmt.Errorf("qr: zbar: cannot create an image scanner")
	}
	// Only QR codes, payloads as raw bytes.
	C.zbar_image_scanner_set_config(sc, 0, C.ZBAR_CFG_ENABLE, 0)
	C.zbar_image_scanner_set_config(sc, C.ZBAR_QRCODE, C.ZBAR_CFG_ENABLE, 1)
	C.zbar_image_scanner_set_config(sc, C.ZBAR_QRCODE, C.ZBAR_CFG_BINARY, 1)
	return &Zbar{scanner: sc}, nil
}

// Close frees the scanner.
func (z *Zbar) Close() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.scanner != nil {
		C.zbar_image_scanner_destroy(z.scanner)
		z.scanner = nil
	}
	return nil
}

// Decode returns the payloads of every QR code zbar finds in img, none if
// it finds none.
func (z *Zbar) Decode(img image.Image) ([][]byte, error) {
	g, err := toGray(img)
	if err != nil {
		return nil, err
	}
	w, h := g.Rect.Dx(), g.Rect.Dy()
	// zbar wants tightly packed Y800 in memory it may keep until the image
	// is destroyed: give it a C copy.
	buf := C.malloc(C.size_t(w * h))
	if buf == nil {
		return nil, fmt.Errorf("qr: zbar: out of memory for a %dx%d image", w, h)
	}
	defer C.free(buf)
	dst := unsafe.Slice((*byte)(buf), w*h)
	for y := 0; y < h; y++ {
		copy(dst[y*w:(y+1)*w], g.Pix[y*g.Stride:y*g.Stride+w])
	}

	z.mu.Lock()
	defer z.mu.Unlock()
	if z.scanner == nil {
		return nil, fmt.Errorf("qr: zbar: decoder is closed")
	}
	zi := C.zbar_image_create()
	if zi == nil {
		return nil, fmt.Errorf("qr: zbar: cannot create an image")
	}
	defer C.zbar_image_destroy(zi)
	C.zbar_image_set_format(zi, C.ulong(uint32('Y')|uint32('8')<<8|uint32('0')<<16|uint32('0')<<24))
	C.zbar_image_set_size(zi, C.uint(w), C.uint(h))
	C.zbar_image_set_data(zi, buf, C.ulong(w*h), nil)
	if n := C.zbar_scan_image(z.scanner, zi); n < 0 {
		return nil, fmt.Errorf("qr: zbar: scan failed")
	}
	var out [][]byte
	for sym := C.zbar_image_first_symbol(zi); sym != nil; sym = C.zbar_symbol_next(sym) {
		if C.zbar_symbol_get_type(sym) != C.ZBAR_QRCODE {
			continue
		}
		n := C.zbar_symbol_get_data_length(sym)
		out = append(out, C.GoBytes(unsafe.Pointer(C.zbar_symbol_get_data(sym)), C.int(n)))
	}
	return out, nil
}

// ZbarAvailable reports whether this build can decode images.
const ZbarAvailable = true
