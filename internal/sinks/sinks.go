// Package sinks holds the removable-media destinations of a signed
// response: a USB stick written in user space and an animated QR sequence.
// The appliance core knows only its Sink interface; the wiring in
// cmd/airlock-appliance chooses these.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/transfer/ur"
	"airlock.dev/airlock/transfer/usb"
)

// USBSink writes the response folder onto the FAT32 filesystem of a USB
// stick (a block device) or a disk image, in user space: no mount, no kernel
// filesystem driver. The folder is named after the ceremony and must not
// exist on the stick; every byte is read back and compared before Export
// returns.
type USBSink struct {
	// Device is the block device or image path, e.g. /dev/sdb.
	Device string
}

// MaxExportNameLen caps the response folder name written to a stick.
const MaxExportNameLen = 64

// Export writes e as FOLDER/response.json and FOLDER/record.json.
func (u USBSink) Export(_ context.Context, e appliance.Export) (string, error) {
	if u.Device == "" {
		return "", errors.New("usb sink: no device given: name the stick's device or image")
	}
	name := ExportFolderName(e)
	files := []usb.ResponseFile{{Name: appliance.RecordFile, Data: e.Record}, {Name: appliance.ResponseFile, Data: e.Response}}
	if err := usb.WriteResponse(u.Device, name, files); err != nil {
		return "", fmt.Errorf("usb sink: %w", err)
	}
	return u.Device + ":/" + name, nil
}

// ExportFolderName is the folder a response is written to on removable
// media: role, version and ceremony id, reduced to letters, digits, '.',
// '-' and '_' within MaxExportNameLen.
func ExportFolderName(e appliance.Export) string {
	raw := fmt.Sprintf("%s-v%d-%s", e.Role, e.Version, e.CeremonyID)
	var b strings.Builder
	for _, r := range raw {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), ".")
	if len(s) > MaxExportNameLen {
		s = s[len(s)-MaxExportNameLen:]
	}
	if s == "" {
		s = "response"
	}
	return s
}

// QRSink turns the response into an animated QR sequence for the TUI: the
// response (which carries the record's hash) travels as UR "bytes" parts.
// The record does not fit a QR animation of useful length; it stays in the
// audit log and goes out with the next folder or USB export.
type QRSink struct {
	// Options configure the fountain encoder (zero value: defaults).
	Options ur.EncoderOptions
	// Frames is called with the encoder once the response is encoded; the
	// TUI shows enc.NextPart() frame after frame until the operator stops.
	Frames func(enc *ur.Encoder)
	// Encoder is the last encoder made (for callers without Frames).
	Encoder *ur.Encoder
}

// Export encodes e.Response and hands the encoder to Frames.
func (q *QRSink) Export(_ context.Context, e appliance.Export) (string, error) {
	enc, err := ur.NewEncoder(e.Response, q.Options)
	if err != nil {
		return "", fmt.Errorf("qr sink: %w", err)
	}
	q.Encoder = enc
	if q.Frames != nil {
		q.Frames(enc)
	}
	return fmt.Sprintf("qr: %d-part ur:bytes sequence, fingerprint %s", enc.SeqLen(), enc.Fingerprint()), nil
}

// MaxQRFrames caps the frames QRFrames returns.
const MaxQRFrames = 10_000

// QRFrames returns the first n frames of the response's UR sequence: every
// pure part once, then fountain parts, enough for a scanner that misses some.
func QRFrames(response []byte, opts ur.EncoderOptions, n int) ([]string, error) {
	enc, err := ur.NewEncoder(response, opts)
	if err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	n = min(max(n, enc.SeqLen()), MaxQRFrames)
	out := make([]string, 0, n)
	for range n {
		out = append(out, enc.NextPart())
	}
	return out, nil
}
