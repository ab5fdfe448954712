package main

import (
	"context"
	"errors"
	"io"
)

// startTUI runs the terminal user interface. This placeholder is replaced by
// the terminal UI's real entry point.
func startTUI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("terminal ui not built yet: use airlock-appliance review or sign")
}
