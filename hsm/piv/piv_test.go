//go:build cgo && linux

package piv_test

// These tests run the whole stack — hsm/piv → piv-go → libpcsclite → pcscd
// → vsmartcard-vpcd → the emulated card — with nothing mocked.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	pivgo "github.com/go-piv/piv-go/v2/piv"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/hsmtest"
	"airlock.dev/airlock/hsm/piv"
	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/piv/pivtest"
)

const testPIN = "123456"

func newCard(t testing.TB, cfg pivemu.Config) *pivemu.Card {
	t.Helper()
	c, err := pivemu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Remove)
	return c
}

func pins(ps ...string) [][]byte {
	var out [][]byte
	for _, p := range ps {
		out = append(out, []byte(p))
	}
	return out
}

func repeat(p string, n int) [][]byte {
	var out [][]byte
	for range n {
		out = append(out, []byte(p))
	}
	return out
}

// recorder is a Prompter that logs PIN and touch prompts in order.
type recorder struct {
	hsmtest.ScriptedPrompter
	mu       sync.Mutex
	events   []string
	touched  chan struct{} // closed at the first touch prompt
	once     sync.Once
	touchFor []hsm.TouchRequest
}

func newRecorder(p ...[]byte) *recorder {
	return &recorder{ScriptedPrompter: hsmtest.ScriptedPrompter{PINs: p}, touched: make(chan struct{})}
}

func (r *recorder) PIN(ctx context.Context, req hsm.PINRequest) ([]byte, error) {
	r.mu.Lock()
	r.events = append(r.events, "pin")
	r.mu.Unlock()
	return r.ScriptedPrompter.PIN(ctx, req)
}

func (r *recorder) Touch(ctx context.Context, u hsm.URI) func() {
	r.mu.Lock()
	r.events = append(r.events, "touch")
	r.mu.Unlock()
	r.once.Do(func() { close(r.touched) })
	r.ScriptedPrompter.Touch(ctx, u)
	return func() {
		r.mu.Lock()
		r.events = append(r.events, "touched")
		r.mu.Unlock()
	}
}

// TouchFor records whom the touch prompt names.
func (r *recorder) TouchFor(ctx context.Context, req hsm.TouchRequest) func() {
	r.mu.Lock()
	r.touchFor = append(r.touchFor, req)
	r.mu.Unlock()
	return r.Touch(ctx, req.URI)
}

func (r *recorder) TouchRequests() []hsm.TouchRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hsm.TouchRequest(nil), r.touchFor...)
}

func (r *recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorder) Retries() []int {
	var out []int
	for _, a := range r.Asked {
		out = append(out, a.Retries)
	}
	return out
}

func enroll(t testing.TB, serial uint32, holder string, p hsm.Prompter) *piv.Enrollment {
	t.Helper()
	e, err := piv.Enroll(context.Background(), serial, piv.EnrollOptions{Holder: holder, Prompter: p})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	t.Cleanup(func() { e.Signer.(hsm.Closer).Close() })
	return e
}

func openSigner(t testing.TB, serial uint32, p hsm.Prompter) hsm.Signer {
	t.Helper()
	u, err := hsm.ParseURI("yubikey:serial=" + itoa(serial) + ";slot=9c")
	if err != nil {
		t.Fatal(err)
	}
	s, err := hsm.Open(context.Background(), u, p)
	if err != nil {
		t.Fatalf("hsm.Open(%s): %v", u, err)
	}
	t.Cleanup(func() { s.(hsm.Closer).Close() })
	return s
}

func itoa(n uint32) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

func signDigest(s hsm.Signer, msg string) ([]byte, []byte, error) {
	d := sha256.Sum256([]byte(msg))
	sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
	return d[:], sig, err
}

