package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/tuf"
)

const keyUsage = `usage: airlock key generate --dev --holder NAME [--alg ecdsa-p256|ed25519] --out FILE
       airlock key public --key URI
       airlock key list [--tpm DEVICE] [--json]
       airlock key status [--serial N] [--tpm DEVICE] [--attestation-root PEM] [--json]
       airlock key pin change [--serial N] [--pin-file F] [--new-pin-file F]
       airlock key pin unblock [--serial N] [--puk-file F] [--new-pin-file F]
       airlock key enroll --kind yubikey [--holder NAME] [--serial N] [--slot 9c]
           [--really-overwrite-slot [--confirm-serial N]] [--management-key HEX|@FILE] [--out KEY.json]
       airlock key enroll --kind tpm [--holder NAME] [--tpm-device DEVICE]
           [--handle 0x81000010] [--pcrs 0,7] [--out KEY.json]
       airlock key verify-attestation KEY.json [--attestation-root PEM] [--yubico-roots PEM] [--tpm-ak AK.pem]
           [--require-hardware] [--require-pin-always] [--require-touch-always] [--json]
       airlock key attestation-key --tpm DEVICE [--out AK.pem]

generate writes a development-only software key (refused by the appliance
outside development mode) and prints its TUF public key. public prints the
TUF public key of any key URI, with holder, kind and attestation, ready for
airlock init and airlock delegate --key KEY.json.

list shows the YubiKeys present (serial, firmware) and the persistent keys of
a TPM (default /dev/tpmrm0 when it exists).

status shows, without asking for a PIN, each YubiKey's PIN and PUK tries
left, firmware, how its management key is kept (the factory one, or random
and stored on the card behind the PIN, as ykman sees it) and every slot that
holds a key: algorithm, PIN and touch policy, holder, whether it was
generated on the card, and whether its attestation verifies (to Yubico's
roots, or a root given with --attestation-root). For a TPM it shows the
vendor, firmware, the PIN tries left before lockout (shared by every key),
the attestation key's fingerprint and the persistent keys.

pin change sets a new YubiKey PIN (6 to 8 characters) after the current one;
pin unblock sets a new PIN with the PUK once the PIN is blocked. Each prompt
shows the tries left.

enroll generates a new key in hardware and prints its TUF public key with
x-airlock-holder, x-airlock-kind and x-airlock-attestation. A YubiKey key is
an ECDSA P-256 key in a PIV slot with PIN policy "always" and touch policy
"always"; you are asked for the card's PIN once and must touch the key when
it blinks. A TPM key is bound to a new PIN you type twice, and optionally to
PCRs. PINs are asked for on the terminal, never taken from the command line;
for automation only, --pin-file FILE (or AIRLOCK_PIN_FILE) gives a file whose
first line is the PIN.

verify-attestation checks a key's hardware attestation (YubiKey: chain to
Yubico's roots, or to a root given with --attestation-root, such as an
organisation's or another PIV vendor's; TPM: certified by a pinned
attestation key) and prints what it
says. It exits 1 with the reason when the attestation or the policy fails.

attestation-key prints the public key (PEM) of the TPM's attestation key, to
be pinned wherever TPM keys are verified (--tpm-ak).

examples:
  airlock key list
  airlock key enroll --kind yubikey --holder "Alice Example" --out alice.json
  airlock key enroll --kind tpm --holder "Bob Example" --pcrs 0,7 --out bob.json
  airlock key attestation-key --tpm /dev/tpmrm0 --out appliance-ak.pem
  airlock key verify-attestation bob.json --tpm-ak appliance-ak.pem --require-hardware --require-pin-always
`

const (
	// maxKeyFileBytes caps a TUF public key file (attestations included).
	maxKeyFileBytes = 256 << 10
	// maxPEMFileBytes caps a root certificate or attestation key PEM file.
	maxPEMFileBytes = 1 << 20
	// maxPINFileBytes caps a PIN file.
	maxPINFileBytes = 256
	// maxConfirmBytes caps a typed confirmation.
	maxConfirmBytes = 128
	// defaultTPMHandle is where airlock key enroll --kind tpm puts a key.
	defaultTPMHandle = 0x81000010
	// pinFileEnv names the environment variable that points at a PIN file.
	pinFileEnv = "AIRLOCK_PIN_FILE"
)

func cmdKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Usagef("airlock key needs a subcommand: generate, public, list, status, enroll, pin, verify-attestation, attestation-key")
	}
	switch args[0] {
	case "generate":
		return keyGenerate(args[1:], stdout, stderr)
	case "public":
		return keyPublic(ctx, args[1:], stdout, stderr)
	case "list":
		return keyList(ctx, args[1:], stdout, stderr)
	case "enroll", "enrol":
		return keyEnroll(ctx, args[1:], stdout, stderr)
	case "status":
		return keyStatus(ctx, args[1:], stdout, stderr)
	case "pin":
		return keyPIN(ctx, args[1:], stdout, stderr)
	case "verify-attestation":
		return keyVerifyAttestation(args[1:], stdout, stderr)
	case "attestation-key":
		return keyAttestationKey(ctx, args[1:], stdout, stderr)
	default:
		return cli.Usagef("unknown key subcommand %q (generate, public, list, status, enroll, pin, verify-attestation, attestation-key)", args[0])
	}
}

// readKeyFile reads a TUF public key as airlock key enroll prints it.
func readKeyFile(file string) (*metadata.Key, error) {
	raw, err := readCapped(file, maxKeyFileBytes)
	if err != nil {
		return nil, err
	}
	return parseKeyJSON(file, raw)
}

// parseKeyJSON parses a TUF public key in JSON (as airlock key public and
// airlock key enroll print it); name says where it came from.
func parseKeyJSON(name string, raw []byte) (*metadata.Key, error) {
	if len(raw) > maxKeyFileBytes {
		return nil, fmt.Errorf("%s is over the %d-byte cap", name, maxKeyFileBytes)
	}
	var k metadata.Key
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("%s: not a TUF public key: %w", name, err)
	}
	if _, err := tuf.Fingerprint(&k); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &k, nil
}

func readCapped(file string, max int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("%s is over the %d-byte cap", file, max)
	}
	return raw, nil
}

func readCertPool(file string) (*x509.CertPool, error) {
	certs, err := readCerts(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// readCerts reads a PEM file of certificates.
func readCerts(file string) ([]*x509.Certificate, error) {
	raw, err := readCapped(file, maxPEMFileBytes)
	if err != nil {
		return nil, err
	}
	return parseCerts(file, raw)
}

// maxPEMCerts caps the certificates of one root or intermediate file.
const maxPEMCerts = 100

// parseCertPool parses PEM certificates into a pool.
func parseCertPool(name string, raw []byte) (*x509.CertPool, error) {
	certs, err := parseCerts(name, raw)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCerts parses PEM certificates, nothing else: any other block, or
// text that is not PEM, is refused.
func parseCerts(name string, raw []byte) ([]*x509.Certificate, error) {
	if len(raw) > maxPEMFileBytes {
		return nil, fmt.Errorf("%s is over the %d-byte cap", name, maxPEMFileBytes)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: pem block %d is %q, want CERTIFICATE", name, len(out)+1, b.Type)
		}
		if len(out) == maxPEMCerts {
			return nil, fmt.Errorf("%s: more than %d certificates", name, maxPEMCerts)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", name, len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificates", name)
	}
	if len(bytes.TrimSpace(raw)) != 0 {
		return nil, fmt.Errorf("%s: text after certificate %d is not a PEM certificate", name, len(out))
	}
	return out, nil
}

func readPublicKeyPEM(file string) (crypto.PublicKey, error) {
	raw, err := readCapped(file, maxPEMFileBytes)
	if err != nil {
		return nil, err
	}
	return parsePublicKeyPEM(file, raw)
}

// parsePublicKeyPEM parses one PEM PUBLIC KEY block and nothing after it.
func parsePublicKeyPEM(name string, raw []byte) (crypto.PublicKey, error) {
	b, rest := pem.Decode(raw)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: want a PEM PUBLIC KEY as airlock key attestation-key prints", name)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s: text after the PEM PUBLIC KEY: give one key per file", name)
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return pub, nil
}

// writeNewFile creates file, which must not exist.
func writeNewFile(file string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// flagsFirst moves flags (and the values of non-boolean flags) before
// positional arguments, so "CMD FILE --flag" parses like "CMD --flag FILE".
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(flags, pos...)
}
