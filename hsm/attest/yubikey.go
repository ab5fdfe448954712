package attest

import (
	"crypto"
	"crypto/x509"
	_ "embed"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"

	"airlock.dev/airlock/hsm"
)

// Yubico's PIV attestation roots and intermediates. The roots are the PIV
// root (2016–2024 devices), the U2F root (devices certified before mid
// 2017) and the 2024+ "Yubico Attestation Root 1"; the intermediates are
// the 2024+ series ("Attestation Intermediate A/B 1", "PIV Attestation
// A/B 1"). FIDO, OpenPGP and Secure Domain intermediates are left out: a
// device certificate under them is not a PIV attestation.
var (
	//go:embed roots/yubico-piv-roots.pem
	yubicoRootsPEM []byte
	//go:embed roots/yubico-piv-intermediates.pem
	yubicoIntermediatesPEM []byte
)

// Yubico's certificate extensions on PIV attestations.
var (
	oidYubicoFirmware = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	oidYubicoSerial   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	oidYubicoPolicy   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
)

const (
	// maxYubiKeyCertBytes caps each certificate of a YubiKey attestation;
	// real ones are under 1 KB.
	maxYubiKeyCertBytes = 8 << 10
	// yubicoU2FRootCN names the old root whose path length of 0 Yubico
	// nevertheless used to sign device certificates under.
	yubicoU2FRootCN = "Yubico U2F Root CA Serial 457200631"
)

var (
	yubicoOnce        sync.Once
	yubicoRoots       *x509.CertPool
	yubicoInters      []*x509.Certificate
	yubicoLoadErr     error
	pinPolicyNames    = map[byte]string{1: "never", 2: "once", 3: "always", 4: "match-once", 5: "match-always"}
	touchPolicyNames  = map[byte]string{1: "never", 2: "always", 3: "cached"}
	errYubiKeyNoCerts = errors.New("yubikey attestation: want exactly 2 certificates (slot attestation, then the card's attestation certificate)")
)

func loadYubico() (*x509.CertPool, []*x509.Certificate, error) {
	yubicoOnce.Do(func() {
		roots, err := parsePEMCerts(yubicoRootsPEM)
		if err != nil {
			yubicoLoadErr = fmt.Errorf("shipped yubico roots: %w", err)
			return
		}
		inters, err := parsePEMCerts(yubicoIntermediatesPEM)
		if err != nil {
			yubicoLoadErr = fmt.Errorf("shipped yubico intermediates: %w", err)
			return
		}
		yubicoRoots, yubicoInters = x509.NewCertPool(), inters
		for _, c := range roots {
			if c.Subject.CommonName == yubicoU2FRootCN {
				// Its path length of 0 would forbid the device certificate
				// Yubico signed under it; allow exactly that one level.
				c.MaxPathLen = 1
			}
			yubicoRoots.AddCert(c)
		}
	})
	return yubicoRoots, yubicoInters, yubicoLoadErr
}

func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificates")
	}
	return out, nil
}