// enrolled starts pcscd, inserts a card and enrols its slot 9c; the
// enrolment's signer is closed so tests can open the key afresh.
func enrolled(t *testing.T, cfg pivemu.Config) (*pivtest.Env, *pivemu.Card, *piv.Enrollment) {
	t.Helper()
	env := pivtest.Start(t)
	card := newCard(t, cfg)
	env.Insert(t, card, 0)
	e := enroll(t, card.Serial(), "Alice Example", newRecorder(pins(testPIN)...))
	if err := e.Signer.(hsm.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	return env, card, e
}

func TestSignerConformance(t *testing.T) {
	_, card, _ := enrolled(t, pivemu.Config{Serial: 1001})
	hsmtest.RunSignerTests(t, func(t *testing.T) hsm.Signer {
		return openSigner(t, card.Serial(), newRecorder(repeat(testPIN, 4)...))
	})
}

func TestEnrollSignAttest(t *testing.T) {
	env := pivtest.Start(t)
	card := newCard(t, pivemu.Config{Serial: 4242})
	env.Insert(t, card, 0)

	cards, err := piv.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) != 1 || cards[0].Serial != 4242 || cards[0].Firmware != "5.7.2" {
		t.Fatalf("List = %+v, want one card 4242 firmware 5.7.2", cards)
	}
	p := newRecorder(pins(testPIN, testPIN)...)
	e := enroll(t, 4242, "Alice Example", p)
	if got, want := e.URI.String(), "yubikey:serial=4242;slot=9c"; got != want {
		t.Errorf("URI = %s, want %s", got, want)
	}
	if e.Signer.Holder() != "Alice Example" {
		t.Errorf("Holder = %q", e.Signer.Holder())
	}

	// The management key is random now, and stored PIN-protected on the card.
	mk := card.ManagementKey()
	if bytes.Equal(mk, pivemu.DefaultManagementKey) {
		t.Fatal("management key is still the factory default after enrolment")
	}

	d, sig, err := signDigest(e.Signer, "release 1.0.0")
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !ecdsa.VerifyASN1(e.Public.(*ecdsa.PublicKey), d, sig) {
		t.Fatal("signature does not verify")
	}
	// Enrolment asked once (PIN for generate + self-signed cert), the sign once.
	if d := cmp.Diff([]string{"pin", "touch", "touched", "pin", "touch", "touched"}, p.Events()); d != "" {
		t.Errorf("prompts (-want +got):\n%s", d)
	}
	// The second prompt follows a good PIN in the same card session, where
	// the card answers "verified" instead of a count: the counter is full,
	// and the prompt says so rather than nothing.
	if d := cmp.Diff([]int{3, 3}, p.Retries()); d != "" {
		t.Errorf("retries shown (-want +got):\n%s", d)
	}
	// Both touch prompts name the holder and the key.
	wantTouch := hsm.TouchRequest{URI: e.URI, Holder: "Alice Example"}
	if d := cmp.Diff([]hsm.TouchRequest{wantTouch, wantTouch}, p.TouchRequests()); d != "" {
		t.Errorf("touch prompts (-want +got):\n%s", d)
	}

	roots := x509.NewCertPool()
	roots.AddCert(card.AttestationRoot())
	f, err := attest.Verify(e.Attestation, e.Public, attest.Options{YubicoRoots: roots})
	if err != nil {
		t.Fatalf("attest.Verify with the emulator's root: %v", err)
	}
	want := &attest.Facts{Format: hsm.AttestationYubiKeyPIV, Hardware: true, Serial: 4242, Firmware: "5.7.2",
		PINPolicy: "always", TouchPolicy: "always", Issuer: card.AttestationRoot().Subject.String()}
	if d := cmp.Diff(want, f); d != "" {
		t.Errorf("facts (-want +got):\n%s", d)
	}
	if err := (attest.Policy{RequireHardware: true, RequirePINAlways: true, RequireTouchAlways: true}).Check(f); err != nil {
		t.Errorf("policy: %v", err)
	}
	if _, err := attest.Verify(e.Attestation, e.Public, attest.Options{}); err == nil {
		t.Error("emulator attestation verified against the shipped yubico roots")
	}
	if d := cmp.Diff(e.Attestation, e.Signer.Attestation()); d != "" {
		t.Errorf("signer attestation differs from enrolment's (-want +got):\n%s", d)
	}
	e.Signer.(hsm.Closer).Close()

	// piv-go itself reads the stored management key with the PIN.
	yk, err := pivgo.Open(cards[0].Reader)
	if err != nil {
		t.Fatal(err)
	}
	md, err := yk.Metadata(testPIN)
	yk.Close()
	if err != nil {
		t.Fatal(err)
	}
	if md.ManagementKey == nil || !bytes.Equal(*md.ManagementKey, mk) {
		t.Error("the card's PIN-protected metadata does not hold the current management key")
	}
}

