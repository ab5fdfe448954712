//go:build !cgo || !linux

package piv

import (
	"context"
	"fmt"

	"airlock.dev/airlock/hsm"
)

// errNoSupport is what every entry point returns in a build without cgo.
var errNoSupport = fmt.Errorf("compiled without yubikey support (build with cgo and libpcsclite on linux): %w", hsm.ErrUnsupported)

func init() {
	hsm.Register(hsm.KindYubiKey, func(context.Context, hsm.URI, hsm.Prompter) (hsm.Signer, error) {
		return nil, errNoSupport
	})
}

// List fails: this build has no PC/SC support.
func List(context.Context) ([]Card, error) { return nil, errNoSupport }

// Enroll fails: this build has no PC/SC support.
func Enroll(context.Context, uint32, EnrollOptions) (*Enrollment, error) { return nil, errNoSupport }

// ReadStatus fails: this build has no PC/SC support.
func ReadStatus(context.Context, uint32) (*Status, error) { return nil, errNoSupport }

// ChangePIN fails: this build has no PC/SC support.
func ChangePIN(context.Context, uint32, []byte, []byte) error { return errNoSupport }

// UnblockPIN fails: this build has no PC/SC support.
func UnblockPIN(context.Context, uint32, []byte, []byte) error { return errNoSupport }
