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
	fs := cli.NewFlagSet("airlock demo", "usage: airlock demo [--dir DIR]\n\nRuns a whole release on embedded defaults with development keys. Without\n--dir it works in a new temporary folder and removes it at the end.\n\nexamples:\n  airlock demo\n  airlock demo --dir airlock-demo\n", stderr)
	dir := fs.String("dir", "", "folder to work in (default: a new temporary folder)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		// A folder of our own is removed at the end: give --dir to keep it.
		d, err := os.MkdirTemp("", "airlock-demo-")
		if err != nil {
			return err
		}
		*dir = d
		defer func() {
			os.RemoveAll(d)
			fmt.Fprintf(stdout, "demo folder %s removed (run airlock demo --dir DIR to keep it)\n", d)
		}()
	}
	if err := demo.Run(ctx, *dir, stdout); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
