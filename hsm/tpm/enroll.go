package tpm

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/tpm/keypolicy"
)

const (
	// AKHandle is where Airlock keeps its attestation key: a restricted
	// ECDSA P-256 signing key, a primary of the endorsement hierarchy
	// (keypolicy.AKTemplate), made persistent on first enrolment. Its public
	// key is what an appliance pins when it is provisioned.
	AKHandle = 0x81010002
	// MinPINLen and MaxPINLen bound a key's PIN. The TPM caps an authValue
	// at the size of the nameAlg digest (32 bytes for SHA-256).
	MinPINLen = 6
	MaxPINLen = 32
)

// EnrollOptions say which key to make.
type EnrollOptions struct {
	// Handle is the persistent handle for the key (0x81000000–0x813FFFFF,
	// not AKHandle). It must be free.
	Handle uint32
	// PIN is the holder's PIN (MinPINLen–MaxPINLen bytes, no NUL). Enroll
	// does not keep it.
	PIN []byte
	// PCRs, when not empty, bind the key to the current values of these
	// SHA-256 PCRs: the key signs only while they are unchanged.
	PCRs []int
	// Holder names the person who holds the key.
	Holder string
}

// Enrollment is a new key.
type Enrollment struct {
	URI         hsm.URI
	Public      crypto.PublicKey
	Holder      string
	PCRs        []int
	Attestation *hsm.Attestation
}

// Enroll creates an Airlock signing key in the TPM dev (a device name as
// OpenDevice takes it, which the key URI will carry): an ECDSA P-256 key
// under the owner hierarchy's storage key, persistent at opts.Handle,
// usable only through PolicyAuthValue with the PIN (after PolicyPCR when
// PCRs are given). It then certifies the key with the attestation key at
// AKHandle, creating that key if it is missing, and stores the holder and
// certification in an NV index beside the key.
//
// The owner and endorsement hierarchies must have empty authorization (the
// state of a TPM that was cleared and not taken ownership of).
func Enroll(ctx context.Context, dev string, opts EnrollOptions) (*Enrollment, error) {
	if err := checkKeyHandle(opts.Handle); err != nil {
		return nil, err
	}
	if err := checkPIN(opts.PIN); err != nil {
		return nil, err
	}
	if err := checkHolder(opts.Holder); err != nil {
		return nil, err
	}
	pcrs := slices.Clone(opts.PCRs)
	slices.Sort(pcrs)
	if _, err := keypolicy.PCRSelection(pcrs); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := OpenDevice(dev)
	if err != nil {
		return nil, err
	}
	defer t.Close()

	if _, err := readPublic(t, opts.Handle); err == nil {
		return nil, fmt.Errorf("handle 0x%08x is already in use (airlock key list shows by what): choose another with --handle, or have the tpm owner evict that key first (tpm2_evictcontrol)", opts.Handle)
	} else if !errors.Is(err, hsm.ErrNotFound) {
		return nil, err
	}

	var pcrDigest []byte
	if len(pcrs) > 0 {
		values, err := readPCRs(t, pcrs)
		if err != nil {
			return nil, err
		}
		pcrDigest = keypolicy.PCRDigest(values)
	}
	policy, err := keypolicy.PolicyDigest(pcrs, pcrDigest)
	if err != nil {
		return nil, err
	}
	extra, err := keypolicy.ExtraData(pcrs, pcrDigest)
	if err != nil {
		return nil, err
	}

	srk, err := createSRK(t)
	if err != nil {
		return nil, err
	}
	defer flush(t, srk.handle)

	// The PIN travels to the TPM encrypted, in a session salted to the SRK.
	created, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{
			Handle: srk.handle,
			Name:   srk.name,
			Auth: tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Auth(nil),
				tpm2.Salted(srk.handle, srk.public),
				tpm2.AESEncryption(128, tpm2.EncryptIn)),
		},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: opts.PIN},
		}},
		InPublic: tpm2.New2B(keypolicy.Template(policy)),
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	loaded, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srk.handle, Name: srk.name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    created.OutPrivate,
		InPublic:     created.OutPublic,
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	_, err = tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     tpm2.NamedHandle{Handle: loaded.ObjectHandle, Name: loaded.Name},
		PersistentHandle: tpm2.TPMHandle(opts.Handle),
	}.Execute(t)
	flush(t, loaded.ObjectHandle)
	if err != nil {
		return nil, fmt.Errorf("make signing key persistent at 0x%08x: %w", opts.Handle, err)
	}
	// From here on a failure evicts the half-enrolled key.
	ok := false
	defer func() {
		if !ok {
			evict(t, opts.Handle, loaded.Name)
		}
	}()

	ak, err := ensureAK(t)
	if err != nil {
		return nil, err
	}
	cert, err := tpm2.Certify{
		ObjectHandle: tpm2.AuthHandle{
			Handle: tpm2.TPMHandle(opts.Handle),
			Name:   loaded.Name,
			Auth:   tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Auth(opts.PIN), tpm2.Salted(srk.handle, srk.public)),
		},
		SignHandle:     tpm2.AuthHandle{Handle: AKHandle, Name: ak.name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: extra},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("certify signing key with the attestation key: %w", mapAuthError(err, -1))
	}
	keyPub, err := created.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("signing key public area: %w", err)
	}
	pub, err := tpm2.Pub(*keyPub)
	if err != nil {
		return nil, fmt.Errorf("signing key public key: %w", err)
	}
	att := &hsm.Attestation{
		Format:         hsm.AttestationTPM2Certify,
		Statement:      bytes.Clone(cert.CertifyInfo.Bytes()),
		Signature:      tpm2.Marshal(cert.Signature),
		AttestationKey: tpm2.Marshal(ak.public),
		KeyPublic:      bytes.Clone(created.OutPublic.Bytes()),
	}
	if err := writeRecord(t, opts.Handle, &record{Holder: opts.Holder, Attestation: *att}); err != nil {
		return nil, err
	}
	ok = true
	return &Enrollment{
		URI:         hsm.URI{Kind: hsm.KindTPM, Handle: opts.Handle, Device: dev},
		Public:      pub,
		Holder:      opts.Holder,
		PCRs:        pcrs,
		Attestation: att,
	}, nil
}

