// Package keypolicy defines the shape of an Airlock TPM signing key and of
// its certification, shared by the code that enrols keys (hsm/tpm) and the
// code that verifies their attestations offline (hsm/attest).
//
// An Airlock TPM key is an ECDSA P-256 signing key with nameAlg SHA-256 and
// the attributes fixedTPM, fixedParent, sensitiveDataOrigin, sign, and not
// userWithAuth: every use as a signer needs a policy session whose digest is
//
//	PolicyAuthValue                       (no PCRs), or
//	PolicyPCR(selection, digest), PolicyAuthValue
//
// where the authValue is the holder's PIN. The key's TPM2_Certify statement
// carries, in its extraData, the PCR selection and PCR digest the policy was
// computed from (ExtraData), so that a verifier can recompute the policy and
// compare it with the certified key's authPolicy without trusting anything
// but the hash.
//
// This package is pure Go and safe for concurrent use.
package keypolicy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
)

const (
	// MaxPCR is the highest PCR index a key may be bound to (PC client TPMs
	// have PCRs 0–23).
	MaxPCR = 23
	// pcrSelectBytes is the size of a PC client PCR bitmap.
	pcrSelectBytes = 3
	// extraMagic starts the extraData of an Airlock certification.
	extraMagic = "ALK1"
)

// PCRSelection returns the SHA-256 bank selection of the given PCRs.
func PCRSelection(pcrs []int) (tpm2.TPMLPCRSelection, error) {
	bitmap, err := pcrBitmap(pcrs)
	if err != nil {
		return tpm2.TPMLPCRSelection{}, err
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash:      tpm2.TPMAlgSHA256,
		PCRSelect: bitmap,
	}}}, nil
}

func pcrBitmap(pcrs []int) ([]byte, error) {
	bitmap := make([]byte, pcrSelectBytes)
	for _, p := range pcrs {
		if p < 0 || p > MaxPCR {
			return nil, fmt.Errorf("pcr %d is out of range 0–%d", p, MaxPCR)
		}
		if bitmap[p/8]&(1<<(p%8)) != 0 {
			return nil, fmt.Errorf("pcr %d is listed twice", p)
		}
		bitmap[p/8] |= 1 << (p % 8)
	}
	return bitmap, nil
}

func pcrsFromBitmap(bitmap []byte) []int {
	var pcrs []int
	for i := 0; i < len(bitmap)*8; i++ {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			pcrs = append(pcrs, i)
		}
	}
	return pcrs
}

// PCRDigest is the digest PolicyPCR compares against: SHA-256 over the
// concatenated values of the selected PCRs in increasing index order.
func PCRDigest(values [][]byte) []byte {
	h := sha256.New()
	for _, v := range values {
		h.Write(v)
	}
	return h.Sum(nil)
}

// PolicyDigest computes the authPolicy of an Airlock key. With no PCRs it is
// the digest of PolicyAuthValue alone; otherwise PolicyPCR over the SHA-256
// bank selection of pcrs with pcrDigest, then PolicyAuthValue.
func PolicyDigest(pcrs []int, pcrDigest []byte) ([]byte, error) {
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if len(pcrs) > 0 {
		if len(pcrDigest) != sha256.Size {
			return nil, fmt.Errorf("pcr digest is %d bytes, want %d", len(pcrDigest), sha256.Size)
		}
		sel, err := PCRSelection(pcrs)
		if err != nil {
			return nil, err
		}
		if err := (tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: pcrDigest}, Pcrs: sel}).Update(calc); err != nil {
			return nil, fmt.Errorf("policy pcr: %w", err)
		}
	} else if len(pcrDigest) != 0 {
		return nil, fmt.Errorf("pcr digest given without pcrs")
	}
	if err := (tpm2.PolicyAuthValue{}).Update(calc); err != nil {
		return nil, fmt.Errorf("policy auth value: %w", err)
	}
	return calc.Hash().Digest, nil
}

// Template is the public template of an Airlock signing key with the given
// authPolicy.
func Template(authPolicy []byte) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			UserWithAuth:        false,
			SignEncrypt:         true,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: authPolicy},
		Parameters: ecdsaP256SHA256(),
		Unique:     emptyP256Point(),
	}
}

// AKTemplate is the public template of the restricted ECDSA P-256 attestation
// key that certifies Airlock keys.
func AKTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			UserWithAuth:        true,
			NoDA:                true,
			Restricted:          true,
			SignEncrypt:         true,
		},
		Parameters: ecdsaP256SHA256(),
		Unique:     emptyP256Point(),
	}
}

// ExtraData encodes the PCR binding carried in a certification's extraData:
// "ALK1", a 3-byte PCR bitmap, and the 32-byte PCR digest when the bitmap is
// not empty.
func ExtraData(pcrs []int, pcrDigest []byte) ([]byte, error) {
	bitmap, err := pcrBitmap(pcrs)
	if err != nil {
		return nil, err
	}
	out := append([]byte(extraMagic), bitmap...)
	if len(pcrs) == 0 {
		if len(pcrDigest) != 0 {
			return nil, fmt.Errorf("pcr digest given without pcrs")
		}
		return out, nil
	}
	if len(pcrDigest) != sha256.Size {
		return nil, fmt.Errorf("pcr digest is %d bytes, want %d", len(pcrDigest), sha256.Size)
	}
	return append(out, pcrDigest...), nil
}

// ParseExtraData decodes ExtraData strictly: exact lengths, canonical form.
// The PCRs come back sorted.
func ParseExtraData(b []byte) (pcrs []int, pcrDigest []byte, err error) {
	head := len(extraMagic) + pcrSelectBytes
	if len(b) < head || !bytes.Equal(b[:len(extraMagic)], []byte(extraMagic)) {
		return nil, nil, fmt.Errorf("certification extra data is not an airlock pcr binding (want %q + pcr bitmap)", extraMagic)
	}
	pcrs = pcrsFromBitmap(b[len(extraMagic):head])
	rest := b[head:]
	switch {
	case len(pcrs) == 0 && len(rest) != 0:
		return nil, nil, fmt.Errorf("certification extra data has %d trailing bytes", len(rest))
	case len(pcrs) > 0 && len(rest) != sha256.Size:
		return nil, nil, fmt.Errorf("certification extra data carries a %d-byte pcr digest, want %d", len(rest), sha256.Size)
	}
	if len(pcrs) > 0 {
		pcrDigest = slices.Clone(rest)
	}
	return pcrs, pcrDigest, nil
}

// ecdsaP256SHA256 is the parameters of both Airlock's signing keys and the
// attestation key: ECDSA with SHA-256 on NIST P-256.
func ecdsaP256SHA256() tpm2.TPMUPublicParms {
	return tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
	})
}

// emptyP256Point is the zero unique field of a P-256 template.
func emptyP256Point() tpm2.TPMUPublicID {
	return tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
	})
}
