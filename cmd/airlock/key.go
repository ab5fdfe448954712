package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/term"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/piv" // also registers yubikey: URIs with hsm.Open
	"airlock.dev/airlock/hsm/tpm" // also registers tpm: URIs with hsm.Open
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/tuf"
)

const keyUsage = `usage: airlock key generate --dev --holder NAME [--alg ecdsa-p256|ed25519] --out FILE
       airlock key public --key URI
       airlock key list [--tpm DEVICE] [--json]
       airlock key enroll --kind yubikey [--holder NAME] [--serial N] [--slot 9c]
           [--really-overwrite-slot] [--management-key HEX|@FILE] [--out KEY.json]
       airlock key enroll --kind tpm [--holder NAME] [--tpm-device DEVICE]
           [--handle 0x81000010] [--pcrs 0,7] [--out KEY.json]
       airlock key verify-attestation KEY.json [--yubico-roots PEM] [--tpm-ak AK.pem]
           [--require-hardware] [--require-pin-always] [--require-touch-always] [--json]
       airlock key attestation-key --tpm DEVICE [--out AK.pem]

generate writes a development-only software key (refused by the appliance
outside development mode) and prints its TUF public key. public prints the
TUF public key of any key URI, with holder, kind and attestation, ready for
airlock init and airlock delegate --key KEY.json.

list shows the YubiKeys present (serial, firmware) and the persistent keys of
a TPM (default /dev/tpmrm0 when it exists).

enroll generates a new key in hardware and prints its TUF public key with
x-airlock-holder, x-airlock-kind and x-airlock-attestation. A YubiKey key is
an ECDSA P-256 key in a PIV slot with PIN policy "always" and touch policy
"always"; you are asked for the card's PIN once and must touch the key when
it blinks. A TPM key is bound to a new PIN you type twice, and optionally to
PCRs. PINs are asked for on the terminal, never taken from the command line;
for automation only, --pin-file FILE (or AIRLOCK_PIN_FILE) gives a file whose
first line is the PIN.

verify-attestation checks a key's hardware attestation (YubiKey: chain to
Yubico's roots; TPM: certified by a pinned attestation key) and prints what it
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
		return cli.Usagef("airlock key needs a subcommand: generate, public, list, enroll, verify-attestation, attestation-key")
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
	case "verify-attestation":
		return keyVerifyAttestation(args[1:], stdout, stderr)
	case "attestation-key":
		return keyAttestationKey(ctx, args[1:], stdout, stderr)
	default:
		return cli.Usagef("unknown key subcommand %q (generate, public, list, enroll, verify-attestation, attestation-key)", args[0])
	}
}

func keyGenerate(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock key generate", keyUsage, stderr)
	dev := fs.Bool("dev", false, "acknowledge this is a development-only software key")
	holder := fs.String("holder", "", "the key holder's name")
	alg := fs.String("alg", string(hsm.ECDSAP256), "ecdsa-p256 or ed25519")
	out := fs.String("out", "", "key file to create (mode 0600, must not exist)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if !*dev {
		return cli.Usagef("software keys are for development only: pass --dev to say so; production keys live in a YubiKey or the appliance's TPM")
	}
	if *out == "" {
		return cli.Usagef("--out is required")
	}
	s, err := hsm.GenerateFileKey(*out, hsm.Algorithm(*alg), *holder, nil)
	if err != nil {
		return err
	}
	return printKey(stdout, s)
}

func keyPublic(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock key public", keyUsage, stderr)
	uri := fs.String("key", "", "key URI")
	pinFile := fs.String("pin-file", "", "automation only: file whose first line is the PIN")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *uri == "" {
		return cli.Usagef("--key URI is required")
	}
	p, err := keyPrompter(*pinFile, stderr)
	if err != nil {
		return err
	}
	ks, err := cli.OpenKeys(ctx, []string{*uri}, p)
	if err != nil {
		return err
	}
	defer closeSigner(ks[0])
	return printKey(stdout, ks[0])
}

func printKey(w io.Writer, s hsm.Signer) error {
	k, err := tuf.KeyFromSigner(s)
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", raw)
	return err
}

func closeSigner(s hsm.Signer) {
	if c, ok := s.(hsm.Closer); ok {
		c.Close()
	}
}

// listing is what airlock key list --json prints.
type listing struct {
	YubiKeys     []listedCard `json:"yubikeys"`
	YubiKeyError string       `json:"yubikey_error,omitempty"`
	TPMDevice    string       `json:"tpm_device,omitempty"`
	TPMKeys      []listedTPM  `json:"tpm_keys,omitempty"`
	TPMError     string       `json:"tpm_error,omitempty"`
}

type listedCard struct {
	Serial   uint32 `json:"serial"`
	Firmware string `json:"firmware"`
	Reader   string `json:"reader"`
	URI      string `json:"uri"`
}

type listedTPM struct {
	Handle  string `json:"handle"`
	URI     string `json:"uri"`
	Airlock bool   `json:"airlock"`
	Holder  string `json:"holder,omitempty"`
	PCRs    []int  `json:"pcrs,omitempty"`
	Note    string `json:"note,omitempty"`
}

func keyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock key list", keyUsage, stderr)
	dev := fs.String("tpm", "", "TPM device: /dev/tpmrm0, tcp:HOST:PORT or unix:/PATH (swtpm) (default /dev/tpmrm0 when present)")
	asJSON := fs.Bool("json", false, "print the listing as JSON")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	var l listing
	cards, err := piv.List(ctx)
	if err != nil {
		l.YubiKeyError = err.Error()
	}
	l.YubiKeys = []listedCard{}
	for _, c := range cards {
		u := hsm.URI{Kind: hsm.KindYubiKey, Serial: c.Serial, Slot: "9c"}
		l.YubiKeys = append(l.YubiKeys, listedCard{Serial: c.Serial, Firmware: c.Firmware, Reader: c.Reader, URI: u.String()})
	}
	explicit := *dev != ""
	l.TPMDevice = *dev
	if !explicit {
		if _, err := os.Stat(tpm.DefaultDevice); err == nil {
			l.TPMDevice = tpm.DefaultDevice
		}
	}
	if l.TPMDevice != "" {
		keys, err := tpm.List(ctx, l.TPMDevice)
		if err != nil {
			if explicit {
				return fmt.Errorf("listing tpm keys: %w", err)
			}
			l.TPMError = err.Error()
		}
		for _, k := range keys {
			l.TPMKeys = append(l.TPMKeys, listedTPM{
				Handle: fmt.Sprintf("0x%08x", k.Handle), URI: k.URI.String(),
				Airlock: k.Airlock, Holder: k.Holder, PCRs: k.PCRs, Note: k.Note,
			})
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(l)
	}
	switch {
	case l.YubiKeyError != "":
		fmt.Fprintf(stdout, "yubikeys: cannot list: %s\n", l.YubiKeyError)
	case len(l.YubiKeys) == 0:
		fmt.Fprintln(stdout, "yubikeys: none present")
	default:
		fmt.Fprintln(stdout, "yubikeys:")
		for _, c := range l.YubiKeys {
			fmt.Fprintf(stdout, "  serial %d  firmware %s  reader %q  %s\n", c.Serial, c.Firmware, c.Reader, c.URI)
		}
	}
	switch {
	case l.TPMDevice == "":
		fmt.Fprintf(stdout, "tpm: no %s on this machine (name one with --tpm)\n", tpm.DefaultDevice)
	case l.TPMError != "":
		fmt.Fprintf(stdout, "tpm %s: cannot list: %s\n", l.TPMDevice, l.TPMError)
	case len(l.TPMKeys) == 0:
		fmt.Fprintf(stdout, "tpm %s: no persistent keys\n", l.TPMDevice)
	default:
		fmt.Fprintf(stdout, "tpm %s:\n", l.TPMDevice)
		for _, k := range l.TPMKeys {
			line := fmt.Sprintf("  %s  %s", k.Handle, k.Note)
			if k.Airlock {
				line += fmt.Sprintf("  holder %q", k.Holder)
				if len(k.PCRs) > 0 {
					line += "  pcrs " + joinInts(k.PCRs)
				}
				line += "  " + k.URI
			}
			fmt.Fprintln(stdout, line)
		}
	}
	return nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// maxPCR is the highest PCR index a PC-client TPM has.
const maxPCR = 23

// parsePCRs parses a PCR list such as "0,7": distinct indexes 0–23.
func parsePCRs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxPCR+1 {
		return nil, fmt.Errorf("--pcrs %q: at most %d pcrs", s, maxPCR+1)
	}
	seen := map[int]bool{}
	var out []int
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > maxPCR {
			return nil, fmt.Errorf("--pcrs %q: %q is not a pcr index 0-%d", s, p, maxPCR)
		}
		if seen[n] {
			return nil, fmt.Errorf("--pcrs %q: pcr %d given twice", s, n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

func keyEnroll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock key enroll", keyUsage, stderr)
	kind := fs.String("kind", "", "yubikey or tpm")
	holder := fs.String("holder", "", "the key holder's name")
	out := fs.String("out", "", "also write the TUF public key to this file (must not exist)")
	pinFile := fs.String("pin-file", "", "automation only: file whose first line is the PIN (default $"+pinFileEnv+")")
	serial := fs.Uint("serial", 0, "yubikey: serial of the card (needed when several are present)")
	slot := fs.String("slot", "9c", "yubikey: piv slot")
	overwrite := fs.Bool("really-overwrite-slot", false, "yubikey: destroy the key already in the slot and make a new one")
	mgmtFlag := fs.String("management-key", "", "yubikey: the card's management key when another tool set it: 48 hex digits, or @FILE holding them")
	tpmDev := fs.String("tpm-device", "", "tpm: device (/dev/tpmrm0, tcp:HOST:PORT or unix:/PATH for swtpm) (default /dev/tpmrm0)")
	handle := fs.String("handle", fmt.Sprintf("0x%08x", defaultTPMHandle), "tpm: persistent handle for the key")
	pcrs := fs.String("pcrs", "", "tpm: bind the key to these PCRs' current values, e.g. 0,7")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var s hsm.Signer
	var err error
	switch *kind {
	case "yubikey":
		for _, n := range []string{"tpm-device", "handle", "pcrs"} {
			if set[n] {
				return cli.Usagef("--%s is for --kind tpm", n)
			}
		}
		if *serial > 0xffffffff {
			return cli.Usagef("--serial %d is not a yubikey serial", *serial)
		}
		mgmt, merr := parseManagementKey(*mgmtFlag)
		if merr != nil {
			return merr
		}
		s, err = enrollYubiKey(ctx, uint32(*serial), *slot, *holder, *overwrite, *pinFile, mgmt, stderr)
		clear(mgmt)
	case "tpm":
		for _, n := range []string{"serial", "slot", "really-overwrite-slot", "management-key"} {
			if set[n] {
				return cli.Usagef("--%s is for --kind yubikey", n)
			}
		}
		h, perr := strconv.ParseUint(*handle, 0, 32)
		if perr != nil {
			return cli.Usagef("--handle %q: want a persistent handle such as 0x81000010", *handle)
		}
		list, perr := parsePCRs(*pcrs)
		if perr != nil {
			return cli.Usagef("%v", perr)
		}
		s, err = enrollTPM(ctx, *tpmDev, uint32(h), list, *holder, *pinFile, stderr)
	case "":
		return cli.Usagef("--kind yubikey or --kind tpm is required")
	default:
		return cli.Usagef("--kind %q: want yubikey or tpm", *kind)
	}
	if err != nil {
		return err
	}
	defer closeSigner(s)
	k, err := tuf.KeyFromSigner(s)
	if err != nil {
		return err
	}
	id, err := tuf.KeyID(k)
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	if *out != "" {
		if err := writeNewFile(*out, raw, 0o644); err != nil {
			return err
		}
	}
	if _, err := stdout.Write(raw); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "airlock key enroll: %s enrolled for %q, key id %s\n", s.URI(), s.Holder(), id)
	if *out != "" {
		fmt.Fprintf(stderr, "airlock key enroll: public key written to %s; use it with airlock init --root-key or airlock delegate --key %s\n", *out, *out)
	}
	return nil
}

// maxManagementKeyFile caps a --management-key @FILE.
const maxManagementKeyFile = 1024

// parseManagementKey reads --management-key: hex digits, or @FILE holding
// them. An empty flag gives nil (the key stored on the card, or the default).
func parseManagementKey(v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	src := "--management-key"
	if name, ok := strings.CutPrefix(v, "@"); ok {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("--management-key: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxManagementKeyFile+1))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--management-key: reading %s: %w", name, err)
		}
		if len(b) > maxManagementKeyFile {
			return nil, cli.Usagef("--management-key: %s is over %d bytes; it should hold only the key in hex", name, maxManagementKeyFile)
		}
		v, src = strings.TrimSpace(string(b)), "--management-key file "+name
	}
	k, err := hex.DecodeString(v)
	if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
		return nil, cli.Usagef("%s: want 32, 48 or 64 hex digits (an AES-128, 3DES/AES-192 or AES-256 key)", src)
	}
	return k, nil
}

func enrollYubiKey(ctx context.Context, serial uint32, slot, holder string, overwrite bool, pinFile string, mgmt []byte, stderr io.Writer) (hsm.Signer, error) {
	if serial == 0 {
		cards, err := piv.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing yubikeys: %w", err)
		}
		switch len(cards) {
		case 0:
			return nil, errors.New("no yubikey present: insert the key to enrol and try again")
		case 1:
			serial = cards[0].Serial
		default:
			var ss []string
			for _, c := range cards {
				ss = append(ss, strconv.FormatUint(uint64(c.Serial), 10))
			}
			return nil, cli.Usagef("%d yubikeys are present (%s): choose one with --serial", len(cards), strings.Join(ss, ", "))
		}
	}
	p, err := keyPrompter(pinFile, stderr)
	if err != nil {
		return nil, err
	}
	uri, err := hsm.ParseURI(fmt.Sprintf("yubikey:serial=%d;slot=%s", serial, slot))
	if err != nil {
		return nil, cli.Usagef("%v", err)
	}
	// Look at the slot first, so that a key is never destroyed by accident:
	// opening needs no PIN.
	existing, err := hsm.Open(ctx, uri, p)
	switch {
	case err == nil:
		desc := fmt.Sprintf("slot %s of yubikey %d already holds a key", uri.Slot, serial)
		if h := existing.Holder(); h != "" {
			desc += fmt.Sprintf(" (holder %q)", h)
		}
		closeSigner(existing)
		if !overwrite {
			return nil, fmt.Errorf("%s; enrolling destroys it: pass --really-overwrite-slot to replace it", desc)
		}
	case errors.Is(err, hsm.ErrNotFound):
		// An empty slot, or no such card: Enroll says which.
	default:
		return nil, err
	}
	fmt.Fprintf(stderr, "airlock key enroll: enter the PIN of yubikey %d, then touch the key when it blinks\n", serial)
	e, err := piv.Enroll(ctx, serial, piv.EnrollOptions{
		Holder: holder, Slot: uri.Slot, Prompter: p, ReallyOverwriteExistingKey: overwrite, ManagementKey: mgmt,
		ConfirmOverwrite: func(desc string) error {
			if _, auto := p.(*filePrompter); auto {
				return nil
			}
			return confirmTyped(stderr, fmt.Sprintf("%s. Type the serial number %d to destroy it: ", desc, serial), strconv.FormatUint(uint64(serial), 10))
		},
	})
	if err != nil {
		return nil, err
	}
	return e.Signer, nil
}

func enrollTPM(ctx context.Context, dev string, handle uint32, pcrs []int, holder, pinFile string, stderr io.Writer) (hsm.Signer, error) {
	if handle < 0x81000000 || handle > 0x81ffffff {
		return nil, cli.Usagef("--handle 0x%08x is not a persistent handle (0x81000000-0x81ffffff)", handle)
	}
	p, err := keyPrompter(pinFile, stderr)
	if err != nil {
		return nil, err
	}
	uri := hsm.URI{Kind: hsm.KindTPM, Handle: handle, Device: dev}
	var pin []byte
	if fp, ok := p.(*filePrompter); ok {
		pin = bytes.Clone(fp.pin)
	} else {
		pin, err = readNewPIN(uri.String())
		if err != nil {
			return nil, err
		}
	}
	defer clear(pin)
	e, err := tpm.Enroll(ctx, dev, tpm.EnrollOptions{Handle: handle, PIN: pin, PCRs: pcrs, Holder: holder})
	if err != nil {
		return nil, fmt.Errorf("enrol %s: %w", uri, err)
	}
	return hsm.Open(ctx, e.URI, p)
}

// readNewPIN asks for a new PIN twice on the terminal.
func readNewPIN(what string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("a new pin is needed for %s but there is no terminal to ask on (for automation only: --pin-file): %w", what, hsm.ErrCancelled)
	}
	defer tty.Close()
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(tty, prompt)
		pin, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("read pin: %w", err)
		}
		return pin, nil
	}
	first, err := ask(fmt.Sprintf("new PIN for %s (%d to %d characters): ", what, tpm.MinPINLen, tpm.MaxPINLen))
	if err != nil {
		return nil, err
	}
	if len(first) == 0 {
		return nil, hsm.ErrCancelled
	}
	if len(first) < tpm.MinPINLen || len(first) > tpm.MaxPINLen {
		clear(first)
		return nil, fmt.Errorf("the pin must be %d to %d characters; run enroll again", tpm.MinPINLen, tpm.MaxPINLen)
	}
	second, err := ask("type the new PIN again: ")
	if err != nil {
		clear(first)
		return nil, err
	}
	defer clear(second)
	if !bytes.Equal(first, second) {
		clear(first)
		return nil, errors.New("the two pins differ; nothing was enrolled, run enroll again")
	}
	return first, nil
}

// confirmTyped asks on the terminal for an exact typed answer.
func confirmTyped(stderr io.Writer, prompt, want string) error {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("destroying a key needs a typed confirmation but there is no terminal to ask on: %w", hsm.ErrCancelled)
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	line, err := bufio.NewReader(io.LimitReader(tty, maxConfirmBytes)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read confirmation: %w", err)
	}
	if strings.TrimSpace(line) != want {
		return fmt.Errorf("confirmation did not match; nothing was changed: %w", hsm.ErrCancelled)
	}
	return nil
}

// keyPrompter returns the terminal prompter, or a PIN-file prompter when a
// PIN file is named by flag or environment (automation only).
func keyPrompter(pinFile string, stderr io.Writer) (hsm.Prompter, error) {
	if pinFile == "" {
		pinFile = os.Getenv(pinFileEnv)
	}
	if pinFile == "" {
		return cli.TerminalPrompter{Out: stderr}, nil
	}
	return newFilePrompter(pinFile, stderr)
}

// filePrompter answers PIN prompts from a file, for automation. It never
// retries: once the device reports fewer retries than at the previous
// prompt (the file's PIN was refused), it cancels.
type filePrompter struct {
	file string
	pin  []byte
	out  io.Writer

	mu   sync.Mutex
	last map[string]int
}

func newFilePrompter(file string, stderr io.Writer) (*filePrompter, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("pin file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pin file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("pin file %s is not a regular file", file)
	}
	if st.Mode().Perm()&0o004 != 0 {
		fmt.Fprintf(stderr, "warning: pin file %s is readable by everyone; chmod 600 it\n", file)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxPINFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("pin file: %w", err)
	}
	defer clear(raw)
	pin, err := parsePINFile(raw)
	if err != nil {
		return nil, fmt.Errorf("pin file %s: %w", file, err)
	}
	return &filePrompter{file: file, pin: pin, out: stderr, last: map[string]int{}}, nil
}

// parsePINFile returns the first line of a PIN file.
func parsePINFile(raw []byte) ([]byte, error) {
	if len(raw) > maxPINFileBytes {
		return nil, fmt.Errorf("over the %d-byte cap", maxPINFileBytes)
	}
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, errors.New("first line is empty; write the pin on it")
	}
	for _, c := range line {
		if c < 0x20 || c == 0x7f {
			return nil, errors.New("the pin has a control character")
		}
	}
	return bytes.Clone(line), nil
}

// PIN implements hsm.Prompter.
func (p *filePrompter) PIN(_ context.Context, req hsm.PINRequest) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := req.URI.String()
	if prev, ok := p.last[key]; ok && req.Retries >= 0 && prev >= 0 && req.Retries < prev {
		return nil, fmt.Errorf("the pin in %s was refused (%d tries left); not trying it again: %w", p.file, req.Retries, hsm.ErrCancelled)
	}
	p.last[key] = req.Retries
	return bytes.Clone(p.pin), nil
}

// Touch implements hsm.Prompter.
func (p *filePrompter) Touch(ctx context.Context, uri hsm.URI) func() {
	return cli.TerminalPrompter{Out: p.out}.Touch(ctx, uri)
}

var _ hsm.Prompter = (*filePrompter)(nil)

// attestationReport is what verify-attestation --json prints.
type attestationReport struct {
	KeyID  string         `json:"keyid"`
	Holder string         `json:"holder,omitempty"`
	Kind   string         `json:"kind,omitempty"`
	Facts  *attest.Facts  `json:"facts"`
	Policy *attest.Policy `json:"policy"`
}

func keyVerifyAttestation(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock key verify-attestation", keyUsage, stderr)
	rootsFile := fs.String("yubico-roots", "", "PEM file of YubiKey attestation roots to trust instead of Yubico's shipped roots")
	intersFile := fs.String("yubico-intermediates", "", "PEM file of extra YubiKey attestation intermediates")
	var aks cli.List
	fs.Var(&aks, "tpm-ak", "PEM public key of a trusted TPM attestation key (repeat)")
	var pol attest.Policy
	fs.BoolVar(&pol.RequireHardware, "require-hardware", false, "fail unless the key is attested to live in hardware")
	fs.BoolVar(&pol.RequirePINAlways, "require-pin-always", false, "fail unless every signature needs the PIN")
	fs.BoolVar(&pol.RequireTouchAlways, "require-touch-always", false, "fail unless every YubiKey signature needs a touch")
	asJSON := fs.Bool("json", false, "print the verified facts as JSON")
	if err := cli.Parse(fs, flagsFirst(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("want one KEY.json")
	}
	file := fs.Arg(0)
	k, err := readKeyFile(file)
	if err != nil {
		return err
	}
	var opts attest.Options
	if *rootsFile != "" {
		if opts.YubicoRoots, err = readCertPool(*rootsFile); err != nil {
			return err
		}
	}
	if *intersFile != "" {
		if opts.YubicoIntermediates, err = readCertPool(*intersFile); err != nil {
			return err
		}
	}
	for _, f := range aks {
		pub, err := readPublicKeyPEM(f)
		if err != nil {
			return err
		}
		opts.TPMAttestationKeys = append(opts.TPMAttestationKeys, pub)
	}
	id, err := tuf.KeyID(k)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	pub, err := k.ToPublicKey()
	if err != nil {
		return fmt.Errorf("%s: public key: %w", file, err)
	}
	att, err := tuf.Attestation(k)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	kind := tuf.KeyKind(k)
	var facts *attest.Facts
	if att == nil {
		if kind.Hardware() {
			return fmt.Errorf("%s: key says it is a %s key but carries no attestation; enrol it again", file, kind)
		}
	} else {
		want := map[hsm.Kind]string{hsm.KindYubiKey: hsm.AttestationYubiKeyPIV, hsm.KindTPM: hsm.AttestationTPM2Certify}[kind]
		if want != att.Format {
			return fmt.Errorf("%s: key says it is a %q key but its attestation is %q", file, kind, att.Format)
		}
		facts, err = attest.Verify(att, pub, opts)
		if err != nil {
			return fmt.Errorf("%s: attestation does not verify: %w", file, err)
		}
	}
	if err := pol.Check(facts); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(attestationReport{KeyID: id, Holder: tuf.Holder(k), Kind: string(kind), Facts: facts, Policy: &pol})
	}
	fmt.Fprintf(stdout, "key id:       %s\n", id)
	fmt.Fprintf(stdout, "holder:       %s\n", tuf.Holder(k))
	fmt.Fprintf(stdout, "kind:         %s\n", kind)
	if facts == nil {
		fmt.Fprintln(stdout, "attestation:  none (a software key; nothing shows where it lives)")
		return nil
	}
	fmt.Fprintf(stdout, "attestation:  %s, verified to %s\n", facts.Format, facts.Issuer)
	fmt.Fprintf(stdout, "hardware:     %t\n", facts.Hardware)
	if facts.Serial != 0 {
		fmt.Fprintf(stdout, "serial:       %d\n", facts.Serial)
	}
	if facts.Firmware != "" {
		fmt.Fprintf(stdout, "firmware:     %s\n", facts.Firmware)
	}
	if facts.PINPolicy != "" {
		fmt.Fprintf(stdout, "pin policy:   %s\n", facts.PINPolicy)
	}
	if facts.TouchPolicy != "" {
		fmt.Fprintf(stdout, "touch policy: %s\n", facts.TouchPolicy)
	}
	if facts.Format == hsm.AttestationTPM2Certify {
		pcrs := "none"
		if len(facts.PCRs) > 0 {
			pcrs = joinInts(facts.PCRs)
		}
		fmt.Fprintf(stdout, "pcrs:         %s\n", pcrs)
	}
	return nil
}

func keyAttestationKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock key attestation-key", keyUsage, stderr)
	dev := fs.String("tpm", "", "TPM device: /dev/tpmrm0, tcp:HOST:PORT or unix:/PATH (swtpm)")
	out := fs.String("out", "", "also write the PEM to this file (must not exist)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *dev == "" || fs.NArg() != 0 {
		return cli.Usagef("want --tpm DEVICE and no other argument")
	}
	pub, err := tpm.AttestationKey(ctx, *dev)
	if err != nil {
		return fmt.Errorf("tpm %s: %w", *dev, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	fp, err := attest.TPMAttestationKeyFingerprint(pub)
	if err != nil {
		return err
	}
	raw := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if *out != "" {
		if err := writeNewFile(*out, raw, 0o644); err != nil {
			return err
		}
	}
	if _, err := stdout.Write(raw); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "airlock key attestation-key: %s at 0x%08x in %s\n", fp, tpm.AKHandle, *dev)
	return nil
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
	raw, err := readCapped(file, maxPEMFileBytes)
	if err != nil {
		return nil, err
	}
	return parseCertPool(file, raw)
}

// maxPEMCerts caps the certificates of one root or intermediate file.
const maxPEMCerts = 100

// parseCertPool parses PEM certificates, nothing else: any other block, or
// text that is not PEM, is refused.
func parseCertPool(name string, raw []byte) (*x509.CertPool, error) {
	if len(raw) > maxPEMFileBytes {
		return nil, fmt.Errorf("%s is over the %d-byte cap", name, maxPEMFileBytes)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: pem block %d is %q, want CERTIFICATE", name, n+1, b.Type)
		}
		if n == maxPEMCerts {
			return nil, fmt.Errorf("%s: more than %d certificates", name, maxPEMCerts)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", name, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificates", name)
	}
	if len(bytes.TrimSpace(raw)) != 0 {
		return nil, fmt.Errorf("%s: text after certificate %d is not a PEM certificate", name, n)
	}
	return pool, nil
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
