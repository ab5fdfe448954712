package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/piv"
	"airlock.dev/airlock/hsm/tpm"
	"airlock.dev/airlock/internal/cli"
)

// statusReport is what airlock key status --json prints.
type statusReport struct {
	YubiKeys     []cardStatus `json:"yubikeys"`
	YubiKeyError string       `json:"yubikey_error,omitempty"`
	TPM          *tpmStatus   `json:"tpm,omitempty"`
}

type cardStatus struct {
	Serial          uint32       `json:"serial"`
	Firmware        string       `json:"firmware"`
	Reader          string       `json:"reader"`
	PINRetries      int          `json:"pin_retries"`
	PINRetriesTotal int          `json:"pin_retries_total"`
	PUKRetries      int          `json:"puk_retries"`
	PUKRetriesTotal int          `json:"puk_retries_total"`
	ManagementKey   mgmtStatus   `json:"management_key"`
	Slots           []slotStatus `json:"slots"`
}

type mgmtStatus struct {
	Algorithm string `json:"algorithm"`
	// Default is "yes", "no" or "unknown".
	Default         string `json:"default"`
	StoredProtected bool   `json:"stored_pin_protected"`
	DerivedFromPIN  bool   `json:"derived_from_pin,omitempty"`
	PUKBlocked      bool   `json:"puk_blocked_flag,omitempty"`
	AdminDataError  string `json:"admin_data_error,omitempty"`
}

type slotStatus struct {
	Slot        string `json:"slot"`
	URI         string `json:"uri"`
	Algorithm   string `json:"algorithm,omitempty"`
	PINPolicy   string `json:"pin_policy,omitempty"`
	TouchPolicy string `json:"touch_policy,omitempty"`
	Generated   bool   `json:"generated_on_card"`
	Holder      string `json:"holder,omitempty"`
	// Attestation is "verified to ISSUER", "refused: REASON" or "none: WHY".
	Attestation string `json:"attestation"`
}

type tpmStatus struct {
	Device          string      `json:"device"`
	Manufacturer    string      `json:"manufacturer"`
	Firmware        string      `json:"firmware"`
	PINRetries      int         `json:"pin_retries"`
	PINRetriesTotal int         `json:"pin_retries_total"`
	LockedOut       bool        `json:"locked_out"`
	LockoutInterval uint32      `json:"lockout_interval_seconds"`
	AttestationKey  string      `json:"attestation_key,omitempty"`
	Keys            []tpmKeyRow `json:"keys"`
}

type tpmKeyRow struct {
	listedTPM
}

func keyStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock key status", keyUsage, stderr)
	serial := fs.Uint("serial", 0, "only the yubikey with this serial (and no tpm unless --tpm is given)")
	dev := fs.String("tpm", "", "only this TPM device (and no yubikey unless --serial is given): /dev/tpmrm0, tcp:HOST:PORT or unix:/PATH (swtpm) (default: every yubikey, and /dev/tpmrm0 when present)")
	var roots cli.List
	fs.Var(&roots, "attestation-root", "PEM file of PIV attestation roots to trust besides Yubico's (repeat)")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	if *serial > 0xffffffff {
		return cli.Usagef("--serial %d is not a yubikey serial", *serial)
	}
	opts, err := attestationOptions(roots)
	if err != nil {
		return err
	}
	var rep statusReport
	rep.YubiKeys = []cardStatus{}
	onlyTPM := *dev != "" && *serial == 0
	if !onlyTPM {
		cards, err := piv.List(ctx)
		if err != nil {
			if *serial != 0 {
				return err
			}
			rep.YubiKeyError = err.Error()
		}
		found := false
		for _, c := range cards {
			if *serial != 0 && c.Serial != uint32(*serial) {
				continue
			}
			found = true
			st, err := piv.ReadStatus(ctx, c.Serial)
			if err != nil {
				return err
			}
			rep.YubiKeys = append(rep.YubiKeys, describeCard(st, opts))
		}
		if *serial != 0 && !found {
			return fmt.Errorf("yubikey %d not found: insert the key and try again (airlock key list shows what is present)", *serial)
		}
	}
	if *serial == 0 || *dev != "" {
		d := *dev
		if d == "" {
			if _, err := os.Stat(tpm.DefaultDevice); err == nil {
				d = tpm.DefaultDevice
			}
		}
		if d != "" {
			st, err := tpm.ReadStatus(ctx, d)
			if err != nil {
				return fmt.Errorf("tpm %s: %w", d, err)
			}
			rep.TPM = describeTPM(st, opts)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printStatus(stdout, rep)
	return nil
}

func describeCard(st *piv.Status, opts attest.Options) cardStatus {
	c := cardStatus{
		Serial: st.Serial, Firmware: st.Firmware, Reader: st.Reader,
		PINRetries: st.PINRetries, PINRetriesTotal: st.PINRetriesTotal,
		PUKRetries: st.PUKRetries, PUKRetriesTotal: st.PUKRetriesTotal,
		ManagementKey: mgmtStatus{
			Algorithm: st.ManagementKey.Algorithm, Default: "unknown",
			StoredProtected: st.ManagementKey.StoredProtected, DerivedFromPIN: st.ManagementKey.DerivedFromPIN,
			PUKBlocked: st.ManagementKey.PUKBlocked, AdminDataError: st.ManagementKey.AdminDataError,
		},
		Slots: []slotStatus{},
	}
	if d := st.ManagementKey.Default; d != nil {
		c.ManagementKey.Default = map[bool]string{true: "yes", false: "no"}[*d]
	}
	for _, s := range st.Slots {
		u := hsm.URI{Kind: hsm.KindYubiKey, Serial: st.Serial, Slot: s.Slot}
		row := slotStatus{Slot: s.Slot, URI: u.String(), Algorithm: s.Algorithm, PINPolicy: s.PINPolicy,
			TouchPolicy: s.TouchPolicy, Generated: s.Generated, Holder: s.Holder}
		switch {
		case s.Attestation == nil && s.Note != "":
			row.Attestation = "none: " + s.Note
		case s.Attestation == nil:
			row.Attestation = "none"
		default:
			row.Attestation = verifyAttestationLine(s.Attestation, s.Public, opts)
		}
		c.Slots = append(c.Slots, row)
	}
	return c
}

func verifyAttestationLine(att *hsm.Attestation, pub any, opts attest.Options) string {
	if pub == nil {
		return "refused: the card does not tell the slot's public key"
	}
	f, err := attest.Verify(att, pub, opts)
	if err != nil {
		return "refused: " + err.Error()
	}
	return "verified to " + f.Issuer
}

func describeTPM(st *tpm.Status, opts attest.Options) *tpmStatus {
	t := &tpmStatus{
		Device: st.Device, Manufacturer: st.Manufacturer, Firmware: st.Firmware,
		PINRetries: st.PINRetries, PINRetriesTotal: st.PINRetriesTotal,
		LockedOut: st.LockedOut, LockoutInterval: st.LockoutInterval, Keys: []tpmKeyRow{},
	}
	if st.AttestationKey != nil {
		if fp, err := attest.TPMAttestationKeyFingerprint(st.AttestationKey); err == nil {
			t.AttestationKey = fp
		}
	}
	for _, k := range st.Keys {
		row := tpmKeyRow{listedTPM: listedTPM{
			Handle: fmt.Sprintf("0x%08x", k.Handle), URI: k.URI.String(),
			Airlock: k.Airlock, Holder: k.Holder, PCRs: k.PCRs, Note: k.Note,
		}}
		t.Keys = append(t.Keys, row)
	}
	return t
}

func retriesText(left, total int) string {
	switch {
	case left < 0:
		return "not shown by this firmware without spending a try"
	case total > 0:
		return fmt.Sprintf("%d of %d tries left", left, total)
	default:
		return fmt.Sprintf("%d tries left", left)
	}
}

func printStatus(w io.Writer, rep statusReport) {
	switch {
	case rep.YubiKeyError != "":
		fmt.Fprintf(w, "yubikeys: cannot list: %s\n", rep.YubiKeyError)
	case len(rep.YubiKeys) == 0 && rep.TPM == nil:
		fmt.Fprintln(w, "yubikeys: none present")
	}
	for _, c := range rep.YubiKeys {
		fmt.Fprintf(w, "yubikey %d  firmware %s  reader %q\n", c.Serial, c.Firmware, c.Reader)
		fmt.Fprintf(w, "  pin:             %s\n", retriesText(c.PINRetries, c.PINRetriesTotal))
		fmt.Fprintf(w, "  puk:             %s\n", retriesText(c.PUKRetries, c.PUKRetriesTotal))
		m := c.ManagementKey
		how := "not stored on the card (give it with --management-key)"
		switch {
		case m.Default == "yes":
			how = "the factory default (airlock key enroll replaces it)"
		case m.StoredProtected:
			how = "random, stored on the card behind the pin (ykman: protected by pin)"
		case m.DerivedFromPIN:
			how = "derived from the pin (deprecated; give it with --management-key)"
		}
		fmt.Fprintf(w, "  management key:  %s, %s\n", m.Algorithm, how)
		if m.AdminDataError != "" {
			fmt.Fprintf(w, "  admin data:      unreadable: %s\n", m.AdminDataError)
		}
		if len(c.Slots) == 0 {
			fmt.Fprintln(w, "  slots:           none hold a key")
		}
		for _, s := range c.Slots {
			origin := "imported"
			if s.Generated {
				origin = "generated on the card"
			}
			fmt.Fprintf(w, "  slot %s:         %s, pin %s, touch %s, %s", s.Slot, s.Algorithm, s.PINPolicy, s.TouchPolicy, origin)
			if s.Holder != "" {
				fmt.Fprintf(w, ", holder %q", s.Holder)
			}
			fmt.Fprintf(w, "\n                   attestation %s\n", s.Attestation)
		}
	}
	if t := rep.TPM; t != nil {
		fmt.Fprintf(w, "tpm %s  manufacturer %q  firmware %s\n", t.Device, t.Manufacturer, t.Firmware)
		lock := ""
		if t.LockedOut {
			lock = fmt.Sprintf(" (locked out: one try comes back every %d s)", t.LockoutInterval)
		}
		fmt.Fprintf(w, "  pin:             %s, shared by every key's pin%s\n", retriesText(t.PINRetries, t.PINRetriesTotal), lock)
		if t.AttestationKey != "" {
			fmt.Fprintf(w, "  attestation key: %s\n", t.AttestationKey)
		} else {
			fmt.Fprintln(w, "  attestation key: none yet (the first enrolment makes it)")
		}
		if len(t.Keys) == 0 {
			fmt.Fprintln(w, "  keys:            no persistent keys")
		}
		for _, k := range t.Keys {
			line := fmt.Sprintf("  %s      %s", k.Handle, k.Note)
			if k.Airlock {
				line += fmt.Sprintf("  holder %q", k.Holder)
				if len(k.PCRs) > 0 {
					line += "  pcrs " + joinInts(k.PCRs)
				}
				line += "  " + k.URI
			}
			fmt.Fprintln(w, line)
		}
	}
}

// attestationOptions reads --attestation-root files: PIV attestation roots
// trusted besides Yubico's shipped ones.
func attestationOptions(files []string) (attest.Options, error) {
	var opts attest.Options
	for _, f := range files {
		certs, err := readCerts(f)
		if err != nil {
			return opts, fmt.Errorf("--attestation-root %w", err)
		}
		opts.PIVRoots = append(opts.PIVRoots, certs...)
	}
	return opts, nil
}
