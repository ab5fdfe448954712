package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/tpm" // also registers tpm: URIs with hsm.Open
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/tuf"
)

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
	var aks, extraRoots cli.List
	fs.Var(&aks, "tpm-ak", "PEM public key of a trusted TPM attestation key (repeat)")
	fs.Var(&extraRoots, "attestation-root", "PEM file of PIV attestation roots to trust besides Yubico's (repeat)")
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
	opts, err := attestationOptions(extraRoots)
	if err != nil {
		return err
	}
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