func TestEnrollRefusesToOverwrite(t *testing.T) {
	_, card, first := enrolled(t, pivemu.Config{Serial: 1002})
	_, err := piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{Prompter: newRecorder(pins(testPIN)...)})
	if err == nil || !strings.Contains(err.Error(), "--really-overwrite-slot") {
		t.Fatalf("second Enroll: err = %v, want a refusal naming --really-overwrite-slot", err)
	}
	_, err = piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{Prompter: newRecorder(pins(testPIN)...), ReallyOverwriteExistingKey: true})
	if !errors.Is(err, hsm.ErrCancelled) || !strings.Contains(err.Error(), "typed confirmation") {
		t.Fatalf("overwrite without a confirmation: err = %v, want a refusal asking for a typed confirmation", err)
	}
	mk := card.ManagementKey()
	var asked []string
	confirm := func(desc string) error { asked = append(asked, desc); return nil }
	second, err := piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{Prompter: newRecorder(pins(testPIN)...), ReallyOverwriteExistingKey: true, ConfirmOverwrite: confirm})
	if len(asked) != 1 || !strings.Contains(asked[0], "slot 9c of yubikey 1002 already holds a key") {
		t.Errorf("confirmation asked %q, want one naming slot 9c of yubikey 1002", asked)
	}
	if err != nil {
		t.Fatalf("Enroll with ReallyOverwriteExistingKey: %v", err)
	}
	defer second.Signer.(hsm.Closer).Close()
	if second.Public.(*ecdsa.PublicKey).Equal(first.Public) {
		t.Error("overwrite kept the old key")
	}
	if !bytes.Equal(card.ManagementKey(), mk) {
		t.Error("re-enrolment changed the stored management key; it should reuse it")
	}
}

func TestWrongPINThenBlocked(t *testing.T) {
	_, card, _ := enrolled(t, pivemu.Config{Serial: 1003})
	p := newRecorder(pins("000000", testPIN, "111111", "222222", "333333")...)
	s := openSigner(t, card.Serial(), p)

	_, _, err := signDigest(s, "a")
	var wp *hsm.WrongPINError
	if !errors.As(err, &wp) || wp.Retries != 2 {
		t.Fatalf("wrong pin: err = %v, want WrongPINError{2}", err)
	}
	if d := cmp.Diff([]string{"pin"}, p.Events()); d != "" {
		t.Errorf("a wrong PIN raised a touch prompt (-want +got):\n%s", d)
	}
	if _, _, err := signDigest(s, "b"); err != nil {
		t.Fatalf("right pin after a wrong one: %v", err)
	}
	for _, want := range []int{2, 1, 0} {
		_, _, err := signDigest(s, "c")
		if !errors.As(err, &wp) || wp.Retries != want {
			t.Fatalf("err = %v, want WrongPINError{%d}", err, want)
		}
	}
	asked := len(p.Asked)
	_, _, err = signDigest(s, "d")
	if !errors.Is(err, hsm.ErrPINBlocked) {
		t.Fatalf("blocked: err = %v, want ErrPINBlocked", err)
	}
	if len(p.Asked) != asked {
		t.Error("the holder was asked for a PIN although the PIN is blocked")
	}
	// Retries shown before each try: the third prompt follows a good PIN in
	// the same session, where the card answers "verified" instead of a
	// count; the counter is then full and the prompt shows it.
	if d := cmp.Diff([]int{3, 2, 3, 2, 1}, p.Retries()); d != "" {
		t.Errorf("retries shown (-want +got):\n%s", d)
	}
	if card.PINRetries() != 0 || card.Signatures() != 2 {
		t.Errorf("card: retries %d signatures %d, want 0 and 2 (one enrolment certificate, one signature)", card.PINRetries(), card.Signatures())
	}
}

