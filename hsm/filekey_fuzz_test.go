package hsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseFileKey feeds hostile development key files to the file-key
// parser: a key accepted is P-256 or Ed25519, its holder passes the holder
// rules, and it signs what its public key verifies.
func FuzzParseFileKey(f *testing.F) {
	dir := f.TempDir()
	for i, alg := range []Algorithm{ECDSAP256, Ed25519} {
		p := filepath.Join(dir, string(rune('a'+i))+".pem")
		if _, err := GenerateFileKey(p, alg, "alice", nil); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(b, "trailing"...))
		f.Add([]byte(strings.Replace(string(b), "alice", "al\x1bice", 1)))
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: []byte{0x30, 0x00}}))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseFileKey("fuzz.pem", data)
		if err != nil {
			return
		}
		if s.Kind() != KindFile || s.Attestation() != nil || checkHolder(s.Holder()) != nil {
			t.Fatalf("accepted key: kind %s, holder %q, attestation %v", s.Kind(), s.Holder(), s.Attestation())
		}
		msg := []byte("fuzz")
		switch pub := s.Public().(type) {
		case *ecdsa.PublicKey:
			d := sha256.Sum256(msg)
			sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
			if err != nil || !ecdsa.VerifyASN1(pub, d[:], sig) {
				t.Fatalf("accepted ecdsa key does not sign: %v", err)
			}
		case ed25519.PublicKey:
			sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
			if err != nil || !ed25519.Verify(pub, msg, sig) {
				t.Fatalf("accepted ed25519 key does not sign: %v", err)
			}
		default:
			t.Fatalf("accepted a %T key", pub)
		}
		if _, err := x509.MarshalPKIXPublicKey(s.Public()); err != nil {
			t.Fatal(err)
		}
	})
}
