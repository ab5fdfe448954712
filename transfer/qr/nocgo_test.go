//go:build !cgo

package qr

import (
	"errors"
	"testing"
)

func TestZbarStub(t *testing.T) {
	if _, err := NewZbar(); !errors.Is(err, ErrNoZbar) {
		t.Fatalf("NewZbar without cgo = %v, want ErrNoZbar", err)
	}
}
