package qr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"airlock.dev/airlock/transfer/ur"
)

// changingSource yields, for ever, the first part of a new message each
// time: what a hostile screen in front of the camera can show.
type changingSource struct{ n int }

func (s *changingSource) Next(context.Context) ([]byte, error) {
	s.n++
	enc, err := ur.NewEncoder([]byte(fmt.Sprintf("message %d %s", s.n, strings.Repeat("x", 400))), ur.EncoderOptions{MaxFragmentLen: 100})
	if err != nil {
		return nil, err
	}
	return []byte(enc.NextPart()), nil
}

func TestReceiveCapsDistinctMessages(t *testing.T) {
	src := &changingSource{}
	_, err := Receive(context.Background(), src, ur.NewDecoder(ur.Limits{}), nil)
	var ce *CapError
	if !errors.As(err, &ce) || ce.What != "distinct messages" {
		t.Fatalf("Receive = %v, want the distinct-messages cap", err)
	}
	if src.n != DefaultMaxMessages+1 {
		t.Fatalf("read %d frames, want %d", src.n, DefaultMaxMessages+1)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("more than %d distinct messages", DefaultMaxMessages)) {
		t.Fatalf("error does not name the cap: %v", err)
	}
}

// junkSource yields frames that are never parts.
type junkSource struct{ n int }

func (s *junkSource) Next(context.Context) ([]byte, error) { s.n++; return []byte("not a ur"), nil }

func TestReceiveCapsFrames(t *testing.T) {
	src := &junkSource{}
	_, err := ReceiveWithin(context.Background(), src, ur.NewDecoder(ur.Limits{}), Limits{MaxFrames: 500}, nil)
	var ce *CapError
	if !errors.As(err, &ce) || ce.What != "frames" || !strings.Contains(err.Error(), "more than 500 frames") {
		t.Fatalf("Receive = %v, want the frames cap of 500", err)
	}
	if src.n != 500 {
		t.Fatalf("read %d frames, want 500", src.n)
	}
}

func TestReceiveCapsTime(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A deadline already passed: the time cap, not the caller, ends it.
	_, err := ReceiveWithin(ctx, &junkSource{}, ur.NewDecoder(ur.Limits{}), Limits{MaxDuration: -1}, nil)
	if err == nil {
		t.Fatal("Receive of junk for ever returned no error")
	}
	_, err = ReceiveWithin(ctx, &junkSource{}, ur.NewDecoder(ur.Limits{}), Limits{MaxDuration: 1}, nil)
	var ce *CapError
	if !errors.As(err, &ce) || ce.What != "scan time" {
		t.Fatalf("Receive = %v, want the scan-time cap", err)
	}
}

// TestReceiveNamesMessageCap feeds one part claiming a 4 GiB message: the
// scan must end naming the message-length cap, not "0 of 0 fragments".
func TestReceiveNamesMessageCap(t *testing.T) {
	p := ur.Part{SeqNum: 1, SeqLen: 4294968, MessageLen: 0xFFFFFFFF, Checksum: 1, Data: []byte(strings.Repeat("a", 1000))}
	part := "ur:bytes/1-4294968/" + ur.EncodeBytewords(ur.Minimal, p.MarshalCBOR())
	src := NewLineSource(strings.NewReader(part + "\n"))
	defer src.Close()
	_, err := Receive(context.Background(), src, ur.NewDecoder(ur.Limits{}), nil)
	if err == nil || !strings.Contains(err.Error(), "message length 4294967295 exceeds the cap") {
		t.Fatalf("Receive = %v, want the message length cap named", err)
	}
}
