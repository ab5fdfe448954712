package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// DefaultCounterIndex is the NV index of the appliance's state counter, in
// the owner range. Key records use 0x01000000 | (key handle & 0x3FFFFF);
// keep key handles away from 0x813FFE00.
const DefaultCounterIndex = 0x013FFE00

// Counter is a TPM NV counter (TPM_NT_COUNTER): the TPM only ever moves it
// up, and a newly defined counter starts at the highest value any counter
// of the TPM has had, so neither undefining nor restoring a disk moves it
// back. It implements appliance.Counter.
type Counter struct {
	Device string // as for OpenDevice
	Index  uint32 // default DefaultCounterIndex
}

func (c Counter) index() tpm2.TPMHandle {
	if c.Index == 0 {
		return DefaultCounterIndex
	}
	return tpm2.TPMHandle(c.Index)
}

// String names the counter.
func (c Counter) String() string {
	dev := c.Device
	if dev == "" {
		dev = DefaultDevice
	}
	return fmt.Sprintf("tpm counter 0x%08x on %s", uint32(c.index()), dev)
}

// Read returns the counter's value; ok is false when the index is not
// defined or was never incremented.
func (c Counter) Read() (uint64, bool, error) {
	t, err := OpenDevice(c.Device)
	if err != nil {
		return 0, false, err
	}
	defer t.Close()
	return c.read(t)
}

func (c Counter) read(t transport.TPM) (uint64, bool, error) {
	idx := c.index()
	pubRsp, err := tpm2.NVReadPublic{NVIndex: idx}.Execute(t)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read nv index 0x%08x: %w", uint32(idx), err)
	}
	pub, err := pubRsp.NVPublic.Contents()
	if err != nil {
		return 0, false, fmt.Errorf("nv index 0x%08x: %w", uint32(idx), err)
	}
	if pub.Attributes.NT != tpm2.TPMNTCounter || pub.DataSize != 8 {
		return 0, false, fmt.Errorf("nv index 0x%08x is not a counter: it belongs to something else; choose another index", uint32(idx))
	}
	if !pub.Attributes.Written {
		return 0, false, nil
	}
	rsp, err := tpm2.NVRead{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:    tpm2.NamedHandle{Handle: idx, Name: pubRsp.NVName},
		Size:       8,
	}.Execute(t)
	if err != nil {
		return 0, false, fmt.Errorf("read nv index 0x%08x: %w", uint32(idx), err)
	}
	if len(rsp.Data.Buffer) != 8 {
		return 0, false, fmt.Errorf("nv index 0x%08x: read %d bytes, want 8", uint32(idx), len(rsp.Data.Buffer))
	}
	return binary.BigEndian.Uint64(rsp.Data.Buffer), true, nil
}

// Increment adds one to the counter, defining it first if needed, and
// returns the new value.
func (c Counter) Increment() (uint64, error) {
	t, err := OpenDevice(c.Device)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	idx := c.index()
	pubRsp, err := tpm2.NVReadPublic{NVIndex: idx}.Execute(t)
	if errors.Is(err, tpm2.TPMRCHandle) {
		def := tpm2.NVDefineSpace{
			AuthHandle: tpm2.TPMRHOwner,
			PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
				NVIndex: idx,
				NameAlg: tpm2.TPMAlgSHA256,
				Attributes: tpm2.TPMANV{
					OwnerWrite: true,
					OwnerRead:  true,
					NoDA:       true,
					NT:         tpm2.TPMNTCounter,
				},
				DataSize: 8,
			}),
		}
		if _, err := def.Execute(t); err != nil {
			return 0, fmt.Errorf("define counter nv index 0x%08x: %w", uint32(idx), err)
		}
		pubRsp, err = tpm2.NVReadPublic{NVIndex: idx}.Execute(t)
	}
	if err != nil {
		return 0, fmt.Errorf("read nv index 0x%08x: %w", uint32(idx), err)
	}
	pub, err := pubRsp.NVPublic.Contents()
	if err != nil {
		return 0, fmt.Errorf("nv index 0x%08x: %w", uint32(idx), err)
	}
	if pub.Attributes.NT != tpm2.TPMNTCounter || pub.DataSize != 8 {
		return 0, fmt.Errorf("nv index 0x%08x is not a counter: it belongs to something else; choose another index", uint32(idx))
	}
	_, err = tpm2.NVIncrement{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:    tpm2.NamedHandle{Handle: idx, Name: pubRsp.NVName},
	}.Execute(t)
	if err != nil {
		return 0, fmt.Errorf("increment nv index 0x%08x: %w", uint32(idx), err)
	}
	v, ok, err := c.read(t)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("nv index 0x%08x reads as unwritten after an increment", uint32(idx))
	}
	return v, nil
}
