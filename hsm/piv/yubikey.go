//go:build cgo && linux

package piv

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"
	"sync"
	"time"

	pivgo "github.com/go-piv/piv-go/v2/piv"

	"airlock.dev/airlock/hsm"
)

func init() { hsm.Register(hsm.KindYubiKey, open) }

const (
	mgmtKeyLen   = 24 // AES-192 from firmware 5.4, 3DES before; piv-go's metadata stores 24 bytes
	certValidity = 20 * 365 * 24 * time.Hour
)

// List returns the PIV cards present, ordered by serial.
func List(ctx context.Context) ([]Card, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cards, _, err := probe()
	if err != nil {
		return nil, err
	}
	sort.Slice(cards, func(i, j int) bool { return cards[i].Serial < cards[j].Serial })
	return cards, nil
}

// openCard finds the card with this serial and opens it exclusively.
func openCard(serial uint32) (*pivgo.YubiKey, Card, error) {
	card, err := findCard(serial)
	if err != nil {
		return nil, Card{}, err
	}
	yk, err := pivgo.Open(card.Reader)
	if err != nil {
		return nil, Card{}, fmt.Errorf("yubikey %d in %q: %w", serial, card.Reader, classify(err))
	}
	got, err := yk.Serial()
	if err != nil {
		yk.Close()
		return nil, Card{}, fmt.Errorf("yubikey %d in %q: reading the serial: %w", serial, card.Reader, classify(err))
	}
	if got != serial {
		yk.Close()
		return nil, Card{}, fmt.Errorf("yubikey %d: the card in %q changed while it was opened; try again: %w", serial, card.Reader, hsm.ErrNotFound)
	}
	return yk, card, nil
}

// Signer is a key in a YubiKey PIV slot. It implements hsm.Signer and
// hsm.Closer.
type Signer struct {
	uri      hsm.URI
	slot     pivgo.Slot
	prompter hsm.Prompter
	pub      *ecdsa.PublicKey
	holder   string
	att      *hsm.Attestation
	pinPol   pivgo.PINPolicy
	touchPol pivgo.TouchPolicy
	pinTotal int // the PIN counter's maximum, 0 when unknown

	mu sync.Mutex
	yk *pivgo.YubiKey // nil once the card went away; reopened by the next Sign
}

var (
	_ hsm.Signer = (*Signer)(nil)
	_ hsm.Closer = (*Signer)(nil)
)

func open(ctx context.Context, uri hsm.URI, p hsm.Prompter) (hsm.Signer, error) {
	if uri.Kind != hsm.KindYubiKey {
		return nil, fmt.Errorf("%s: not a yubikey uri", uri)
	}
	if p == nil {
		return nil, fmt.Errorf("%s: a prompter is needed to ask for the pin", uri)
	}
	slotStr, err := slotName(uri.Slot)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	uri.Slot = slotStr
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	yk, card, err := openCard(uri.Serial)
	if err != nil {
		return nil, err
	}
	s, err := newSigner(yk, uri, p)
	if err != nil {
		yk.Close()
		return nil, err
	}
	s.pinTotal = card.PINRetriesTotal
	return s, nil
}

func pivSlot(name string) pivgo.Slot {
	switch name {
	case "9a":
		return pivgo.SlotAuthentication
	case "9d":
		return pivgo.SlotKeyManagement
	case "9e":
		return pivgo.SlotCardAuthentication
	default:
		return pivgo.SlotSignature
	}
}

// newSigner reads the slot's public key, policies, holder and attestation.
func newSigner(yk *pivgo.YubiKey, uri hsm.URI, p hsm.Prompter) (*Signer, error) {
	slot := pivSlot(uri.Slot)
	slotAtt, err := yk.Attest(slot)
	if errors.Is(err, pivgo.ErrNotFound) {
		return nil, fmt.Errorf("%s: the slot holds no key generated on the card; enrol it first: %w", uri, hsm.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading the slot attestation: %w", uri, classify(err))
	}
	devAtt, err := yk.AttestationCertificate()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the card's attestation certificate: %w", uri, classify(err))
	}
	pub, ok := slotAtt.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: the slot holds a %T key; airlock uses ecdsa p-256", uri, slotAtt.PublicKey)
	}
	pinPol, touchPol, err := slotPolicies(yk, slot, slotAtt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	var holder string
	cert, err := yk.Certificate(slot)
	switch {
	case err == nil && cert.Subject.CommonName != uri.String():
		holder = cert.Subject.CommonName
	case err != nil && isTransport(err):
		return nil, fmt.Errorf("%s: reading the slot certificate: %w", uri, classify(err))
	}
	return &Signer{
		uri: uri, slot: slot, prompter: p, pub: pub, holder: holder,
		att: &hsm.Attestation{
			Format:       hsm.AttestationYubiKeyPIV,
			Certificates: [][]byte{slotAtt.Raw, devAtt.Raw},
		},
		pinPol: pinPol, touchPol: touchPol, yk: yk,
	}, nil
}

var oidYubicoPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}

// slotPolicies reads the key's PIN and touch policy from the card's
// metadata (firmware 5.3+) or from its attestation.
func slotPolicies(yk *pivgo.YubiKey, slot pivgo.Slot, slotAtt *x509.Certificate) (pivgo.PINPolicy, pivgo.TouchPolicy, error) {
	if v := yk.Version(); v.Major > 5 || (v.Major == 5 && v.Minor >= 3) {
		info, err := yk.KeyInfo(slot)
		if err != nil {
			return 0, 0, fmt.Errorf("reading the slot metadata: %w", classify(err))
		}
		return info.PINPolicy, info.TouchPolicy, nil
	}
	for _, ext := range slotAtt.Extensions {
		if ext.Id.Equal(oidYubicoPolicy) && len(ext.Value) == 2 {
			pins := map[byte]pivgo.PINPolicy{1: pivgo.PINPolicyNever, 2: pivgo.PINPolicyOnce, 3: pivgo.PINPolicyAlways}
			touches := map[byte]pivgo.TouchPolicy{1: pivgo.TouchPolicyNever, 2: pivgo.TouchPolicyAlways, 3: pivgo.TouchPolicyCached}
			pp, ok1 := pins[ext.Value[0]]
			tp, ok2 := touches[ext.Value[1]]
			if ok1 && ok2 {
				return pp, tp, nil
			}
		}
	}
	return 0, 0, errors.New("the slot attestation does not state the key's pin and touch policy")
}

// Public implements crypto.Signer.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// URI implements hsm.Signer.
func (s *Signer) URI() hsm.URI { return s.uri }

// Kind implements hsm.Signer.
func (s *Signer) Kind() hsm.Kind { return hsm.KindYubiKey }

// Holder is the subject common name of the slot's certificate.
func (s *Signer) Holder() string { return s.holder }

// Attestation implements hsm.Signer.
func (s *Signer) Attestation() *hsm.Attestation {
	return &hsm.Attestation{Format: s.att.Format, Certificates: [][]byte{
		bytes.Clone(s.att.Certificates[0]), bytes.Clone(s.att.Certificates[1]),
	}}
}

// Close releases the card.
func (s *Signer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.yk == nil {
		return nil
	}
	err := s.yk.Close()
	s.yk = nil
	return err
}

// Sign signs a SHA-256 digest. It may ask for the PIN and wait for a touch.
func (s *Signer) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), rnd, digest, opts)
}

// SignContext is Sign with a context handed to the prompter.
func (s *Signer) SignContext(ctx context.Context, _ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, fmt.Errorf("%s: signer opts missing: want crypto.SHA256", s.uri)
	}
	if h := opts.HashFunc(); h != crypto.SHA256 {
		return nil, fmt.Errorf("%s: hash %v: this ecdsa p-256 key signs SHA-256 digests", s.uri, h)
	}
	if len(digest) != crypto.SHA256.Size() {
		return nil, fmt.Errorf("%s: digest is %d bytes, want %d for SHA-256", s.uri, len(digest), crypto.SHA256.Size())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reopen(); err != nil {
		return nil, err
	}
	sig, err := s.sign(ctx, s.yk, s.pinPol, digest)
	if err != nil {
		if errors.Is(err, hsm.ErrNotFound) {
			s.yk.Close()
			s.yk = nil
		}
		return nil, err
	}
	return sig, nil
}

