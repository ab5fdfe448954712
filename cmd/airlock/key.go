package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/tuf"
)

const keyUsage = `usage: airlock key generate --dev --holder NAME [--alg ecdsa-p256|ed25519] --out FILE
       airlock key public --key URI

generate writes a development-only software key (refused by the appliance
outside development mode) and prints its TUF public key. public prints the
TUF public key of any key URI, with holder, kind and attestation, ready for
airlock init and airlock delegate --key KEY.json.
`

func cmdKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Usagef("airlock key needs a subcommand: generate, public")
	}
	switch args[0] {
	case "generate":
		fs := cli.NewFlagSet("airlock key generate", keyUsage, stderr)
		dev := fs.Bool("dev", false, "acknowledge this is a development-only software key")
		holder := fs.String("holder", "", "the key holder's name")
		alg := fs.String("alg", string(hsm.ECDSAP256), "ecdsa-p256 or ed25519")
		out := fs.String("out", "", "key file to create (mode 0600, must not exist)")
		if err := cli.Parse(fs, args[1:]); err != nil {
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
	case "public":
		fs := cli.NewFlagSet("airlock key public", keyUsage, stderr)
		uri := fs.String("key", "", "key URI")
		if err := cli.Parse(fs, args[1:]); err != nil {
			return err
		}
		ks, err := cli.OpenKeys(ctx, []string{*uri}, prompter(stderr))
		if err != nil {
			return err
		}
		return printKey(stdout, ks[0])
	default:
		return cli.Usagef("unknown key subcommand %q (generate, public)", args[0])
	}
}

func printKey(w io.Writer, s hsm.Signer) error {
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
	fmt.Fprintf(w, "%s\n", raw)
	_ = id
	return nil
}
