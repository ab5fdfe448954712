package main

import (
	"context"
	"io"

	"airlock.dev/airlock/internal/cli"
)

func cmdQR(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Usagef("airlock qr is not built yet")
}