// reopen finds the card again after it was removed, and checks the slot
// still holds the same key.
func (s *Signer) reopen() error {
	if s.yk != nil {
		return nil
	}
	yk, _, err := openCard(s.uri.Serial)
	if err != nil {
		return fmt.Errorf("%s: %w", s.uri, err)
	}
	cert, err := yk.Attest(s.slot)
	if err != nil {
		yk.Close()
		return fmt.Errorf("%s: reading the slot attestation: %w", s.uri, classify(err))
	}
	if !s.pub.Equal(cert.PublicKey) {
		yk.Close()
		return fmt.Errorf("%s: the slot now holds another key than when it was opened; open it again", s.uri)
	}
	s.yk = yk
	return nil
}

// sign runs one signature through piv-go: piv-go asks for the PIN through
// the prompt below, verifies it and sends the sign command; the touch
// prompt is raised as the PIN goes to the card and lowered when the card
// answers.
func (s *Signer) sign(ctx context.Context, yk *pivgo.YubiKey, pinPol pivgo.PINPolicy, digest []byte) ([]byte, error) {
	touch := s.touchPol == pivgo.TouchPolicyAlways || s.touchPol == pivgo.TouchPolicyCached
	var promptErr error
	var touchDone func()
	startTouch := func() {
		if touch && touchDone == nil {
			touchDone = hsm.AskTouch(ctx, s.prompter, hsm.TouchRequest{URI: s.uri, Holder: s.holder})
		}
	}
	prompt := func() (string, error) {
		retries := -1
		switch n, err := yk.Retries(); {
		case err == nil:
			retries = n
		case isTransport(err):
			promptErr = s.notReachable(err)
			return "", promptErr
		case s.pinTotal > 0:
			// The card answered "verified" instead of a count: the PIN
			// was accepted in this session, so the counter is full.
			retries = s.pinTotal
		}
		if retries == 0 {
			promptErr = fmt.Errorf("%s: %w: unblock it with the puk or re-enrol the key", s.uri, hsm.ErrPINBlocked)
			return "", promptErr
		}
		pin, err := s.prompter.PIN(ctx, hsm.PINRequest{URI: s.uri, Holder: s.holder, Retries: retries})
		if err != nil {
			promptErr = fmt.Errorf("%s: pin prompt: %w", s.uri, err)
			return "", promptErr
		}
		defer clear(pin)
		if len(pin) == 0 || len(pin) > maxPINLen {
			promptErr = fmt.Errorf("%s: a piv pin is 1 to %d characters, got %d", s.uri, maxPINLen, len(pin))
			return "", promptErr
		}
		// Check the PIN before the touch prompt goes up, so that a wrong
		// PIN never asks for a touch; piv-go verifies it again right before
		// the sign command, as PIN policy "always" needs.
		if err := yk.VerifyPIN(string(pin)); err != nil {
			if e := pinError(err); e != nil {
				promptErr = fmt.Errorf("%s: %w", s.uri, e)
			} else if isTransport(err) {
				promptErr = s.notReachable(err)
			} else {
				promptErr = fmt.Errorf("%s: verifying the pin: %w", s.uri, err)
			}
			return "", promptErr
		}
		startTouch()
		return string(pin), nil
	}
	key, err := yk.PrivateKey(s.slot, s.pub, pivgo.KeyAuth{PINPrompt: prompt, PINPolicy: pinPol})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.uri, classify(err))
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: piv key %T cannot sign", s.uri, key)
	}
	if pinPol == pivgo.PINPolicyNever {
		startTouch()
	}
	sig, err := signer.Sign(rand.Reader, digest, crypto.SHA256)
	if touchDone != nil {
		touchDone()
	}
	if promptErr != nil {
		return nil, promptErr
	}
	if err != nil {
		return nil, s.mapSignErr(err)
	}
	if !ecdsa.VerifyASN1(s.pub, digest, sig) {
		return nil, fmt.Errorf("%s: the card returned a signature that does not verify under the slot's public key", s.uri)
	}
	return sig, nil
}

func (s *Signer) notReachable(err error) error {
	return fmt.Errorf("%s: the yubikey stopped answering (%v); insert the key and try again: %w", s.uri, err, hsm.ErrNotFound)
}

func (s *Signer) mapSignErr(err error) error {
	if e := pinError(err); e != nil {
		return fmt.Errorf("%s: %w", s.uri, e)
	}
	if isTransport(err) {
		return s.notReachable(err)
	}
	if status(err) == 0x6982 {
		return fmt.Errorf("%s: the yubikey refused to sign: it was not touched in time (or the pin was not accepted); nothing was signed: try again and touch the key when it blinks", s.uri)
	}
	return fmt.Errorf("%s: signing: %w", s.uri, err)
}

