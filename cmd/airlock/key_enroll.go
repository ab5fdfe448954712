package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/piv" // also registers yubikey: URIs with hsm.Open
	"airlock.dev/airlock/hsm/tpm" // also registers tpm: URIs with hsm.Open
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/tuf"
)

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
	confirmSerial := fs.String("confirm-serial", "", "yubikey, automation only: the card's serial, typed as the confirmation --really-overwrite-slot asks for")
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
		if *confirmSerial != "" && !*overwrite {
			return cli.Usagef("--confirm-serial goes with --really-overwrite-slot")
		}
		s, err = enrollYubiKey(ctx, uint32(*serial), *slot, *holder, *overwrite, *confirmSerial, *pinFile, mgmt, stderr)
		clear(mgmt)
	case "tpm":
		for _, n := range []string{"serial", "slot", "really-overwrite-slot", "confirm-serial", "management-key"} {
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

func enrollYubiKey(ctx context.Context, serial uint32, slot, holder string, overwrite bool, confirmSerial, pinFile string, mgmt []byte, stderr io.Writer) (hsm.Signer, error) {
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
			want := strconv.FormatUint(uint64(serial), 10)
			if confirmSerial != "" {
				if confirmSerial != want {
					return fmt.Errorf("--confirm-serial %s is not this card's serial; nothing was changed: %w", confirmSerial, hsm.ErrCancelled)
				}
				return nil
			}
			return confirmTyped(stderr, fmt.Sprintf("%s. Type the serial number %d to destroy it: ", desc, serial), want)
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
