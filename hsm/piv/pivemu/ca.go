package pivemu

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// Yubico's PIV attestation extensions, as real cards write them.
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}
)

// AttestationCA is a throwaway certificate authority standing in for
// Yubico's PIV attestation root. Its private key lives in process memory and
// dies with the test; a chain that ends at it proves nothing about hardware.
type AttestationCA struct {
	// Root is the CA's self-signed certificate; tests trust it in place of
	// Yubico's roots.
	Root *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewAttestationCA makes a fresh throwaway attestation root.
func NewAttestationCA() (*AttestationCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating emulator attestation root key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "Airlock Test PIV Attestation Root (emulator, not Yubico)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating emulator attestation root: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing emulator attestation root: %w", err)
	}
	return &AttestationCA{Root: root, key: key}, nil
}

// deviceCert issues a card's attestation certificate (object 5FFF01) for
// the attestation key in slot f9.
func (ca *AttestationCA) deviceCert(serial uint32, fw [3]byte, pub crypto.PublicKey) (*x509.Certificate, error) {
	serialExt, err := asn1.Marshal(int64(serial))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("Yubico PIV Attestation (emulated card %d)", serial)},
		NotBefore:             ca.Root.NotBefore,
		NotAfter:              ca.Root.NotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: fw[:]},
			{Id: oidSerial, Value: serialExt},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Root, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("creating emulator device attestation certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// slotCert issues the attestation of the key in a slot, signed by the
// card's attestation key, with the extensions a YubiKey writes.
func slotCert(device *x509.Certificate, deviceKey *ecdsa.PrivateKey, slot byte, pub crypto.PublicKey, serial uint32, fw [3]byte, pin, touch byte) ([]byte, error) {
	serialExt, err := asn1.Marshal(int64(serial))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("YubiKey PIV Attestation %02x", slot)},
		NotBefore:    device.NotBefore,
		NotAfter:     device.NotAfter,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: fw[:]},
			{Id: oidSerial, Value: serialExt},
			{Id: oidPolicy, Value: []byte{pin, touch}},
			{Id: oidFormFactor, Value: []byte{0x01}},
		},
	}
	return x509.CreateCertificate(rand.Reader, tmpl, device, pub, deviceKey)
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(1)
	}
	return n.Add(n, big.NewInt(1))
}