// status returns the ISO 7816 status word inside a piv-go error, or 0.
func status(err error) uint16 {
	var st interface{ Status() uint16 }
	if errors.As(err, &st) {
		return st.Status()
	}
	return 0
}

// pinError maps piv-go's verify failures to hsm's PIN errors, or nil.
func pinError(err error) error {
	if status(err) == 0x6983 {
		return fmt.Errorf("%w: unblock it with the puk or re-enrol the key", hsm.ErrPINBlocked)
	}
	var ae pivgo.AuthErr
	if errors.As(err, &ae) {
		return &hsm.WrongPINError{Retries: ae.Retries}
	}
	return nil
}

// isTransport reports whether err is a PC/SC failure (card removed, reader
// gone, pcscd stopped) rather than an answer from the card. piv-go does not
// export its PC/SC error type, so it is recognised by name; an answer
// without a status word (what a reader returns for a card pulled mid
// command) is recognised by piv-go's message for it.
func isTransport(err error) bool {
	var pe pcscError
	if errors.As(err, &pe) {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if fmt.Sprintf("%T", e) == "*piv.scErr" {
			return true
		}
	}
	return err != nil && strings.Contains(err.Error(), "scard response too short")
}

// classify wraps PC/SC failures as hsm.ErrNotFound.
func classify(err error) error {
	if isTransport(err) {
		return fmt.Errorf("the yubikey stopped answering (%v); insert the key and try again: %w", err, hsm.ErrNotFound)
	}
	return err
}

// Enroll generates a new P-256 key in a slot of the YubiKey with this
// serial, with PIN policy "always" and touch policy "always". It replaces a
// factory-default management key with a random one stored PIN-protected on
// the card, writes a self-signed certificate naming the holder into the
// slot (the card signs it: the holder enters the PIN once and touches the
// key), and returns the key's attestation.
func Enroll(ctx context.Context, serial uint32, opts EnrollOptions) (*Enrollment, error) {
	if opts.Prompter == nil {
		return nil, errors.New("enrol: a prompter is needed to ask for the pin")
	}
	if err := checkHolder(opts.Holder); err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	slotStr, err := slotName(opts.Slot)
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	if serial == 0 {
		return nil, errors.New("enrol: serial must be a positive number")
	}
	uri := hsm.URI{Kind: hsm.KindYubiKey, Serial: serial, Slot: slotStr}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	yk, card, err := openCard(serial)
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	// Step 1 (piv-go): check the slot, verify the PIN, settle the
	// management key.
	pin, mgmt, stored, err := prepare(ctx, yk, uri, opts)
	yk.Close()
	if err != nil {
		return nil, fmt.Errorf("enrol %s: %w", uri, err)
	}
	defer clear(mgmt)
	// Step 2 (raw session): tell ykman and other tools the key is stored
	// PIN-protected on the card.
	if stored {
		if err := markManagementKeyProtected(card.Reader, serial, mgmt); err != nil {
			return nil, fmt.Errorf("enrol %s: %w", uri, classify(err))
		}
	}
	// Step 3 (piv-go): generate, certify, read back.
	yk, card, err = openCard(serial)
	if err != nil {
		return nil, fmt.Errorf("enrol %s: %w", uri, err)
	}
	e, err := generate(ctx, yk, uri, opts, pin, mgmt)
	if err != nil {
		yk.Close()
		return nil, fmt.Errorf("enrol %s: %w", uri, err)
	}
	e.Signer.(*Signer).pinTotal = card.PINRetriesTotal
	return e, nil
}

