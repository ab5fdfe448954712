package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"airlock.dev/airlock/hsm"
)

// testYubiCA mimics Yubico's PIV attestation hierarchy with throwaway keys.
type testYubiCA struct {
	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
}

func newTestYubiCA(t testing.TB) *testYubiCA {
	t.Helper()
	key := mustKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test PIV Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	return &testYubiCA{root: mustCert(t, tmpl, tmpl, key.Public(), key), rootKey: key}
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (ca *testYubiCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.root)
	return p
}

type slotSpec struct {
	serial     int64
	pin, touch byte
	exts       []pkix.Extension // replaces the Yubico extensions when set
}

// chain returns an attestation of a fresh key: slot cert, device cert.
func (ca *testYubiCA) chain(t testing.TB, s slotSpec) (*hsm.Attestation, crypto.PublicKey) {
	t.Helper()
	devKey := mustKey(t)
	devTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Yubico PIV Attestation"},
		NotBefore: ca.root.NotBefore, NotAfter: ca.root.NotAfter,
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign,
	}
	dev := mustCert(t, devTmpl, ca.root, devKey.Public(), ca.rootKey)
	key := mustKey(t)
	serial, _ := asn1.Marshal(s.serial)
	exts := s.exts
	if exts == nil {
		exts = []pkix.Extension{
			{Id: oidYubicoFirmware, Value: []byte{5, 7, 2}},
			{Id: oidYubicoSerial, Value: serial},
			{Id: oidYubicoPolicy, Value: []byte{s.pin, s.touch}},
		}
	}
	slotTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "YubiKey PIV Attestation 9c"},
		NotBefore: dev.NotBefore, NotAfter: dev.NotAfter, ExtraExtensions: exts,
	}
	slot := mustCert(t, slotTmpl, dev, key.Public(), devKey)
	return &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: [][]byte{slot.Raw, dev.Raw}}, key.Public()
}

func readPEM(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no pem block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func realYubiKey(t testing.TB) (*hsm.Attestation, crypto.PublicKey) {
	slot := readPEM(t, "testdata/yubikey-real-slot-9a.pem")
	dev := readPEM(t, "testdata/yubikey-real-device.pem")
	return &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: [][]byte{slot.Raw, dev.Raw}}, slot.PublicKey
}

func TestYubiKeyRealAttestationVerifiesWithShippedRoots(t *testing.T) {
	att, pub := realYubiKey(t)
	f, err := Verify(att, pub, Options{})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := &Facts{
		Format: hsm.AttestationYubiKeyPIV, Hardware: true, Serial: 15732500, Firmware: "5.4.3",
		PINPolicy: "once", TouchPolicy: "never", Issuer: "CN=Yubico PIV Root CA Serial 263751",
	}
	if d := cmp.Diff(want, f); d != "" {
		t.Errorf("facts (-want +got):\n%s", d)
	}
	if err := (Policy{RequireHardware: true}).Check(f); err != nil {
		t.Errorf("RequireHardware: %v", err)
	}
	if err := (Policy{RequirePINAlways: true}).Check(f); err == nil {
		t.Error("pin policy once passed RequirePINAlways")
	}
	// The same chain must fail against another root.
	if _, err := Verify(att, pub, Options{YubicoRoots: newTestYubiCA(t).pool()}); err == nil {
		t.Error("real chain verified against a test root")
	}
	if _, err := Verify(att, mustKey(t).Public(), Options{}); err == nil || !strings.Contains(err.Error(), "not this public key") {
		t.Errorf("other public key: err = %v, want not this public key", err)
	}
}

func TestYubiKeyShippedIntermediatesChainToRoot1(t *testing.T) {
	roots, inters, err := loadYubico()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, c := range inters {
		pool.AddCert(c)
	}
	var piv int
	for _, c := range inters {
		if !strings.HasPrefix(c.Subject.CommonName, "Yubico PIV Attestation") {
			continue
		}
		piv++
		chains, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			t.Errorf("%s: %v", c.Subject.CommonName, err)
			continue
		}
		if got := chains[0][len(chains[0])-1].Subject.CommonName; got != "Yubico Attestation Root 1" {
			t.Errorf("%s chains to %q, want Yubico Attestation Root 1", c.Subject.CommonName, got)
		}
	}
	if piv != 2 {
		t.Errorf("shipped %d PIV attestation intermediates, want 2 (A 1 and B 1)", piv)
	}
}

