package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/tpm/keypolicy"
)

// Caps on the parts of a TPM attestation (a TPMS_ATTEST from TPM2_Certify
// is about 150 bytes, an ECC TPMT_PUBLIC about 120).
const (
	maxTPMStatementLen  = 1024
	maxTPMSignatureLen  = 512
	maxTPMPublicLen     = 1024
	maxTPMCertificates  = 4
	maxTPMCertificateSz = 8 << 10
)

// verifyTPM checks a TPM2_Certify attestation of pub:
//   - the attestation key is trusted: pinned in opts.TPMAttestationKeys, or
//     certified by a chain to opts.TPMRoots;
//   - its signature over the statement verifies;
//   - the statement is a TPM-generated certification of the object whose
//     public area is KeyPublic, which is pub;
//   - that object is an Airlock key: fixedTPM, fixedParent,
//     sensitiveDataOrigin, not userWithAuth, and its authPolicy is
//     PolicyAuthValue, after PolicyPCR over the PCR selection and digest
//     that the statement's extraData records (keypolicy).
func verifyTPM(att *hsm.Attestation, pub crypto.PublicKey, opts Options) (*Facts, error) {
	for _, f := range []struct {
		name string
		b    []byte
		max  int
	}{
		{"statement", att.Statement, maxTPMStatementLen},
		{"signature", att.Signature, maxTPMSignatureLen},
		{"attestation key", att.AttestationKey, maxTPMPublicLen},
		{"key public area", att.KeyPublic, maxTPMPublicLen},
	} {
		if len(f.b) == 0 {
			return nil, fmt.Errorf("tpm attestation: %s is missing", f.name)
		}
		if len(f.b) > f.max {
			return nil, fmt.Errorf("tpm attestation: %s is %d bytes, over the %d-byte cap", f.name, len(f.b), f.max)
		}
	}
	if len(att.Certificates) > maxTPMCertificates {
		return nil, fmt.Errorf("tpm attestation: %d certificates, over the cap of %d", len(att.Certificates), maxTPMCertificates)
	}

	akPub, err := parseTPM[tpm2.TPMTPublic]("attestation key", att.AttestationKey)
	if err != nil {
		return nil, err
	}
	ak, err := tpmAttestationKey(akPub)
	if err != nil {
		return nil, err
	}
	issuer, err := trustTPMAttestationKey(ak, att.Certificates, opts)
	if err != nil {
		return nil, err
	}

	sig, err := parseTPM[tpm2.TPMTSignature]("signature", att.Signature)
	if err != nil {
		return nil, err
	}
	if err := verifyTPMSignature(ak, sig, att.Statement); err != nil {
		return nil, err
	}

	stmt, err := parseTPM[tpm2.TPMSAttest]("statement", att.Statement)
	if err != nil {
		return nil, err
	}
	if stmt.Magic != tpm2.TPMGeneratedValue {
		return nil, fmt.Errorf("tpm attestation: statement magic is 0x%08x, not TPM_GENERATED", uint32(stmt.Magic))
	}
	if stmt.Type != tpm2.TPMSTAttestCertify {
		return nil, fmt.Errorf("tpm attestation: statement type is 0x%04x, want TPM_ST_ATTEST_CERTIFY (0x%04x)", uint16(stmt.Type), uint16(tpm2.TPMSTAttestCertify))
	}
	certified, err := stmt.Attested.Certify()
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: statement: %w", err)
	}

	keyPub, err := parseTPM[tpm2.TPMTPublic]("key public area", att.KeyPublic)
	if err != nil {
		return nil, err
	}
	name, err := tpmObjectName(keyPub)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(name, certified.Name.Buffer) {
		return nil, errors.New("tpm attestation: the statement certifies another key than the key public area it carries")
	}
	pcrs, err := checkTPMKey(keyPub, stmt.ExtraData.Buffer)
	if err != nil {
		return nil, err
	}
	keyCrypto, err := tpm2.Pub(*keyPub)
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: key public area: %w", err)
	}
	want, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !want.Equal(keyCrypto) {
		return nil, errors.New("tpm attestation: the attested key is not this public key")
	}
	return &Facts{
		Format:    hsm.AttestationTPM2Certify,
		Hardware:  true,
		PINPolicy: "always",
		PCRs:      pcrs,
		Issuer:    issuer,
	}, nil
}

// parseTPM unmarshals a TPM structure strictly: it must re-marshal to
// exactly the input (no trailing bytes, no non-canonical forms). Malformed
// input is an error, never a panic.
func parseTPM[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](what string, b []byte) (v *T, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("tpm attestation: %s is malformed", what)
		}
	}()
	v, err = tpm2.Unmarshal[T, P](b)
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: %s: %w", what, err)
	}
	if !bytes.Equal(tpm2.Marshal(*v), b) {
		return nil, fmt.Errorf("tpm attestation: %s is not in canonical form or has trailing bytes", what)
	}
	return v, nil
}

// tpmAttestationKey checks the attestation key is a restricted ECDSA
// signing key created in a TPM, and returns its public key.
func tpmAttestationKey(p *tpm2.TPMTPublic) (*ecdsa.PublicKey, error) {
	a := p.ObjectAttributes
	if !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.SensitiveDataOrigin {
		return nil, errors.New("tpm attestation: the attestation key is not a restricted signing key generated in a tpm")
	}
	if p.Type != tpm2.TPMAlgECC {
		return nil, errors.New("tpm attestation: the attestation key is not an ecc key (only ecdsa attestation keys are supported)")
	}
	pub, err := tpm2.Pub(*p)
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: attestation key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("tpm attestation: the attestation key is not an ecdsa key")
	}
	return ec, nil
}

