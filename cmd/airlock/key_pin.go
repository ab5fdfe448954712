package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/piv"
	"airlock.dev/airlock/internal/cli"
)

// keyPIN runs airlock key pin change|unblock: the YubiKey's PIN changed
// with the current PIN, or set anew with the PUK once it is blocked.
func keyPIN(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "change" && args[0] != "unblock") {
		return cli.Usagef("airlock key pin needs change or unblock")
	}
	op := args[0]
	fs := cli.NewFlagSet("airlock key pin "+op, keyUsage, stderr)
	serial := fs.Uint("serial", 0, "serial of the yubikey (needed when several are present)")
	pinFile := fs.String("pin-file", "", "automation only: file whose first line is the current PIN (change)")
	pukFile := fs.String("puk-file", "", "automation only: file whose first line is the PUK (unblock)")
	newPINFile := fs.String("new-pin-file", "", "automation only: file whose first line is the new PIN")
	if err := cli.Parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	if op == "change" && *pukFile != "" {
		return cli.Usagef("--puk-file is for airlock key pin unblock")
	}
	if op == "unblock" && *pinFile != "" {
		return cli.Usagef("--pin-file is for airlock key pin change; unblock takes --puk-file")
	}
	if *serial > 0xffffffff {
		return cli.Usagef("--serial %d is not a yubikey serial", *serial)
	}
	sn, err := pickCard(ctx, uint32(*serial))
	if err != nil {
		return err
	}
	st, err := piv.ReadStatus(ctx, sn)
	if err != nil {
		return err
	}
	uri := hsm.URI{Kind: hsm.KindYubiKey, Serial: sn, Slot: "9c"}
	name := fmt.Sprintf("yubikey %d", sn)

	var secret []byte
	switch op {
	case "change":
		if st.PINRetries == 0 {
			return fmt.Errorf("%s: %w: set a new pin with the puk: airlock key pin unblock --serial %d", name, hsm.ErrPINBlocked, sn)
		}
		secret, err = readSecretFrom(*pinFile, "current PIN", name, st.PINRetries, stderr)
	case "unblock":
		if st.PUKRetries == 0 {
			return fmt.Errorf("%s: %w: the pin cannot be unblocked any more; only a reset of the card's piv application (ykman piv reset), which destroys every key on it, makes it usable again", name, piv.ErrPUKBlocked)
		}
		secret, err = readSecretFrom(*pukFile, "PUK", name, st.PUKRetries, stderr)
	}
	if err != nil {
		return err
	}
	defer clear(secret)
	var newPIN []byte
	if *newPINFile != "" {
		newPIN, err = readPINFileValue(*newPINFile, stderr)
	} else {
		newPIN, err = readNewPIVPIN(uri.String())
	}
	if err != nil {
		return err
	}
	defer clear(newPIN)
	if op == "change" {
		err = piv.ChangePIN(ctx, sn, secret, newPIN)
	} else {
		err = piv.UnblockPIN(ctx, sn, secret, newPIN)
	}
	if err != nil {
		var wrong *hsm.WrongPINError
		var wrongPUK *piv.WrongPUKError
		switch {
		case errors.As(err, &wrong):
			return fmt.Errorf("%s: the current pin was refused, %d tries left; nothing was changed", name, wrong.Retries)
		case errors.As(err, &wrongPUK):
			return fmt.Errorf("%s: the puk was refused, %d tries left; nothing was changed", name, wrongPUK.Retries)
		}
		return err
	}
	what := map[string]string{"change": "pin changed", "unblock": "pin unblocked and set anew"}[op]
	fmt.Fprintf(stdout, "%s: %s\n", name, what)
	return nil
}

// pickCard returns serial, or the serial of the one card present.
func pickCard(ctx context.Context, serial uint32) (uint32, error) {
	if serial != 0 {
		return serial, nil
	}
	cards, err := piv.List(ctx)
	if err != nil {
		return 0, err
	}
	switch len(cards) {
	case 0:
		return 0, fmt.Errorf("no yubikey present: insert the key and try again: %w", hsm.ErrNotFound)
	case 1:
		return cards[0].Serial, nil
	}
	return 0, cli.Usagef("%d yubikeys present: name one with --serial (airlock key list shows their serials)", len(cards))
}

// readSecretFrom reads a PIN or PUK from file, or asks on the terminal
// showing the tries left.
func readSecretFrom(file, what, name string, retries int, stderr io.Writer) ([]byte, error) {
	if file != "" {
		return readPINFileValue(file, stderr)
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("the %s of %s is needed but there is no terminal to ask on (for automation only: a file flag): %w", what, name, hsm.ErrCancelled)
	}
	defer tty.Close()
	tries := ""
	if retries >= 0 {
		tries = fmt.Sprintf(" [%d tries left]", retries)
	}
	v, err := cli.ReadSecret(tty, fmt.Sprintf("%s of %s%s: ", what, name, tries))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(v) == 0 {
		return nil, hsm.ErrCancelled
	}
	return v, nil
}

func readPINFileValue(file string, stderr io.Writer) ([]byte, error) {
	fp, err := newFilePrompter(file, stderr)
	if err != nil {
		return nil, err
	}
	return fp.pin, nil
}

// readNewPIVPIN asks for a new YubiKey PIN twice on the terminal.
func readNewPIVPIN(what string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("a new pin is needed for %s but there is no terminal to ask on (for automation only: --new-pin-file): %w", what, hsm.ErrCancelled)
	}
	defer tty.Close()
	first, err := cli.ReadSecret(tty, fmt.Sprintf("new PIN for %s (%d to 8 characters): ", what, piv.MinPINLen))
	if err != nil {
		return nil, err
	}
	if len(first) == 0 {
		return nil, hsm.ErrCancelled
	}
	second, err := cli.ReadSecret(tty, "type the new PIN again: ")
	if err != nil {
		clear(first)
		return nil, err
	}
	defer clear(second)
	if !bytes.Equal(first, second) {
		clear(first)
		return nil, errors.New("the two pins differ; nothing was changed")
	}
	return first, nil
}
