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

// Caps on one Receive. A sender (or an attacker in front of the camera)
// can show frames for ever, or parts of ever-changing messages; each cap
// ends the scan with an error that names it.
const (
	// DefaultMaxFrames caps the frames read, accepted or refused. A
	// 1 MiB message in 200-byte fragments needs about 5,300 frames.
	DefaultMaxFrames = 50_000
	// DefaultMaxMessages caps the distinct messages seen: the one being
	// received plus parts of others.
	DefaultMaxMessages = 8
	// DefaultMaxDuration caps the time one scan may take.
	DefaultMaxDuration = 30 * time.Minute
)

// ErrCap is matched (errors.Is) by every *CapError.
var ErrCap = errors.New("qr scan cap reached")

// CapError ends a scan that reached one of the caps of Limits.
type CapError struct {
	What  string // "frames", "distinct messages", "scan time"
	Limit string // the cap, as shown to a person
}

func (e *CapError) Error() string {
	return fmt.Sprintf("qr: scan stopped: more than %s %s (cap); show only one sender's code and scan again", e.Limit, e.What)
}

// Is makes errors.Is(err, ErrCap) true.
func (e *CapError) Is(target error) bool { return target == ErrCap }

// Limits are the caps of one Receive; zero fields take the defaults.
type Limits struct {
	MaxFrames   int
	MaxMessages int
	MaxDuration time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxFrames <= 0 {
		l.MaxFrames = DefaultMaxFrames
	}
	if l.MaxMessages <= 0 {
		l.MaxMessages = DefaultMaxMessages
	}
	if l.MaxDuration <= 0 {
		l.MaxDuration = DefaultMaxDuration
	}
	return l
}

// Receive is ReceiveWithin with the default Limits.
func Receive(ctx context.Context, src Source, dec PartDecoder, progress func(ur.Progress, error)) ([]byte, error) {
	return ReceiveWithin(ctx, src, dec, Limits{}, progress)
}

// ReceiveWithin feeds frames from src to dec until the message is complete
// and returns it. After every frame it calls progress (if not nil) with the
// decoder's progress and the frame's rejection, nil if it was accepted.
// Frames that are malformed or of another message are skipped; it stops at
// a size cap, at a message that fails its checksum, when src fails or
// ends, when ctx is done, and at each cap of lim (a *CapError). When the
// frames end, the error repeats why the last frame was refused.
func ReceiveWithin(ctx context.Context, src Source, dec PartDecoder, lim Limits, progress func(ur.Progress, error)) ([]byte, error) {
	lim = lim.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, lim.MaxDuration)
	defer cancel()
	type msgID struct {
		checksum      uint32
		msgLen, seqLn uint32
	}
	seen := map[msgID]bool{}
	frames := 0
	var lastRefusal error
	for !dec.Done() {
		if err := ctx.Err(); err != nil {
			return nil, timeCap(ctx, err, lim)
		}
		if frames >= lim.MaxFrames {
			return nil, &CapError{What: "frames", Limit: fmt.Sprint(lim.MaxFrames)}
		}
		payload, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			p := dec.Progress()
			why := ""
			if lastRefusal != nil {
				why = "; the last frame was refused: " + lastRefusal.Error()
			}
			return nil, fmt.Errorf("qr: frames ended before the message was complete (%d of %d fragments known after %d frames)%s: %w", p.Known, p.Fragments, p.Frames, why, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, timeCap(ctx, err, lim)
		}
		frames++
		if p, perr := ur.DecodePart(string(payload)); perr == nil {
			seen[msgID{p.Checksum, p.MessageLen, p.SeqLen}] = true
			if len(seen) > lim.MaxMessages {
				return nil, &CapError{What: "distinct messages", Limit: fmt.Sprint(lim.MaxMessages)}
			}
		}
		ferr := dec.Receive(string(payload))
		if ferr != nil {
			lastRefusal = ferr
		}
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

// timeCap names the time cap when it is what ended the scan.
func timeCap(ctx context.Context, err error, lim Limits) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &CapError{What: "scan time", Limit: lim.MaxDuration.String() + " of"}
	}
	return err
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
