// Package tpm is Airlock's TPM 2.0 back end: ECDSA P-256 signing keys
// resident in the appliance's TPM, each bound to its holder's PIN and,
// optionally, to the booted image's PCRs.
//
// Importing the package registers it with hsm.Open for tpm: URIs
// (tpm:handle=0x81000010[;device=...]); see OpenDevice for device names.
//
// Invariants:
//   - a key's private part never leaves the TPM (fixedTPM, fixedParent,
//     sensitiveDataOrigin), and the key signs only in a policy session
//     that proved the PIN (PolicyAuthValue; userWithAuth is clear), after
//     PolicyPCR when the key is PCR-bound;
//   - PINs are asked for through the hsm.Prompter at every signature, used
//     for one command, never stored and never retried here; they reach the
//     TPM only as HMAC keys of sessions salted to the storage key, or
//     encrypted (at enrolment);
//   - every key carries a TPM2_Certify statement by the attestation key at
//     AKHandle, stored in an NV index beside it, which hsm/attest verifies
//     offline;
//   - the TPM's dictionary-attack protection counts wrong PINs; it is shared
//     by every key in the TPM.
//
// A Signer opens its device for each signature and closes it after, so it
// holds no TPM resources between signatures; it is safe for concurrent use
// (signatures are serialised per signer).
package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/tpm/keypolicy"
)

func init() { hsm.Register(hsm.KindTPM, open) }

// Signer is an Airlock key in a TPM.
type Signer struct {
	uri    hsm.URI
	holder string
	pub    *ecdsa.PublicKey
	name   tpm2.TPM2BName
	pcrs   []int
	att    hsm.Attestation
	prompt hsm.Prompter

	mu     sync.Mutex // serialises signatures; guards closed
	closed bool
}

var (
	_ hsm.Signer    = (*Signer)(nil)
	_ hsm.Closer    = (*Signer)(nil)
	_ crypto.Signer = (*Signer)(nil)
)

func open(ctx context.Context, uri hsm.URI, p hsm.Prompter) (hsm.Signer, error) {
	return Open(ctx, uri, p)
}

// Open opens the Airlock key uri names. It reads the key's public area and
// record, and needs no PIN; p is asked for the PIN at each signature.
func Open(ctx context.Context, uri hsm.URI, p hsm.Prompter) (*Signer, error) {
	if uri.Kind != hsm.KindTPM {
		return nil, fmt.Errorf("key uri %s is not a tpm key", uri)
	}
	if p == nil {
		return nil, errors.New("tpm key: no prompter to ask the holder for the pin")
	}
	if err := checkKeyHandle(uri.Handle); err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := OpenDevice(uri.Device)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	k, err := readKey(t, uri.Handle)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	return &Signer{
		uri:    uri,
		holder: k.rec.Holder,
		pub:    k.pub,
		name:   k.name,
		pcrs:   k.pcrs,
		att:    k.rec.Attestation,
		prompt: p,
	}, nil
}

// airlockKey is a persistent key with its Airlock record, checked to agree.
type airlockKey struct {
	name tpm2.TPM2BName
	pub  *ecdsa.PublicKey
	pcrs []int
	rec  *record
}

// readKey reads the key at handle and its record, and checks that the
// record describes this key and that the key has an Airlock key's shape.
func readKey(t transport.TPM, handle uint32) (*airlockKey, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(handle)}.Execute(t)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCHandle) {
			return nil, fmt.Errorf("no key at handle 0x%08x: %w", handle, hsm.ErrNotFound)
		}
		return nil, fmt.Errorf("read key 0x%08x: %w", handle, err)
	}
	rec, ok, err := readRecord(t, handle)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("the key at 0x%08x was not enrolled by airlock (no key record at nv index 0x%08x): %w", handle, uint32(nvIndexFor(handle)), hsm.ErrNotFound)
	}
	if string(rsp.OutPublic.Bytes()) != string(rec.Attestation.KeyPublic) {
		return nil, fmt.Errorf("the key record at nv index 0x%08x describes another key than the one at 0x%08x; re-enrol the key", uint32(nvIndexFor(handle)), handle)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("key 0x%08x public area: %w", handle, err)
	}
	if pub.Type != tpm2.TPMAlgECC || pub.ObjectAttributes.UserWithAuth || !pub.ObjectAttributes.SignEncrypt {
		return nil, fmt.Errorf("key 0x%08x is not an airlock signing key (want a policy-only ecc signing key)", handle)
	}
	pk, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, fmt.Errorf("key 0x%08x public key: %w", handle, err)
	}
	ecPub, ok := pk.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("key 0x%08x is not an ecdsa key", handle)
	}
	stmt, err := tpm2.Unmarshal[tpm2.TPMSAttest](rec.Attestation.Statement)
	if err != nil {
		return nil, fmt.Errorf("key record certification: %w", err)
	}
	pcrs, pcrDigest, err := keypolicy.ParseExtraData(stmt.ExtraData.Buffer)
	if err != nil {
		return nil, err
	}
	policy, err := keypolicy.PolicyDigest(pcrs, pcrDigest)
	if err != nil {
		return nil, err
	}
	if string(policy) != string(pub.AuthPolicy.Buffer) {
		return nil, fmt.Errorf("key 0x%08x has a policy airlock did not make; re-enrol the key", handle)
	}
	return &airlockKey{name: rsp.Name, pub: ecPub, pcrs: pcrs, rec: rec}, nil
}

