// Package hsm is Airlock's one signing boundary.
//
// Every key Airlock signs with — a YubiKey PIV slot, a key resident in the
// appliance's TPM, or a software key used in development — leaves this
// package as a Signer: a crypto.Signer plus the facts a ceremony needs about
// it (its URI, kind, holder and hardware attestation). Private key bytes never
// cross this boundary; Public() is all a caller learns.
//
// Hardware back ends register an Opener for their Kind (hsm/piv, hsm/tpm), the
// way database/sql drivers register, so that binaries choose which back ends
// they are built with and this package needs neither cgo nor PC/SC.
//
// Humans are reached only through a Prompter the caller supplies: PINs are
// requested lazily, retries left are shown before each try, and no back end
// ever guesses or retries a PIN on its own.
package hsm

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Kind names where a key lives.
type Kind string

const (
	// KindYubiKey is an ECDSA key in a YubiKey PIV slot (PIN and touch always).
	KindYubiKey Kind = "yubikey"
	// KindTPM is an ECDSA key resident in a TPM 2.0, bound to the holder's PIN.
	KindTPM Kind = "tpm"
	// KindFile is a software key in a file: for development and tests only.
	KindFile Kind = "file"
)

// Hardware reports whether keys of this kind live in hardware.
func (k Kind) Hardware() bool { return k == KindYubiKey || k == KindTPM }

// Signer is a key behind the signing boundary.
//
// Sign follows crypto.Signer: it takes a digest and crypto.SHA256 for ECDSA
// keys, or the whole message and crypto.Hash(0) for Ed25519 keys. Hardware
// signers may block while they wait for a PIN or a touch.
type Signer interface {
	crypto.Signer
	// URI names the key; it carries no secret.
	URI() URI
	// Kind says where the key lives.
	Kind() Kind
	// Holder is the person who holds the key, as enrolled ("" if unknown).
	Holder() string
	// Attestation is the hardware's statement about the key, or nil.
	Attestation() *Attestation
}

// Closer is implemented by signers that hold a device open.
type Closer interface{ Close() error }

// Attestation is a device's statement that a key was generated inside it and
// with which policy. It travels with the public key into TUF metadata as
// x-airlock-attestation.
type Attestation struct {
	// Format is AttestationYubiKeyPIV or AttestationTPM2Certify.
	Format string `json:"format"`
	// Certificates are DER certificates, leaf first. For a YubiKey: the slot
	// attestation certificate, then the card's attestation certificate. For a
	// TPM: the attestation key's certificate chain, if it has one.
	Certificates [][]byte `json:"certificates,omitempty"`
	// Statement is the signed statement (TPM: a marshalled TPMS_ATTEST).
	Statement []byte `json:"statement,omitempty"`
	// Signature is the attestation key's signature over Statement.
	Signature []byte `json:"signature,omitempty"`
	// AttestationKey is the public area of the key that signed Statement
	// (TPM: a marshalled TPMT_PUBLIC).
	AttestationKey []byte `json:"attestation_key,omitempty"`
	// KeyPublic is the attested key's public area where the format needs it
	// to bind the statement to the key (TPM: a marshalled TPMT_PUBLIC).
	KeyPublic []byte `json:"key_public,omitempty"`
}

// Attestation formats.
const (
	AttestationYubiKeyPIV  = "yubikey-piv"
	AttestationTPM2Certify = "tpm2-certify"
)

// PINRequest describes a PIN the device needs now.
type PINRequest struct {
	URI    URI
	Holder string
	// Retries is how many wrong PINs the device still accepts before it
	// blocks the key, or -1 when the device does not say.
	Retries int
}

// Prompter is how a back end reaches the person holding the key. The
// appliance's UI implements it; tests script it.
type Prompter interface {
	// PIN asks for the key's PIN. Returning an error cancels the operation.
	PIN(ctx context.Context, req PINRequest) ([]byte, error)
	// Touch is called when the device starts waiting for a touch; the
	// returned function is called when it stops waiting (touched or failed).
	Touch(ctx context.Context, uri URI) (done func())
}

// TouchRequest describes a touch the device waits for.
type TouchRequest struct {
	URI URI
	// Holder is the person whose key waits, "" if unknown.
	Holder string
}

// HolderTouchPrompter is a Prompter whose touch prompt can name the holder
// as well as the key, so that a holder touches only for their own key.
type HolderTouchPrompter interface {
	Prompter
	TouchFor(ctx context.Context, req TouchRequest) (done func())
}

// AskTouch raises p's touch prompt for req, naming the holder when p can.
func AskTouch(ctx context.Context, p Prompter, req TouchRequest) (done func()) {
	if hp, ok := p.(HolderTouchPrompter); ok {
		return hp.TouchFor(ctx, req)
	}
	return p.Touch(ctx, req.URI)
}

// Errors callers branch on.
var (
	// ErrNotFound means no device or key answers to the URI.
	ErrNotFound = errors.New("key not found")
	// ErrUnsupported means this binary was built without that back end.
	ErrUnsupported = errors.New("key kind not supported by this build")
	// ErrCancelled means the person declined a PIN or touch prompt.
	ErrCancelled = errors.New("cancelled by the key holder")
	// ErrPINBlocked means the PIN has no retries left.
	ErrPINBlocked = errors.New("pin blocked")
)

// WrongPINError reports a rejected PIN and how many tries remain.
type WrongPINError struct {
	Retries int // -1 when unknown
}

func (e *WrongPINError) Error() string {
	switch {
	case e.Retries == 0:
		return "wrong pin: no retries left, the pin is now blocked; unblock it with the PUK or re-enrol the key"
	case e.Retries > 0:
		return fmt.Sprintf("wrong pin: %d retries left before the key is blocked", e.Retries)
	default:
		return "wrong pin"
	}
}

// Opener opens the key a URI names.
type Opener func(ctx context.Context, uri URI, p Prompter) (Signer, error)

var (
	openersMu sync.RWMutex
	openers   = map[Kind]Opener{KindFile: openFile}
)

// Register makes a back end available to Open. It panics when called twice
// for one kind, like database/sql.Register: that is a wiring bug.
func Register(kind Kind, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	if _, dup := openers[kind]; dup && kind != KindFile {
		panic("hsm: Register called twice for " + string(kind))
	}
	openers[kind] = open
}

// Kinds lists the kinds this binary can open.
func Kinds() []Kind {
	openersMu.RLock()
	defer openersMu.RUnlock()
	var ks []Kind
	for k := range openers {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

// Open opens the key a URI names through its registered back end.
func Open(ctx context.Context, uri URI, p Prompter) (Signer, error) {
	openersMu.RLock()
	open, ok := openers[uri.Kind]
	openersMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", uri, ErrUnsupported)
	}
	return open(ctx, uri, p)
}
