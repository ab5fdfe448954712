package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/piv" // also registers yubikey: URIs with hsm.Open
	"airlock.dev/airlock/hsm/tpm" // also registers tpm: URIs with hsm.Open
	"airlock.dev/airlock/internal/cli"
)

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
