package tuf

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
)

// Airlock's additions to TUF metadata live in unrecognized fields, which the
// specification requires clients to preserve and ignore.
const (
	// FieldHolder on a key names the person who holds it.
	FieldHolder = "x-airlock-holder"
	// FieldKind on a key says where it lives (yubikey, tpm, file).
	FieldKind = "x-airlock-kind"
	// FieldAttestation on a key carries its hardware attestation.
	FieldAttestation = "x-airlock-attestation"
	// FieldGroups on a delegated role lists its approval groups.
	FieldGroups = "x-airlock-groups"
)

// KeyFromSigner builds the TUF public key of a signer, carrying its holder,
// kind and attestation. Its key ID covers those fields.
func KeyFromSigner(s hsm.Signer) (*metadata.Key, error) {
	k, err := metadata.KeyFromPublicKey(s.Public())
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", s.URI(), err)
	}
	if k.Type == metadata.KeyTypeRSASSA_PSS_SHA256 {
		return nil, fmt.Errorf("key %s: rsa keys are not accepted; use ecdsa p-256 or ed25519", s.URI())
	}
	k.UnrecognizedFields = map[string]any{FieldKind: string(s.Kind())}
	if s.Holder() != "" {
		k.UnrecognizedFields[FieldHolder] = s.Holder()
	}
	if att := s.Attestation(); att != nil {
		raw, err := json.Marshal(att)
		if err != nil {
			return nil, err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		k.UnrecognizedFields[FieldAttestation] = v
	}
	return k, nil
}

// KeyID returns the TUF key ID of k: the SHA-256 of its canonical form.
func KeyID(k *metadata.Key) (string, error) {
	// Round-trip through JSON so that a cached id never hides a changed key.
	raw, err := json.Marshal(k)
	if err != nil {
		return "", err
	}
	var fresh metadata.Key
	if err := json.Unmarshal(raw, &fresh); err != nil {
		return "", err
	}
	return fresh.ID()
}

// Holder returns the x-airlock-holder of a key, or "".
func Holder(k *metadata.Key) string {
	if k == nil {
		return ""
	}
	s, _ := k.UnrecognizedFields[FieldHolder].(string)
	return s
}

// KeyKind returns the x-airlock-kind of a key, or "".
func KeyKind(k *metadata.Key) hsm.Kind {
	if k == nil {
		return ""
	}
	s, _ := k.UnrecognizedFields[FieldKind].(string)
	return hsm.Kind(s)
}

// Attestation returns the x-airlock-attestation of a key, or nil.
func Attestation(k *metadata.Key) (*hsm.Attestation, error) {
	if k == nil || k.UnrecognizedFields[FieldAttestation] == nil {
		return nil, nil
	}
	raw, err := json.Marshal(k.UnrecognizedFields[FieldAttestation])
	if err != nil {
		return nil, err
	}
	var att hsm.Attestation
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&att); err != nil {
		return nil, fmt.Errorf("%s: %w", FieldAttestation, err)
	}
	return &att, nil
}

// publicKey parses a TUF key into a public key and the hash its scheme uses,
// refusing keytype/scheme pairs the specification does not define.
func publicKey(k *metadata.Key) (crypto.PublicKey, crypto.Hash, error) {
	switch {
	case k.Type == metadata.KeyTypeEd25519 && k.Scheme == metadata.KeySchemeEd25519:
		pub, err := k.ToPublicKey()
		if err != nil {
			return nil, 0, err
		}
		if len(pub.(ed25519.PublicKey)) != ed25519.PublicKeySize {
			return nil, 0, errors.New("ed25519 key is not 32 bytes")
		}
		return pub, crypto.Hash(0), nil
	case (k.Type == metadata.KeyTypeECDSA_SHA2_P256 || k.Type == metadata.KeyTypeECDSA_SHA2_P256_COMPAT) && k.Scheme == metadata.KeySchemeECDSA_SHA2_P256:
		pub, err := k.ToPublicKey()
		if err != nil {
			return nil, 0, err
		}
		if pub.(*ecdsa.PublicKey).Curve != elliptic.P256() {
			return nil, 0, errors.New("ecdsa-sha2-nistp256 key is not on P-256")
		}
		return pub, crypto.SHA256, nil
	case k.Type == metadata.KeyTypeRSASSA_PSS_SHA256 && k.Scheme == metadata.KeySchemeRSASSA_PSS_SHA256:
		pub, err := k.ToPublicKey()
		if err != nil {
			return nil, 0, err
		}
		if pub.(*rsa.PublicKey).N.BitLen() < 2048 {
			return nil, 0, errors.New("rsa key is shorter than 2048 bits")
		}
		return pub, crypto.SHA256, nil
	default:
		return nil, 0, fmt.Errorf("unsupported keytype %q with scheme %q", k.Type, k.Scheme)
	}
}

// fingerprint identifies a public key independently of how TUF lists it:
// the SHA-256 of its PKIX encoding. Two key IDs for one key share it.
func fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// Fingerprint returns the public-key fingerprint of a TUF key.
func Fingerprint(k *metadata.Key) (string, error) {
	pub, _, err := publicKey(k)
	if err != nil {
		return "", err
	}
	return fingerprint(pub)
}

// verifySig checks sig over payload with key, using sigstore's verifiers as
// go-tuf does (RSA with PSS, ECDSA over SHA-256, Ed25519 over the message).
func verifySig(k *metadata.Key, payload, sig []byte) error {
	pub, hash, err := publicKey(k)
	if err != nil {
		return err
	}
	return verifyParsed(pub, hash, payload, sig)
}

func verifyParsed(pub crypto.PublicKey, hash crypto.Hash, payload, sig []byte) error {
	var v signature.Verifier
	var err error
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		v, err = signature.LoadRSAPSSVerifier(pub, hash, &rsa.PSSOptions{Hash: crypto.SHA256})
	default:
		v, err = signature.LoadVerifier(pub, hash)
	}
	if err != nil {
		return err
	}
	return v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload))
}

// signPayload signs canonical bytes with a signer the way TUF verifies them.
func signPayload(s hsm.Signer, payload []byte) ([]byte, error) {
	switch s.Public().(type) {
	case ed25519.PublicKey:
		return s.Sign(rand.Reader, payload, crypto.Hash(0))
	case *ecdsa.PublicKey:
		d := sha256.Sum256(payload)
		return s.Sign(rand.Reader, d[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("key %s: unsupported public key type %T", s.URI(), s.Public())
	}
}