// verifyYubiKey checks a YubiKey PIV attestation: the slot certificate is
// signed by the card's attestation certificate, which chains to Yubico's
// roots (or opts.YubicoRoots); the slot certificate's key is pub; and
// Yubico's extensions give the serial, firmware and policies.
func verifyYubiKey(att *hsm.Attestation, pub crypto.PublicKey, opts Options) (*Facts, error) {
	if len(att.Certificates) != 2 {
		return nil, errYubiKeyNoCerts
	}
	var certs [2]*x509.Certificate
	for i, der := range att.Certificates {
		if len(der) == 0 || len(der) > maxYubiKeyCertBytes {
			return nil, fmt.Errorf("yubikey attestation: certificate %d is %d bytes, want 1 to %d", i, len(der), maxYubiKeyCertBytes)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("yubikey attestation: certificate %d: %w", i, err)
		}
		certs[i] = c
	}
	slot, device := certs[0], certs[1]

	// Some YubiKey 4 device certificates lack basic constraints although
	// they sign slot attestations; treat them as the CA they act as.
	if !device.BasicConstraintsValid {
		device.BasicConstraintsValid = true
		device.IsCA = true
		device.MaxPathLen = 0
		device.MaxPathLenZero = true
	}
	if err := slot.CheckSignatureFrom(device); err != nil {
		return nil, fmt.Errorf("yubikey attestation: the slot certificate is not signed by the card's attestation certificate: %w", err)
	}

	roots := opts.YubicoRoots
	inters := x509.NewCertPool()
	if opts.YubicoIntermediates != nil {
		inters = opts.YubicoIntermediates.Clone()
	}
	if roots == nil {
		r, shipped, err := loadYubico()
		if err != nil {
			return nil, err
		}
		roots = r
		for _, c := range shipped {
			inters.AddCert(c)
		}
	}
	trusted := "yubico's shipped piv attestation roots"
	if opts.YubicoRoots != nil {
		trusted = "the yubico roots given"
	}
	if len(opts.PIVRoots) > 0 {
		roots = roots.Clone()
		for _, r := range opts.PIVRoots {
			roots.AddCert(r)
			trusted += fmt.Sprintf(", %q", r.Subject.String())
		}
	}
	inters.AddCert(device)
	chains, err := slot.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inters,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("yubikey attestation: the chain slot %s <- card %q issued by %q reaches no trusted root (trusted: %s): %w",
			slotName(slot), device.Subject.String(), device.Issuer.String(), trusted, err)
	}
	var chain []*x509.Certificate
	for _, c := range chains {
		if len(c) >= 3 && c[1].Equal(device) {
			chain = c
			break
		}
	}
	if chain == nil {
		return nil, errors.New("yubikey attestation: no chain runs through the card's attestation certificate")
	}

	if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(slot.PublicKey) {
		return nil, errors.New("yubikey attestation: the attested key is not this public key")
	}

	f := &Facts{Format: hsm.AttestationYubiKeyPIV, Hardware: true, Issuer: chain[len(chain)-1].Subject.String()}
	var haveFW, haveSerial, havePolicy bool
	for _, ext := range slot.Extensions {
		switch {
		case ext.Id.Equal(oidYubicoFirmware):
			if len(ext.Value) != 3 {
				return nil, fmt.Errorf("yubikey attestation: firmware extension is %d bytes, want 3", len(ext.Value))
			}
			f.Firmware = fmt.Sprintf("%d.%d.%d", ext.Value[0], ext.Value[1], ext.Value[2])
			haveFW = true
		case ext.Id.Equal(oidYubicoSerial):
			var n int64
			rest, err := asn1.Unmarshal(ext.Value, &n)
			if err != nil || len(rest) != 0 || n <= 0 || n > 0xffffffff {
				return nil, errors.New("yubikey attestation: serial extension is not a positive 32-bit integer")
			}
			f.Serial = uint32(n)
			haveSerial = true
		case ext.Id.Equal(oidYubicoPolicy):
			if len(ext.Value) != 2 {
				return nil, fmt.Errorf("yubikey attestation: policy extension is %d bytes, want 2", len(ext.Value))
			}
			pp, ok1 := pinPolicyNames[ext.Value[0]]
			tp, ok2 := touchPolicyNames[ext.Value[1]]
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("yubikey attestation: unknown pin/touch policy %#x/%#x", ext.Value[0], ext.Value[1])
			}
			f.PINPolicy, f.TouchPolicy = pp, tp
			havePolicy = true
		}
	}
	if !haveFW || !haveSerial || !havePolicy {
		return nil, errors.New("yubikey attestation: the slot certificate lacks yubico's firmware, serial or policy extension")
	}
	return f, nil
}

// slotName names a slot attestation certificate by its subject.
func slotName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return fmt.Sprintf("%q", c.Subject.String())
}
