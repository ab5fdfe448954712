//go:build cgo

// Package tpmsim links the in-process TPM 2.0 simulator (Microsoft's
// reference implementation, through go-tpm-tools, which needs cgo) into a
// binary and makes it reachable as device=simulator in tpm: key URIs.
//
// There is one simulator per process. It is started on first use and kept
// running for the life of the process, so keys made persistent in it survive
// closing a signer, as on a real TPM. Commands from all handles are
// serialised. Only tests import this package.
package tpmsim

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpmutil"

	"airlock.dev/airlock/hsm/tpm"
)

func init() { tpm.RegisterSimulator(Open) }

var sim struct {
	mu sync.Mutex // serialises commands and guards s
	s  *simulator.Simulator
}

// simHandle is one user's handle on the shared simulator.
type simHandle struct {
	mu     sync.Mutex
	closed bool
}

// Open returns a handle on the shared simulator, starting it if needed.
func Open() (transport.TPMCloser, error) {
	sim.mu.Lock()
	defer sim.mu.Unlock()
	if sim.s == nil {
		s, err := simulator.Get()
		if err != nil {
			return nil, fmt.Errorf("start tpm simulator: %w", err)
		}
		sim.s = s
	}
	return &simHandle{}, nil
}

// Send implements transport.TPM.
func (h *simHandle) Send(cmd []byte) ([]byte, error) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, errors.New("tpm simulator handle is closed")
	}
	sim.mu.Lock()
	defer sim.mu.Unlock()
	return tpmutil.RunCommandRaw(sim.s, cmd)
}

// Close implements transport.TPMCloser. It releases this handle only.
func (h *simHandle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	return nil
}

// ResetInsecure wipes the in-process simulator as if it had just
// been manufactured: every persistent key, NV index and lockout counter is
// gone. It exists for tests; it refuses to run on anything but the simulator.
func ResetInsecure() error {
	sim.mu.Lock()
	defer sim.mu.Unlock()
	if sim.s == nil {
		s, err := simulator.Get()
		if err != nil {
			return fmt.Errorf("start tpm simulator: %w", err)
		}
		sim.s = s
		return nil
	}
	return sim.s.ManufactureReset()
}

// Available reports whether this build has the in-process simulator.
const Available = true