// Public implements crypto.Signer.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// URI implements hsm.Signer.
func (s *Signer) URI() hsm.URI { return s.uri }

// Kind implements hsm.Signer.
func (s *Signer) Kind() hsm.Kind { return hsm.KindTPM }

// Holder implements hsm.Signer.
func (s *Signer) Holder() string { return s.holder }

// PCRs lists the PCRs the key is bound to.
func (s *Signer) PCRs() []int { return append([]int(nil), s.pcrs...) }

// Attestation implements hsm.Signer: the key's TPM2_Certify statement.
func (s *Signer) Attestation() *hsm.Attestation {
	a := s.att
	return &a
}

// Close implements hsm.Closer. The signer holds no device between
// signatures; Close makes later signatures fail.
func (s *Signer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Sign implements crypto.Signer: digest is a SHA-256 digest and opts must say
// crypto.SHA256. It asks the holder for the PIN (showing the retries left),
// signs in a policy session, and returns an ASN.1 DER ECDSA signature.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), digest, opts)
}

// SignContext is Sign with a context for the PIN prompt.
func (s *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, fmt.Errorf("%s: sign: no hash given, want %v", s.uri, crypto.SHA256)
	}
	if h := opts.HashFunc(); h != crypto.SHA256 {
		return nil, fmt.Errorf("%s: sign: hash is %v, want %v", s.uri, h, crypto.SHA256)
	}
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("%s: sign: digest is %d bytes, want %d", s.uri, len(digest), sha256.Size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%s: sign: signer is closed", s.uri)
	}
	t, err := OpenDevice(s.uri.Device)
	if err != nil {
		return nil, err
	}
	defer t.Close()

	retries := retriesLeft(t)
	if retries == 0 {
		return nil, fmt.Errorf("%s: %w", s.uri, blockedError(t))
	}
	pin, err := s.prompt.PIN(ctx, hsm.PINRequest{URI: s.uri, Holder: s.holder, Retries: retries})
	if err != nil {
		return nil, fmt.Errorf("%s: pin prompt: %w", s.uri, err)
	}
	defer clear(pin)
	if err := checkPIN(pin); err != nil {
		return nil, fmt.Errorf("%s: %w; no try was used", s.uri, err)
	}
	sig, err := s.signTPM(t, pin, digest)
	if err != nil {
		return nil, fmt.Errorf("%s: sign: %w", s.uri, mapAuthError(err, retriesLeft(t)))
	}
	der, err := ecdsaDER(sig)
	if err != nil {
		return nil, fmt.Errorf("%s: sign: %w", s.uri, err)
	}
	if !ecdsa.VerifyASN1(s.pub, digest, der) {
		return nil, fmt.Errorf("%s: sign: the tpm returned a signature that does not verify under the key; the device is faulty or not the one enrolled", s.uri)
	}
	return der, nil
}

// signTPM runs the key's policy in a session salted to a fresh storage
// key and signs digest.
func (s *Signer) signTPM(t transport.TPM, pin, digest []byte) (*tpm2.TPMSSignatureECC, error) {
	srk, err := createSRK(t)
	if err != nil {
		return nil, err
	}
	defer flush(t, srk.handle)
	sess, closeSess, err := tpm2.PolicySession(t, tpm2.TPMAlgSHA256, 16,
		tpm2.Auth(pin), tpm2.Salted(srk.handle, srk.public))
	if err != nil {
		return nil, fmt.Errorf("start policy session: %w", err)
	}
	defer closeSess()
	if len(s.pcrs) > 0 {
		sel, err := keypolicy.PCRSelection(s.pcrs)
		if err != nil {
			return nil, err
		}
		if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: sel}).Execute(t); err != nil {
			return nil, fmt.Errorf("policy pcr: %w", err)
		}
	}
	if _, err := (tpm2.PolicyAuthValue{PolicySession: sess.Handle()}).Execute(t); err != nil {
		return nil, fmt.Errorf("policy auth value: %w", err)
	}
	rsp, err := tpm2.Sign{
		KeyHandle:  tpm2.AuthHandle{Handle: tpm2.TPMHandle(s.uri.Handle), Name: s.name, Auth: sess},
		Digest:     tpm2.TPM2BDigest{Buffer: digest},
		InScheme:   tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(t)
	if err != nil {
		return nil, err
	}
	if rsp.Signature.SigAlg != tpm2.TPMAlgECDSA {
		return nil, fmt.Errorf("tpm returned a signature of algorithm 0x%04x, want ecdsa", uint16(rsp.Signature.SigAlg))
	}
	return rsp.Signature.Signature.ECDSA()
}