// prepare checks the slot (asking before anything in it is destroyed),
// verifies the PIN and returns it with the management key, and whether that
// key is the one stored PIN-protected on the card.
func prepare(ctx context.Context, yk *pivgo.YubiKey, uri hsm.URI, opts EnrollOptions) (pin string, mgmt []byte, stored bool, err error) {
	slot := pivSlot(uri.Slot)
	occupied, err := slotOccupied(yk, slot)
	if err != nil {
		return "", nil, false, err
	}
	if occupied {
		desc := fmt.Sprintf("slot %s of yubikey %d already holds a key", uri.Slot, uri.Serial)
		if !opts.ReallyOverwriteExistingKey {
			return "", nil, false, fmt.Errorf("%s; enrolling destroys it: pass --really-overwrite-slot to replace it", desc)
		}
		if opts.ConfirmOverwrite == nil {
			return "", nil, false, fmt.Errorf("%s; destroying it needs a typed confirmation of the serial and none can be asked: %w", desc, hsm.ErrCancelled)
		}
		if err := opts.ConfirmOverwrite(desc); err != nil {
			return "", nil, false, err
		}
	}

	retries, err := yk.Retries()
	if err != nil {
		return "", nil, false, fmt.Errorf("reading pin retries: %w", classify(err))
	}
	if retries == 0 {
		return "", nil, false, fmt.Errorf("%w: unblock it with the puk first (airlock key pin unblock)", hsm.ErrPINBlocked)
	}
	pinBytes, err := opts.Prompter.PIN(ctx, hsm.PINRequest{URI: uri, Holder: opts.Holder, Retries: retries})
	if err != nil {
		return "", nil, false, fmt.Errorf("pin prompt: %w", err)
	}
	if len(pinBytes) == 0 || len(pinBytes) > maxPINLen {
		clear(pinBytes)
		return "", nil, false, fmt.Errorf("a piv pin is 1 to %d characters, got %d", maxPINLen, len(pinBytes))
	}
	pin = string(pinBytes)
	clear(pinBytes)
	if err := yk.VerifyPIN(pin); err != nil {
		if e := pinError(err); e != nil {
			return "", nil, false, e
		}
		return "", nil, false, fmt.Errorf("verifying the pin: %w", classify(err))
	}
	mgmt, stored, err = managementKey(yk, pin, opts.ManagementKey)
	if err != nil {
		return "", nil, false, err
	}
	return pin, mgmt, stored, nil
}

// generate makes the key, has it sign its slot certificate and reads the
// slot back as a Signer.
func generate(ctx context.Context, yk *pivgo.YubiKey, uri hsm.URI, opts EnrollOptions, pin string, mgmt []byte) (*Enrollment, error) {
	slot := pivSlot(uri.Slot)
	pub, err := yk.GenerateKey(mgmt, slot, pivgo.Key{
		Algorithm:   pivgo.AlgorithmEC256,
		PINPolicy:   pivgo.PINPolicyAlways,
		TouchPolicy: pivgo.TouchPolicyAlways,
	})
	if err != nil {
		return nil, fmt.Errorf("generating the key: %w", classify(err))
	}
	ecPub, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the card generated a %T key, want ecdsa p-256", pub)
	}

	priv, err := yk.PrivateKey(slot, ecPub, pivgo.KeyAuth{PIN: pin, PINPolicy: pivgo.PINPolicyAlways})
	if err != nil {
		return nil, fmt.Errorf("using the new key: %w", classify(err))
	}
	cert, err := selfSigned(ctx, uri, opts, ecPub, priv.(crypto.Signer))
	if err != nil {
		return nil, err
	}
	if err := yk.SetCertificate(mgmt, slot, cert); err != nil {
		return nil, fmt.Errorf("writing the slot certificate: %w", classify(err))
	}
	s, err := newSigner(yk, uri, opts.Prompter)
	if err != nil {
		return nil, err
	}
	if !s.pub.Equal(ecPub) {
		return nil, errors.New("the slot attestation names another key than the one generated")
	}
	return &Enrollment{URI: uri, Public: ecPub, Attestation: s.Attestation(), Signer: s}, nil
}

func slotOccupied(yk *pivgo.YubiKey, slot pivgo.Slot) (bool, error) {
	if v := yk.Version(); v.Major > 5 || (v.Major == 5 && v.Minor >= 3) {
		_, err := yk.KeyInfo(slot)
		if errors.Is(err, pivgo.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading slot metadata: %w", classify(err))
		}
		return true, nil
	}
	_, err := yk.Attest(slot)
	if errors.Is(err, pivgo.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the slot attestation: %w", classify(err))
	}
	return true, nil
}

