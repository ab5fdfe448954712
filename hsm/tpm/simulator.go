package tpm

import (
	"errors"
	"sync"

	"github.com/google/go-tpm/tpm2/transport"
)

var (
	simMu   sync.Mutex
	simOpen func() (transport.TPMCloser, error)
)

// RegisterSimulator installs the opener behind device=simulator. Package
// airlock.dev/airlock/hsm/tpm/tpmsim calls it in init, so only binaries
// that import that package (tests) can reach a simulated TPM.
func RegisterSimulator(open func() (transport.TPMCloser, error)) {
	simMu.Lock()
	defer simMu.Unlock()
	simOpen = open
}

func openSimulator() (transport.TPMCloser, error) {
	simMu.Lock()
	open := simOpen
	simMu.Unlock()
	if open == nil {
		return nil, errors.New("tpm device simulator: this binary has no tpm simulator (it is linked only into tests, through hsm/tpm/tpmsim)")
	}
	return open()
}
