package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/internal/demo"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock demo", "usage: airlock demo [--dir DIR]\n\nRuns a whole release on embedded defaults with development keys.\n", stderr)
	dir := fs.String("dir", "", "folder to work in (default: a new temporary folder)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "airlock-demo-")
		if err != nil {
			return err
		}
		*dir = d
	}
	if err := demo.Run(ctx, *dir, stdout); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