// trustTPMAttestationKey returns the issuer name of a trusted attestation
// key: its fingerprint when pinned, the root's subject when certified.
func trustTPMAttestationKey(ak *ecdsa.PublicKey, certs [][]byte, opts Options) (string, error) {
	fingerprint, err := TPMAttestationKeyFingerprint(ak)
	if err != nil {
		return "", fmt.Errorf("tpm attestation: %w", err)
	}
	for _, k := range opts.TPMAttestationKeys {
		if ak.Equal(k) {
			return fingerprint, nil
		}
	}
	if opts.TPMRoots != nil && len(certs) > 0 {
		leaf, err := x509.ParseCertificate(certs[0])
		if err != nil {
			return "", fmt.Errorf("tpm attestation: attestation key certificate: %w", err)
		}
		if !ak.Equal(leaf.PublicKey) {
			return "", errors.New("tpm attestation: the attestation key certificate is for another key")
		}
		inter := x509.NewCertPool()
		for i, c := range certs[1:] {
			if len(c) > maxTPMCertificateSz {
				return "", fmt.Errorf("tpm attestation: certificate %d is %d bytes, over the %d-byte cap", i+1, len(c), maxTPMCertificateSz)
			}
			ic, err := x509.ParseCertificate(c)
			if err != nil {
				return "", fmt.Errorf("tpm attestation: certificate %d: %w", i+1, err)
			}
			inter.AddCert(ic)
		}
		chains, err := leaf.Verify(x509.VerifyOptions{
			Roots:         opts.TPMRoots,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return "", fmt.Errorf("tpm attestation: attestation key certificate: %w", err)
		}
		root := chains[0][len(chains[0])-1]
		return root.Subject.String(), nil
	}
	return "", fmt.Errorf("tpm attestation: attestation key %s is not trusted: pin it with --tpm-ak (the appliance's attestation key, as airlock key attestation-key printed it at provisioning)", fingerprint)
}

// TPMAttestationKeyFingerprint names a TPM attestation key as Facts.Issuer
// does: "tpm-ak:sha256:" and the hex SHA-256 of its PKIX encoding. An
// appliance shows it when it pins its attestation key.
func TPMAttestationKeyFingerprint(ak crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(ak)
	if err != nil {
		return "", fmt.Errorf("attestation key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "tpm-ak:sha256:" + hex.EncodeToString(sum[:]), nil
}

func verifyTPMSignature(ak *ecdsa.PublicKey, sig *tpm2.TPMTSignature, statement []byte) error {
	if sig.SigAlg != tpm2.TPMAlgECDSA {
		return fmt.Errorf("tpm attestation: signature algorithm is 0x%04x, want ecdsa", uint16(sig.SigAlg))
	}
	ec, err := sig.Signature.ECDSA()
	if err != nil {
		return fmt.Errorf("tpm attestation: signature: %w", err)
	}
	if ec.Hash != tpm2.TPMAlgSHA256 {
		return fmt.Errorf("tpm attestation: signature hash is 0x%04x, want sha-256", uint16(ec.Hash))
	}
	d := sha256.Sum256(statement)
	r := new(big.Int).SetBytes(ec.SignatureR.Buffer)
	s := new(big.Int).SetBytes(ec.SignatureS.Buffer)
	if !ecdsa.Verify(ak, d[:], r, s) {
		return errors.New("tpm attestation: the attestation key's signature over the statement does not verify")
	}
	return nil
}

// tpmObjectName is the TPM Name of a public area: nameAlg || H(public).
func tpmObjectName(p *tpm2.TPMTPublic) (name []byte, err error) {
	defer func() {
		if recover() != nil {
			name, err = nil, errors.New("tpm attestation: key public area is malformed")
		}
	}()
	if p.NameAlg != tpm2.TPMAlgSHA256 {
		return nil, fmt.Errorf("tpm attestation: key name algorithm is 0x%04x, want sha-256", uint16(p.NameAlg))
	}
	n, err := tpm2.ObjectName(p)
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: key name: %w", err)
	}
	return n.Buffer, nil
}

// checkTPMKey checks the certified key has an Airlock key's attributes and
// policy and returns the PCRs its policy binds it to.
func checkTPMKey(p *tpm2.TPMTPublic, extraData []byte) ([]int, error) {
	a := p.ObjectAttributes
	switch {
	case !a.FixedTPM:
		return nil, errors.New("tpm attestation: the key is not fixedTPM (it could leave the tpm)")
	case !a.FixedParent:
		return nil, errors.New("tpm attestation: the key is not fixedParent (it could be duplicated)")
	case !a.SensitiveDataOrigin:
		return nil, errors.New("tpm attestation: the key was not generated in the tpm (sensitiveDataOrigin clear)")
	case a.UserWithAuth:
		return nil, errors.New("tpm attestation: the key is userWithAuth (it could sign without its policy)")
	case !a.SignEncrypt || a.Decrypt || a.Restricted:
		return nil, errors.New("tpm attestation: the key is not an unrestricted signing key")
	}
	if p.Type != tpm2.TPMAlgECC {
		return nil, errors.New("tpm attestation: the key is not an ecc key")
	}
	pcrs, pcrDigest, err := keypolicy.ParseExtraData(extraData)
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: %w", err)
	}
	policy, err := keypolicy.PolicyDigest(pcrs, pcrDigest)
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: %w", err)
	}
	if !bytes.Equal(policy, p.AuthPolicy.Buffer) {
		return nil, errors.New("tpm attestation: the key's policy is not PolicyAuthValue (after the recorded PolicyPCR); its pin policy cannot be shown")
	}
	return pcrs, nil
}
