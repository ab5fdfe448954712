// Package hsmtest is the conformance suite every hsm.Signer back end passes:
// software keys, the TPM (simulator and swtpm) and YubiKey PIV (through
// pcscd and the emulated card).
package hsmtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"sync"
	"testing"

	"airlock.dev/airlock/hsm"
)

// ScriptedPrompter answers PIN prompts from a list and records every prompt,
// so tests can assert what a holder was asked and shown.
type ScriptedPrompter struct {
	mu      sync.Mutex
	PINs    [][]byte // answered in order; when exhausted, PIN returns hsm.ErrCancelled
	Asked   []hsm.PINRequest
	Touches int
}

// PIN implements hsm.Prompter.
func (p *ScriptedPrompter) PIN(_ context.Context, req hsm.PINRequest) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Asked = append(p.Asked, req)
	if len(p.PINs) == 0 {
		return nil, hsm.ErrCancelled
	}
	pin := p.PINs[0]
	p.PINs = p.PINs[1:]
	return append([]byte(nil), pin...), nil
}

// Touch implements hsm.Prompter.
func (p *ScriptedPrompter) Touch(context.Context, hsm.URI) func() {
	p.mu.Lock()
	p.Touches++
	p.mu.Unlock()
	return func() {}
}

var _ hsm.Prompter = (*ScriptedPrompter)(nil)

// RunSignerTests checks the hsm.Signer contract. newSigner returns a fresh,
// ready signer; it is called once per subtest.
func RunSignerTests(t *testing.T, newSigner func(t *testing.T) hsm.Signer) {
	t.Run("URIRoundTrip", func(t *testing.T) {
		s := newSigner(t)
		u := s.URI()
		if u.Kind != s.Kind() {
			t.Fatalf("URI kind %q, Kind() %q", u.Kind, s.Kind())
		}
		back, err := hsm.ParseURI(u.String())
		if err != nil {
			t.Fatalf("ParseURI(%q): %v", u.String(), err)
		}
		if back != u {
			t.Fatalf("ParseURI(String()) = %+v, want %+v", back, u)
		}
	})
	t.Run("HardwareHasAttestation", func(t *testing.T) {
		s := newSigner(t)
		if s.Kind().Hardware() && s.Attestation() == nil {
			t.Fatalf("hardware signer of kind %s has no attestation", s.Kind())
		}
		if !s.Kind().Hardware() && s.Attestation() != nil {
			t.Fatalf("software signer claims an attestation")
		}
	})
	t.Run("SignVerifies", func(t *testing.T) {
		s := newSigner(t)
		msg := []byte("airlock conformance message")
		sig := mustSign(t, s, msg)
		if !verify(t, s.Public(), msg, sig) {
			t.Fatal("signature does not verify under Public()")
		}
		if verify(t, s.Public(), []byte("another message"), sig) {
			t.Fatal("signature verifies over another message")
		}
	})
	t.Run("SignaturesDiffer", func(t *testing.T) {
		s := newSigner(t)
		a := mustSign(t, s, []byte("one"))
		b := mustSign(t, s, []byte("two"))
		if string(a) == string(b) {
			t.Fatal("two messages gave the same signature")
		}
	})
	t.Run("RefusesWrongDigest", func(t *testing.T) {
		s := newSigner(t)
		if _, ok := s.Public().(ed25519.PublicKey); ok {
			// Ed25519 signs the message itself; a SHA-256 digest request
			// is a caller mistake the signer must not paper over.
			d := sha256.Sum256([]byte("x"))
			if _, err := s.Sign(rand.Reader, d[:], crypto.SHA256); err == nil {
				t.Error("Ed25519 key signed a SHA-256 prehash")
			}
			return
		}
		if _, err := s.Sign(rand.Reader, make([]byte, 20), crypto.SHA256); err == nil {
			t.Error("20-byte digest with SHA256 accepted")
		}
		d := sha512.Sum512([]byte("x"))
		if _, err := s.Sign(rand.Reader, d[:], crypto.SHA512); err == nil {
			t.Error("SHA-512 digest accepted by a P-256 SHA-256 key")
		}
	})
}

func mustSign(t *testing.T, s hsm.Signer, msg []byte) []byte {
	t.Helper()
	switch s.Public().(type) {
	case ed25519.PublicKey:
		sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		return sig
	default:
		d := sha256.Sum256(msg)
		sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		return sig
	}
}

func verify(t *testing.T, pub crypto.PublicKey, msg, sig []byte) bool {
	t.Helper()
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(pub, msg, sig)
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(pub, d[:], sig)
	default:
		t.Fatalf("unexpected public key type %T", pub)
		return false
	}
}