// managementKey returns the card's management key, replacing the factory
// default with a random key stored PIN-protected on the card; stored says
// the key is that stored one (and not one the holder gave).
func managementKey(yk *pivgo.YubiKey, pin string, given []byte) (key []byte, stored bool, err error) {
	md, err := yk.Metadata(pin)
	if err != nil {
		return nil, false, fmt.Errorf("reading the pin-protected management key: %w", classify(err))
	}
	var cur []byte
	switch {
	case md.ManagementKey != nil:
		cur = bytes.Clone(*md.ManagementKey)
	case given != nil:
		cur = bytes.Clone(given)
	default:
		cur = bytes.Clone(pivgo.DefaultManagementKey)
	}
	if md.ManagementKey != nil && !bytes.Equal(cur, pivgo.DefaultManagementKey) {
		k, err := resumeManagementKey(yk, cur)
		return k, err == nil, err
	}
	if !bytes.Equal(cur, pivgo.DefaultManagementKey) {
		// A key given by the holder: check it before anything is written.
		if err := yk.SetManagementKey(cur, cur); err != nil {
			if status(err) == 0x6982 {
				return nil, false, errors.New("the management key given with --management-key does not open the card")
			}
			return nil, false, fmt.Errorf("checking the given management key: %w", classify(err))
		}
		return cur, false, nil
	}
	fresh := make([]byte, mgmtKeyLen)
	if _, err := io.ReadFull(rand.Reader, fresh); err != nil {
		return nil, false, fmt.Errorf("making a management key: %w", err)
	}
	// Store first, then switch: if the switch fails the card still opens
	// with the default key, and the next enrolment replaces it again.
	md.ManagementKey = &fresh
	if err := yk.SetMetadata(cur, md); err != nil {
		if status(err) == 0x6982 {
			return nil, false, errors.New(errForeignManagementKey)
		}
		return nil, false, fmt.Errorf("storing the new management key on the card: %w", classify(err))
	}
	if err := yk.SetManagementKey(cur, fresh); err != nil {
		return nil, false, fmt.Errorf("replacing the default management key: %w", classify(err))
	}
	return bytes.Clone(fresh), true, nil
}

const errForeignManagementKey = "the card's management key is neither the factory default nor the one stored on the card (another tool set it): give it with --management-key"

// resumeManagementKey checks that the key stored PIN-protected on the card
// opens it. Enrolment replaces the factory key in two steps — store the new
// key (PUT DATA 5FC109), then switch the card to it (SET MANAGEMENT KEY) —
// and a card pulled out between the two keeps the factory key while the
// stored object names the new one. Both steps are recoverable: the stored
// key is tried first, and when the card answers 6982 the factory key is
// tried and, if it opens the card, the interrupted switch is finished.
func resumeManagementKey(yk *pivgo.YubiKey, stored []byte) ([]byte, error) {
	// Setting a key to itself authenticates with it and changes nothing.
	err := yk.SetManagementKey(stored, stored)
	if err == nil {
		return stored, nil
	}
	if status(err) != 0x6982 {
		return nil, fmt.Errorf("checking the stored management key: %w", classify(err))
	}
	if err := yk.SetManagementKey(pivgo.DefaultManagementKey, stored); err != nil {
		if status(err) == 0x6982 {
			return nil, errors.New(errForeignManagementKey)
		}
		return nil, fmt.Errorf("finishing an interrupted management key change: %w", classify(err))
	}
	return stored, nil
}

// touchSigner raises the touch prompt around each card signature.
type touchSigner struct {
	crypto.Signer
	ctx    context.Context
	p      hsm.Prompter
	uri    hsm.URI
	holder string
}

func (t touchSigner) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	done := hsm.AskTouch(t.ctx, t.p, hsm.TouchRequest{URI: t.uri, Holder: t.holder})
	defer done()
	return t.Signer.Sign(rnd, digest, opts)
}

func selfSigned(ctx context.Context, uri hsm.URI, opts EnrollOptions, pub *ecdsa.PublicKey, priv crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	cn := opts.Holder
	if cn == "" {
		cn = uri.String()
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Airlock"}, OrganizationalUnit: []string{uri.String()}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, touchSigner{Signer: priv, ctx: ctx, p: opts.Prompter, uri: uri, holder: opts.Holder})
	if err != nil {
		if e := pinError(err); e != nil {
			return nil, fmt.Errorf("signing the slot certificate: %w", e)
		}
		return nil, fmt.Errorf("signing the slot certificate: %w", classify(err))
	}
	return x509.ParseCertificate(der)
}
