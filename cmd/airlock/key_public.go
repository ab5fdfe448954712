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