func TestTouchPromptWhileCardWaits(t *testing.T) {
	var p *recorder
	var waited atomic.Bool
	cfg := pivemu.Config{Serial: 1004, Touch: func() {
		if p == nil {
			return // enrolment
		}
		select {
		case <-p.touched:
			waited.Store(true)
		case <-time.After(10 * time.Second):
		}
	}}
	_, card, _ := enrolled(t, cfg)
	p = newRecorder(pins(testPIN)...)
	s := openSigner(t, card.Serial(), p)
	if _, _, err := signDigest(s, "x"); err != nil {
		t.Fatal(err)
	}
	if !waited.Load() {
		t.Fatal("the card finished waiting for a touch before the touch prompt was raised")
	}
	if d := cmp.Diff([]string{"pin", "touch", "touched"}, p.Events()); d != "" {
		t.Errorf("prompts (-want +got):\n%s", d)
	}
}

func TestCardRemovedMidSign(t *testing.T) {
	var card *pivemu.Card
	var pull atomic.Bool
	cfg := pivemu.Config{Serial: 1005, Touch: func() {
		if pull.CompareAndSwap(true, false) {
			card.Remove()
		}
	}}
	env := pivtest.Start(t)
	card = newCard(t, cfg)
	env.Insert(t, card, 0)
	enroll(t, card.Serial(), "", newRecorder(pins(testPIN)...)).Signer.(hsm.Closer).Close()

	p := newRecorder(repeat(testPIN, 3)...)
	s := openSigner(t, card.Serial(), p)
	pull.Store(true)
	_, _, err := signDigest(s, "x")
	if !errors.Is(err, hsm.ErrNotFound) || !strings.Contains(err.Error(), "insert the key and try again") {
		t.Fatalf("sign with the card pulled: err = %v, want ErrNotFound saying insert the key and try again", err)
	}
	env.WaitGone(t, card)
	if _, _, err := signDigest(s, "y"); !errors.Is(err, hsm.ErrNotFound) {
		t.Fatalf("sign with no card: err = %v, want ErrNotFound", err)
	}
	env.Insert(t, card, 0)
	d, sig, err := signDigest(s, "z")
	if err != nil {
		t.Fatalf("sign after reinserting: %v", err)
	}
	if !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), d, sig) {
		t.Fatal("signature after reinsertion does not verify")
	}
}

func TestTwoCardsPickBySerial(t *testing.T) {
	env := pivtest.Start(t)
	ca, err := pivemu.NewAttestationCA()
	if err != nil {
		t.Fatal(err)
	}
	a := newCard(t, pivemu.Config{Serial: 2001, CA: ca})
	b := newCard(t, pivemu.Config{Serial: 2002, CA: ca, Firmware: [3]byte{5, 4, 3}})
	env.Insert(t, a, 0)
	env.Insert(t, b, 1)
	cards, err := piv.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cards {
		got = append(got, itoa(c.Serial)+" "+c.Firmware)
	}
	if d := cmp.Diff([]string{"2001 5.7.2", "2002 5.4.3"}, got); d != "" {
		t.Fatalf("List (-want +got):\n%s", d)
	}
	eb := enroll(t, 2002, "Bob", newRecorder(pins(testPIN)...))
	ea := enroll(t, 2001, "Alice", newRecorder(pins(testPIN)...))
	eb.Signer.(hsm.Closer).Close()
	ea.Signer.(hsm.Closer).Close()
	if !a.HasKey(0x9c) || !b.HasKey(0x9c) {
		t.Fatal("each card should hold its own key")
	}
	for _, tc := range []struct {
		serial   uint32
		own, oth *piv.Enrollment
	}{{2001, ea, eb}, {2002, eb, ea}} {
		s := openSigner(t, tc.serial, newRecorder(pins(testPIN)...))
		if !s.Public().(*ecdsa.PublicKey).Equal(tc.own.Public) {
			t.Fatalf("serial %d opened another card's key", tc.serial)
		}
		d, sig, err := signDigest(s, "m")
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(tc.own.Public.(*ecdsa.PublicKey), d, sig) || ecdsa.VerifyASN1(tc.oth.Public.(*ecdsa.PublicKey), d, sig) {
			t.Fatalf("serial %d: signature made by the wrong card", tc.serial)
		}
		if s.Holder() != map[uint32]string{2001: "Alice", 2002: "Bob"}[tc.serial] {
			t.Errorf("serial %d: holder %q", tc.serial, s.Holder())
		}
	}
	if _, err := hsm.Open(context.Background(), hsm.URI{Kind: hsm.KindYubiKey, Serial: 2003, Slot: "9c"}, newRecorder()); !errors.Is(err, hsm.ErrNotFound) {
		t.Errorf("absent serial: err = %v, want ErrNotFound", err)
	}
}

