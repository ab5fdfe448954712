package tpm

import "github.com/google/go-tpm/tpm2/transport"

// SetDeviceHook wraps every device OpenDevice opens until the returned
// function restores the previous hook.
func SetDeviceHook(h func(transport.TPMCloser) transport.TPMCloser) (restore func()) {
	old := deviceHook
	deviceHook = h
	return func() { deviceHook = old }
}