func TestYubiKeyTestCA(t *testing.T) {
	ca := newTestYubiCA(t)
	att, pub := ca.chain(t, slotSpec{serial: 4242, pin: 3, touch: 2})
	f, err := Verify(att, pub, Options{YubicoRoots: ca.pool()})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := &Facts{Format: hsm.AttestationYubiKeyPIV, Hardware: true, Serial: 4242, Firmware: "5.7.2",
		PINPolicy: "always", TouchPolicy: "always", Issuer: "CN=Test PIV Root"}
	if d := cmp.Diff(want, f); d != "" {
		t.Errorf("facts (-want +got):\n%s", d)
	}
	if err := (Policy{RequireHardware: true, RequirePINAlways: true, RequireTouchAlways: true}).Check(f); err != nil {
		t.Errorf("policy: %v", err)
	}
	if _, err := Verify(att, pub, Options{}); err == nil {
		t.Error("test chain verified against the shipped yubico roots")
	}

	never, npub := ca.chain(t, slotSpec{serial: 4242, pin: 3, touch: 1})
	f, err = Verify(never, npub, Options{YubicoRoots: ca.pool()})
	if err != nil {
		t.Fatal(err)
	}
	if err := (Policy{RequireTouchAlways: true}).Check(f); err == nil {
		t.Error("touch policy never passed RequireTouchAlways")
	}
}

func TestYubiKeyRejects(t *testing.T) {
	ca := newTestYubiCA(t)
	opts := Options{YubicoRoots: ca.pool()}
	good, pub := ca.chain(t, slotSpec{serial: 1, pin: 3, touch: 2})
	other, _ := ca.chain(t, slotSpec{serial: 2, pin: 3, touch: 2})
	tests := []struct {
		name string
		att  *hsm.Attestation
		want string
	}{
		{"one cert", &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: good.Certificates[:1]}, "exactly 2"},
		{"three certs", &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: append(append([][]byte{}, good.Certificates...), ca.root.Raw)}, "exactly 2"},
		{"swapped", &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: [][]byte{good.Certificates[1], good.Certificates[0]}}, "not signed"},
		{"other device", &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: [][]byte{good.Certificates[0], other.Certificates[1]}}, "not signed"},
		{"garbage", &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: [][]byte{[]byte("x"), good.Certificates[1]}}, "certificate 0"},
		{"oversized", &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: [][]byte{make([]byte, maxYubiKeyCertBytes+1), good.Certificates[1]}}, "bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.att, pub, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	for _, spec := range []slotSpec{
		{serial: 1, exts: []pkix.Extension{{Id: oidYubicoFirmware, Value: []byte{5, 7, 2}}}},
		{serial: 1, pin: 9, touch: 2},
		{serial: -5, pin: 3, touch: 2},
	} {
		att, pub := ca.chain(t, spec)
		if _, err := Verify(att, pub, opts); err == nil {
			t.Errorf("%+v: accepted", spec)
		}
	}
}

func FuzzYubiKeyAttestation(f *testing.F) {
	ca := newTestYubiCA(f)
	real, _ := realYubiKey(f)
	f.Add(real.Certificates[0], real.Certificates[1])
	gen, _ := ca.chain(f, slotSpec{serial: 7, pin: 3, touch: 2})
	f.Add(gen.Certificates[0], gen.Certificates[1])
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00}, gen.Certificates[1])
	f.Add(gen.Certificates[1], gen.Certificates[0])
	f.Fuzz(func(t *testing.T, slot, device []byte) {
		att := &hsm.Attestation{Format: hsm.AttestationYubiKeyPIV, Certificates: [][]byte{slot, device}}
		var pub crypto.PublicKey
		if c, err := x509.ParseCertificate(slot); err == nil {
			pub = c.PublicKey
		}
		for _, opts := range []Options{{}, {YubicoRoots: ca.pool()}} {
			f, err := Verify(att, pub, opts)
			if err == nil && (f == nil || !f.Hardware || f.PINPolicy == "" || f.TouchPolicy == "") {
				t.Fatalf("accepted with incomplete facts %+v", f)
			}
		}
	})
}
