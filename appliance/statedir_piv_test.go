package appliance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func certPEM(t *testing.T, ca bool) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example PIV Attestation CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: ca, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestParsePIVRoots(t *testing.T) {
	good := certPEM(t, true)
	if roots, err := ParsePIVRoots(append(append([]byte{}, good...), certPEM(t, true)...)); err != nil || len(roots) != 2 {
		t.Fatalf("two CA certificates: %d roots, %v", len(roots), err)
	}
	for _, tc := range []struct {
		name, want string
		in         []byte
	}{
		{"leaf", "is not a CA certificate", certPEM(t, false)},
		{"key block", `pem block "PUBLIC KEY"`, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}})},
		{"trailing text", "and nothing else", append(append([]byte{}, good...), "junk"...)},
		{"empty", "one or more PEM CERTIFICATE blocks", nil},
		{"too large", "over the", make([]byte, MaxPIVRootsBytes+1)},
	} {
		_, err := ParsePIVRoots(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), PIVRootsFile) {
			t.Errorf("%s: %v, want a refusal naming %s and saying %q", tc.name, err, PIVRootsFile, tc.want)
		}
	}
}

func FuzzParsePIVRoots(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, b []byte) {
		roots, err := ParsePIVRoots(b)
		if err == nil && (len(roots) == 0 || len(roots) > MaxPIVRoots) {
			t.Fatalf("accepted %d roots", len(roots))
		}
	})
}
