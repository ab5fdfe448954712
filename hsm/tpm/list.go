package tpm

import (
	"context"
	"crypto"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"airlock.dev/airlock/hsm"
)

// maxListedHandles caps how many persistent handles List reads.
const maxListedHandles = 256

// KeyInfo describes a persistent key in a TPM.
type KeyInfo struct {
	Handle uint32
	// URI names the key on the device List was given.
	URI hsm.URI
	// Public is the key's public key, nil for key types Airlock cannot use.
	Public crypto.PublicKey
	// Airlock is true for signing keys Airlock enrolled (key and record
	// agree); Holder and PCRs are known only for those.
	Airlock bool
	Holder  string
	PCRs    []int
	// Note says why a key is not an Airlock key, or what it is.
	Note string
}

// List lists the persistent keys in the TPM dev, Airlock keys and others.
func List(ctx context.Context, dev string) ([]KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := OpenDevice(dev)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	var handles []tpm2.TPMHandle
	next := uint32(0x81000000)
	for len(handles) < maxListedHandles {
		rsp, err := tpm2.GetCapability{
			Capability:    tpm2.TPMCapHandles,
			Property:      next,
			PropertyCount: maxListedHandles,
		}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("list persistent handles: %w", err)
		}
		hs, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			return nil, fmt.Errorf("list persistent handles: %w", err)
		}
		for _, h := range hs.Handle {
			if uint32(h) < next || uint32(h)>>24 != 0x81 {
				continue
			}
			handles = append(handles, h)
			next = uint32(h) + 1
		}
		if !rsp.MoreData || len(hs.Handle) == 0 {
			break
		}
	}
	var out []KeyInfo
	for _, h := range handles {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info := KeyInfo{Handle: uint32(h), URI: hsm.URI{Kind: hsm.KindTPM, Handle: uint32(h), Device: dev}}
		obj, err := readPublic(t, uint32(h))
		if err != nil {
			info.Note = err.Error()
			out = append(out, info)
			continue
		}
		if pub, err := tpm2.Pub(obj.public); err == nil {
			info.Public = pub
		}
		switch {
		case uint32(h) == AKHandle:
			info.Note = "airlock attestation key"
		case checkKeyHandle(uint32(h)) != nil:
			info.Note = "outside airlock's key handle range"
		default:
			k, err := readKey(t, uint32(h))
			if err != nil {
				info.Note = err.Error()
				break
			}
			info.Airlock = true
			info.Holder = k.rec.Holder
			info.PCRs = k.pcrs
			info.Note = "airlock signing key"
		}
		out = append(out, info)
	}
	return out, nil
}
