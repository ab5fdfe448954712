package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Software keys are for development and for testing the layers above the
// signing boundary. They are stored unencrypted, marked development-only in
// the file itself, and the appliance refuses them unless started in
// development mode.

const (
	pemType          = "PRIVATE KEY"
	pemHeaderUse     = "Airlock-Key"
	pemHeaderUseDev  = "development-only"
	pemHeaderHolder  = "Airlock-Holder"
	maxKeyFileBytes  = 64 << 10
	maxHolderNameLen = 128
)

// Algorithm of a software key.
type Algorithm string

const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	Ed25519   Algorithm = "ed25519"
)

// GenerateFileKey writes a new development key to path, which must not exist
// (O_EXCL, mode 0600), and returns its signer.
func GenerateFileKey(path string, alg Algorithm, holder string, rnd io.Reader) (Signer, error) {
	if err := checkHolder(holder); err != nil {
		return nil, err
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	var priv crypto.Signer
	var err error
	switch alg {
	case ECDSAP256, "":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rnd)
	case Ed25519:
		_, priv, err = ed25519.GenerateKey(rnd)
	default:
		return nil, fmt.Errorf("key algorithm %q: want %s or %s", alg, ECDSAP256, Ed25519)
	}
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	block := &pem.Block{Type: pemType, Headers: map[string]string{pemHeaderUse: pemHeaderUseDev}, Bytes: der}
	if holder != "" {
		block.Headers[pemHeaderHolder] = holder
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	return &fileSigner{uri: URI{Kind: KindFile, Path: path}, priv: priv, holder: holder}, nil
}

func checkHolder(holder string) error {
	if len(holder) > maxHolderNameLen {
		return fmt.Errorf("holder name is %d bytes, over the %d-byte cap", len(holder), maxHolderNameLen)
	}
	for _, r := range holder {
		if r < 0x20 || r == 0x7f || r == '\n' {
			return errors.New("holder name has a control character")
		}
	}
	return nil
}

func openFile(_ context.Context, uri URI, _ Prompter) (Signer, error) {
	return LoadFileKey(uri.Path)
}

// LoadFileKey reads a development key written by GenerateFileKey (or any
// unencrypted PKCS#8 ECDSA P-256 or Ed25519 key).
func LoadFileKey(path string) (Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("key file %s: %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(os.Stderr, "airlock: warning: key file %s is readable by others (mode %o); chmod 600 it\n", path, st.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("key file %s is over the %d-byte cap", path, maxKeyFileBytes)
	}
	return parseFileKey(path, data)
}

func parseFileKey(path string, data []byte) (Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != pemType {
		return nil, fmt.Errorf("key file %s: not a PEM %q block", path, pemType)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("key file %s: trailing data after the key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	holder := block.Headers[pemHeaderHolder]
	if err := checkHolder(holder); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	var priv crypto.Signer
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key file %s: ecdsa curve %s, want P-256", path, k.Curve.Params().Name)
		}
		priv = k
	case ed25519.PrivateKey:
		priv = k
	default:
		return nil, fmt.Errorf("key file %s: key type %T, want ECDSA P-256 or Ed25519", path, k)
	}
	return &fileSigner{uri: URI{Kind: KindFile, Path: path}, priv: priv, holder: holder}, nil
}

type fileSigner struct {
	uri    URI
	priv   crypto.Signer
	holder string
}

var _ Signer = (*fileSigner)(nil)

func (s *fileSigner) Public() crypto.PublicKey { return s.priv.Public() }
func (s *fileSigner) URI() URI                 { return s.uri }
func (s *fileSigner) Kind() Kind               { return KindFile }
func (s *fileSigner) Holder() string           { return s.holder }
func (s *fileSigner) Attestation() *Attestation {
	return nil
}

// Sign validates opts against the key type before signing.
func (s *fileSigner) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	switch s.priv.(type) {
	case *ecdsa.PrivateKey:
		if opts == nil || opts.HashFunc() != crypto.SHA256 {
			return nil, fmt.Errorf("ecdsa p-256 key signs sha-256 digests, got hash %v", hashOf(opts))
		}
		if len(digest) != crypto.SHA256.Size() {
			return nil, fmt.Errorf("digest is %d bytes, want %d", len(digest), crypto.SHA256.Size())
		}
	case ed25519.PrivateKey:
		if opts != nil && opts.HashFunc() != crypto.Hash(0) {
			return nil, fmt.Errorf("ed25519 key signs whole messages, got hash %v", opts.HashFunc())
		}
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	return s.priv.Sign(rnd, digest, opts)
}

func hashOf(opts crypto.SignerOpts) any {
	if opts == nil {
		return "none"
	}
	return opts.HashFunc()
}
