package appliance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func akPEM(t testing.TB) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestTPMAKPinnedInState(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	st := s.openState()
	if len(st.TPMAttestationKeys) != 0 {
		t.Fatal("attestation keys without tpm-ak.pem")
	}
	if err := st.dir.WriteFile(TPMAKFile, append(akPEM(t), akPEM(t)...)); err != nil {
		t.Fatal(err)
	}
	if got := len(s.reopen().TPMAttestationKeys); got != 2 {
		t.Fatalf("%d attestation keys read, want 2", got)
	}
	c, err := New(Config{State: s.state, UI: &scriptUI{}, Bundle: dirBundle("x")})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.attestOptions().TPMAttestationKeys) != 2 {
		t.Fatal("the pinned attestation keys do not reach attest.Options")
	}
	for _, bad := range []string{"", "junk", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", string(akPEM(t)) + "trailing"} {
		if _, err := ParseTPMAK([]byte(bad)); err == nil {
			t.Errorf("ParseTPMAK(%q) accepted", bad)
		}
	}
}

func FuzzParseTPMAK(f *testing.F) {
	f.Add(akPEM(f))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := ParseTPMAK(b)
		if err == nil && (len(ks) == 0 || len(ks) > MaxTPMAKs) {
			t.Fatalf("%d keys accepted", len(ks))
		}
	})
}
