package main

import (
	"io"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/cli"
)

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