func ecdsaDER(sig *tpm2.TPMSSignatureECC) ([]byte, error) {
	r := new(big.Int).SetBytes(sig.SignatureR.Buffer)
	sv := new(big.Int).SetBytes(sig.SignatureS.Buffer)
	if r.Sign() == 0 || sv.Sign() == 0 {
		return nil, errors.New("tpm returned an empty ecdsa signature")
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, sv})
}

// daState reads the dictionary-attack counter and its maximum.
func daState(t transport.TPM) (counter, max uint32, ok bool) {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTLockoutCounter),
		PropertyCount: 2,
	}.Execute(t)
	if err != nil {
		return 0, 0, false
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return 0, 0, false
	}
	var gotC, gotM bool
	for _, p := range props.TPMProperty {
		switch p.Property {
		case tpm2.TPMPTLockoutCounter:
			counter, gotC = p.Value, true
		case tpm2.TPMPTMaxAuthFail:
			max, gotM = p.Value, true
		}
	}
	return counter, max, gotC && gotM
}

// retriesLeft is how many wrong PINs the TPM still accepts before lockout,
// or -1 when it does not say.
func retriesLeft(t transport.TPM) int {
	c, m, ok := daState(t)
	if !ok || m == 0 {
		return -1
	}
	if c >= m {
		return 0
	}
	return int(m - c)
}

// blockedError says the TPM is in dictionary-attack lockout and what to do.
func blockedError(t transport.TPM) error {
	how := "wait for the tpm's lockout recovery interval"
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTLockoutInterval),
		PropertyCount: 1,
	}.Execute(t)
	if err == nil {
		if props, err := rsp.CapabilityData.Data.TPMProperties(); err == nil && len(props.TPMProperty) == 1 && props.TPMProperty[0].Property == tpm2.TPMPTLockoutInterval {
			if s := props.TPMProperty[0].Value; s > 0 {
				how = fmt.Sprintf("wait %d seconds (the tpm's lockout recovery interval) for one more try", s)
			}
		}
	}
	return fmt.Errorf("%w: the tpm is locked out after too many wrong pins; %s, or have the tpm owner reset the lockout (tpm2_dictionarylockout --clear-lockout)", hsm.ErrPINBlocked, how)
}

// mapAuthError turns the TPM's authorisation failures into the errors
// callers act on; the TPM error stays underneath (errors.Is).
func mapAuthError(err error, retries int) error {
	switch {
	case errors.Is(err, tpm2.TPMRCAuthFail), errors.Is(err, tpm2.TPMRCBadAuth):
		if retries == 0 {
			return &lockedOutError{wrong: &hsm.WrongPINError{Retries: 0}, tpm: err}
		}
		return fmt.Errorf("%w (tpm: %w)", &hsm.WrongPINError{Retries: retries}, err)
	case errors.Is(err, tpm2.TPMRCLockout):
		return fmt.Errorf("%w: the tpm is locked out after too many wrong pins; %s (tpm: %w)", hsm.ErrPINBlocked, lockoutAdvice, err)
	case errors.Is(err, tpm2.TPMRCPolicyFail):
		return fmt.Errorf("the machine's boot state changed: this key is bound to pcrs that no longer have their enrolled values; boot the approved image, or re-enrol the key (tpm: %w)", err)
	default:
		return err
	}
}

const lockoutAdvice = "wait for the tpm's lockout recovery interval, or have the tpm owner reset the lockout (tpm2_dictionarylockout --clear-lockout)"

// lockedOutError is a wrong PIN that used the last try: it is both an
// *hsm.WrongPINError (Retries 0) and hsm.ErrPINBlocked, over the TPM's error.
type lockedOutError struct {
	wrong *hsm.WrongPINError
	tpm   error
}

func (e *lockedOutError) Error() string {
	return "wrong pin, and that was the last try: " + hsm.ErrPINBlocked.Error() + ", the tpm is locked out; " + lockoutAdvice + " (tpm: " + e.tpm.Error() + ")"
}

func (e *lockedOutError) Unwrap() []error { return []error{e.wrong, hsm.ErrPINBlocked, e.tpm} }
