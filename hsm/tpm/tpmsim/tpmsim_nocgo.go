//go:build !cgo

// Package tpmsim links the in-process TPM 2.0 simulator into a binary. This
// build has no cgo, so there is no simulator: every call fails and says so.
package tpmsim

import (
	"errors"

	"github.com/google/go-tpm/tpm2/transport"

	"airlock.dev/airlock/hsm/tpm"
)

var errNoSimulator = errors.New("tpm simulator: this binary was built without cgo; use a swtpm server (device=tcp:127.0.0.1:PORT) or a real tpm")

func init() { tpm.RegisterSimulator(Open) }

// Open fails: this build has no in-process simulator.
func Open() (transport.TPMCloser, error) { return nil, errNoSimulator }

// ResetInsecure fails: this build has no in-process simulator.
func ResetInsecure() error { return errNoSimulator }

// Available reports whether this build has the in-process simulator.
const Available = false