// Delete evicts the Airlock key at handle and removes its record. It
// refuses handles that do not hold an Airlock key.
func Delete(ctx context.Context, dev string, handle uint32) error {
	if err := checkKeyHandle(handle); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := OpenDevice(dev)
	if err != nil {
		return err
	}
	defer t.Close()
	k, err := readKey(t, handle)
	if err != nil {
		return err
	}
	if _, err := (tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     tpm2.NamedHandle{Handle: tpm2.TPMHandle(handle), Name: k.name},
		PersistentHandle: tpm2.TPMHandle(handle),
	}).Execute(t); err != nil {
		return fmt.Errorf("evict key 0x%08x: %w", handle, err)
	}
	return deleteRecord(t, handle)
}

// AttestationKey returns the public key of the attestation key at
// AKHandle, creating and persisting it if it is missing. An appliance pins
// it when provisioned and passes it to attest.Options.TPMAttestationKeys.
func AttestationKey(ctx context.Context, dev string) (crypto.PublicKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := OpenDevice(dev)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	ak, err := ensureAK(t)
	if err != nil {
		return nil, err
	}
	return tpm2.Pub(ak.public)
}

func checkPIN(pin []byte) error {
	if len(pin) < MinPINLen || len(pin) > MaxPINLen {
		return fmt.Errorf("pin is %d bytes, want %d to %d", len(pin), MinPINLen, MaxPINLen)
	}
	if bytes.IndexByte(pin, 0) >= 0 {
		return errors.New("pin contains a nul byte")
	}
	return nil
}

type object struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	public tpm2.TPMTPublic
}

// createSRK creates the owner hierarchy's standard ECC storage key as a
// transient object; the caller flushes it.
func createSRK(t transport.TPM) (*object, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("create storage key: %w", err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		flush(t, rsp.ObjectHandle)
		return nil, fmt.Errorf("storage key public area: %w", err)
	}
	return &object{handle: rsp.ObjectHandle, name: rsp.Name, public: *pub}, nil
}

// ensureAK returns the attestation key at AKHandle, creating it if absent.
func ensureAK(t transport.TPM) (*object, error) {
	ak, err := readPublic(t, AKHandle)
	if err == nil {
		want := keypolicy.AKTemplate()
		got := ak.public
		if got.Type != want.Type || got.NameAlg != want.NameAlg || got.ObjectAttributes != want.ObjectAttributes {
			return nil, fmt.Errorf("handle 0x%08x holds a key that is not an airlock attestation key; evict it or provision another tpm", AKHandle)
		}
		return ak, nil
	}
	if !errors.Is(err, hsm.ErrNotFound) {
		return nil, err
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(keypolicy.AKTemplate()),
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("create attestation key: %w", err)
	}
	defer flush(t, rsp.ObjectHandle)
	if _, err := (tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name},
		PersistentHandle: AKHandle,
	}).Execute(t); err != nil {
		return nil, fmt.Errorf("make attestation key persistent at 0x%08x: %w", AKHandle, err)
	}
	return readPublic(t, AKHandle)
}

// readPublic reads a persistent object's public area; hsm.ErrNotFound when
// the handle is empty.
func readPublic(t transport.TPM, handle uint32) (*object, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(handle)}.Execute(t)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCHandle) {
			return nil, fmt.Errorf("handle 0x%08x: %w", handle, hsm.ErrNotFound)
		}
		return nil, fmt.Errorf("read public area of 0x%08x: %w", handle, err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("public area of 0x%08x: %w", handle, err)
	}
	return &object{handle: tpm2.TPMHandle(handle), name: rsp.Name, public: *pub}, nil
}

// readPCRs reads the SHA-256 values of pcrs, one at a time (a TPM returns at
// most eight per call).
func readPCRs(t transport.TPM, pcrs []int) ([][]byte, error) {
	var values [][]byte
	for _, p := range pcrs {
		sel, err := keypolicy.PCRSelection([]int{p})
		if err != nil {
			return nil, err
		}
		rsp, err := tpm2.PCRRead{PCRSelectionIn: sel}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("read pcr %d: %w", p, err)
		}
		if len(rsp.PCRValues.Digests) != 1 || len(rsp.PCRValues.Digests[0].Buffer) != 32 {
			return nil, fmt.Errorf("read pcr %d: the tpm has no sha-256 value for it", p)
		}
		values = append(values, rsp.PCRValues.Digests[0].Buffer)
	}
	return values, nil
}

func flush(t transport.TPM, h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(t)
}

func evict(t transport.TPM, handle uint32, name tpm2.TPM2BName) {
	_, _ = tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     tpm2.NamedHandle{Handle: tpm2.TPMHandle(handle), Name: name},
		PersistentHandle: tpm2.TPMHandle(handle),
	}.Execute(t)
}