func TestTouchPolicyNeverFailsPolicy(t *testing.T) {
	_, card, e := enrolled(t, pivemu.Config{Serial: 1006, ForceTouchPolicy: pivemu.TouchPolicyNever})
	roots := x509.NewCertPool()
	roots.AddCert(card.AttestationRoot())
	f, err := attest.Verify(e.Attestation, e.Public, attest.Options{YubicoRoots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if f.TouchPolicy != "never" {
		t.Fatalf("touch policy %q, want never", f.TouchPolicy)
	}
	if err := (attest.Policy{RequireTouchAlways: true}).Check(f); err == nil {
		t.Fatal("a key with touch policy never passed RequireTouchAlways")
	}
	// Such a key signs without a touch prompt.
	p := newRecorder(pins(testPIN)...)
	if _, _, err := signDigest(openSigner(t, card.Serial(), p), "x"); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"pin"}, p.Events()); d != "" {
		t.Errorf("prompts (-want +got):\n%s", d)
	}
}

func TestOpenEmptySlot(t *testing.T) {
	env := pivtest.Start(t)
	card := newCard(t, pivemu.Config{Serial: 1007})
	env.Insert(t, card, 0)
	_, err := hsm.Open(context.Background(), hsm.URI{Kind: hsm.KindYubiKey, Serial: 1007, Slot: "9c"}, newRecorder())
	if !errors.Is(err, hsm.ErrNotFound) || !strings.Contains(err.Error(), "enrol") {
		t.Fatalf("err = %v, want ErrNotFound telling to enrol", err)
	}
	// The failed open must not leave the card locked.
	if _, err := piv.Enroll(context.Background(), 1007, piv.EnrollOptions{Prompter: newRecorder(pins(testPIN)...)}); err != nil {
		t.Fatalf("Enroll after a failed open: %v", err)
	}
}

