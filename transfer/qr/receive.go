package qr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"airlock.dev/airlock/transfer/ur"
)

// PartDecoder is what Receive needs of a decoder; *ur.Decoder is one.
type PartDecoder interface {
	Receive(part string) error
	Done() bool
	Message() ([]byte, error)
	Progress() ur.Progress
	Err() error
}

// Receive feeds frames from src to dec until the message is complete and
// returns it. After every frame it calls progress (if not nil) with the
// decoder's progress and the frame's rejection, nil if it was accepted.
// Frames that are malformed or of another message are skipped; Receive
// stops at a size cap, at a message that fails its checksum, when src
// fails or ends, and when ctx is done.
func Receive(ctx context.Context, src Source, dec PartDecoder, progress func(ur.Progress, error)) ([]byte, error) {
	for !dec.Done() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		payload, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			p := dec.Progress()
			return nil, fmt.Errorf("qr: frames ended before the message was complete (%d of %d fragments known after %d frames): %w", p.Known, p.Fragments, p.Frames, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, err
		}
		ferr := dec.Receive(string(payload))
		if progress != nil {
			progress(dec.Progress(), ferr)
		}
		if err := dec.Err(); err != nil {
			return nil, err
		}
		if errors.Is(ferr, ur.ErrLimit) {
			return nil, ferr
		}
	}
	return dec.Message()
}

// PartSource produces the endless frames of one message; *ur.Encoder is
// one.
type PartSource interface {
	NextPart() string
}

// Send shows the parts of src at fps frames per second by calling show
// with each, until ctx is done (it then returns ctx.Err()) or show fails.
// The first frame is shown at once.
func Send(ctx context.Context, src PartSource, fps float64, show func(part string) error) error {
	if fps <= 0 || fps > 120 {
		return fmt.Errorf("qr: frame rate %g is outside 0 < fps <= 120", fps)
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / fps))
	defer t.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := show(src.NextPart()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