// BenchmarkSign times one signature through pcscd, vpcd and the emulator:
// Retries query, PIN prompt, verify, touch, sign.
func BenchmarkSign(b *testing.B) {
	env := pivtest.Start(b)
	card := newCard(b, pivemu.Config{Serial: 3001})
	env.Insert(b, card, 0)
	enroll(b, 3001, "", newRecorder(pins(testPIN)...)).Signer.(hsm.Closer).Close()
	s := openSigner(b, 3001, newRecorder(repeat(testPIN, b.N+1)...))
	d := sha256.Sum256([]byte("bench"))
	b.ResetTimer()
	for range b.N {
		if _, err := s.Sign(rand.Reader, d[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawPivGo is the same signature made with piv-go directly (PIN
// given, no prompts): the device round trips without Airlock's layer.
func BenchmarkRawPivGo(b *testing.B) {
	env := pivtest.Start(b)
	card := newCard(b, pivemu.Config{Serial: 3002})
	env.Insert(b, card, 0)
	e := enroll(b, 3002, "", newRecorder(pins(testPIN)...))
	e.Signer.(hsm.Closer).Close()
	cards, err := piv.List(context.Background())
	if err != nil || len(cards) != 1 {
		b.Fatal(cards, err)
	}
	yk, err := pivgo.Open(cards[0].Reader)
	if err != nil {
		b.Fatal(err)
	}
	defer yk.Close()
	key, err := yk.PrivateKey(pivgo.SlotSignature, e.Public, pivgo.KeyAuth{PIN: testPIN, PINPolicy: pivgo.PINPolicyAlways})
	if err != nil {
		b.Fatal(err)
	}
	d := sha256.Sum256([]byte("bench"))
	b.ResetTimer()
	for range b.N {
		if _, err := key.(crypto.Signer).Sign(rand.Reader, d[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEnrollResumesInterruptedManagementKeyChange puts the card in the state
// a card pulled out between storing the new management key and switching to
// it is left in: the PIN-protected object names a fresh key while the card
// still has the factory key. Enrolment must finish the switch and succeed.
func TestEnrollResumesInterruptedManagementKeyChange(t *testing.T) {
	env := pivtest.Start(t)
	card := newCard(t, pivemu.Config{Serial: 1011})
	env.Insert(t, card, 0)
	cards, err := piv.List(context.Background())
	if err != nil || len(cards) != 1 {
		t.Fatalf("listing cards: %v %v", cards, err)
	}
	yk, err := pivgo.Open(cards[0].Reader)
	if err != nil {
		t.Fatal(err)
	}
	fresh := make([]byte, 24)
	if _, err := rand.Read(fresh); err != nil {
		t.Fatal(err)
	}
	if err := yk.SetMetadata(pivgo.DefaultManagementKey, &pivgo.Metadata{ManagementKey: &fresh}); err != nil {
		t.Fatal(err)
	}
	yk.Close()
	if !bytes.Equal(card.ManagementKey(), pivemu.DefaultManagementKey) {
		t.Fatal("setup: the card left the factory management key")
	}
	e, err := piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{Prompter: newRecorder(pins(testPIN)...)})
	if err != nil {
		t.Fatalf("enrolment after an interrupted key change: %v", err)
	}
	e.Signer.(hsm.Closer).Close()
	if !bytes.Equal(card.ManagementKey(), fresh) {
		t.Fatalf("the card's management key is not the stored one after enrolment")
	}
}

// TestEnrollOverwriteOfImportedKeyAsksConfirmation: a key imported by another
// tool cannot be attested, yet destroying it must be confirmed like any other.
func TestEnrollOverwriteOfImportedKeyAsksConfirmation(t *testing.T) {
	env := pivtest.Start(t)
	card := newCard(t, pivemu.Config{Serial: 1012})
	imported, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	card.ImportKeyInsecure(0x9c, imported)
	env.Insert(t, card, 0)
	refuse := errors.New("holder typed another serial")
	var asked []string
	_, err = piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{
		Prompter: newRecorder(pins(testPIN)...), ReallyOverwriteExistingKey: true,
		ConfirmOverwrite: func(desc string) error { asked = append(asked, desc); return refuse },
	})
	if !errors.Is(err, refuse) || len(asked) != 1 {
		t.Fatalf("overwrite of an imported key: err = %v, asked %q; want the typed confirmation asked once and its refusal returned", err, asked)
	}
	if card.Signatures() != 0 || !card.HasKey(0x9c) {
		t.Fatal("the imported key was touched although the confirmation was refused")
	}
}

// TestEnrollCardProvisionedElsewhere: a card whose management key another
// tool set, without storing it, is refused with a message saying so and
// naming --management-key; given that key, enrolment succeeds.
func TestEnrollCardProvisionedElsewhere(t *testing.T) {
	env := pivtest.Start(t)
	card := newCard(t, pivemu.Config{Serial: 1013})
	env.Insert(t, card, 0)
	cards, err := piv.List(context.Background())
	if err != nil || len(cards) != 1 {
		t.Fatalf("listing cards: %v %v", cards, err)
	}
	yk, err := pivgo.Open(cards[0].Reader)
	if err != nil {
		t.Fatal(err)
	}
	custom := bytes.Repeat([]byte{0x5a}, 24)
	if err := yk.SetManagementKey(pivgo.DefaultManagementKey, custom); err != nil {
		t.Fatal(err)
	}
	yk.Close()
	_, err = piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{Prompter: newRecorder(pins(testPIN)...)})
	if err == nil || !strings.Contains(err.Error(), "neither the factory default nor the one stored") || !strings.Contains(err.Error(), "--management-key") {
		t.Fatalf("enrolment without the key: err = %v, want a refusal saying the management key is foreign and naming --management-key", err)
	}
	wrong := bytes.Repeat([]byte{0x11}, 24)
	_, err = piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{Prompter: newRecorder(pins(testPIN)...), ManagementKey: wrong})
	if err == nil || !strings.Contains(err.Error(), "given with --management-key does not open the card") {
		t.Fatalf("enrolment with a wrong key: err = %v, want a refusal of the given key", err)
	}
	e, err := piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{Prompter: newRecorder(pins(testPIN)...), ManagementKey: custom})
	if err != nil {
		t.Fatalf("enrolment with the right key: %v", err)
	}
	e.Signer.(hsm.Closer).Close()
}
