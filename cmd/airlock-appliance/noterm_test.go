package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestNoTerminalRefusesWithoutPanic starts the terminal ui with stdin and
// stdout that are not a terminal: it must refuse with one line saying so,
// not panic (tcell cannot start a screen there).
func TestNoTerminalRefusesWithoutPanic(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	oldIn := os.Stdin
	os.Stdin = null
	defer func() { os.Stdin = oldIn }()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--demo", "--dir", t.TempDir()}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "the terminal ui needs a terminal") {
		t.Fatalf("exit %d, stderr %q: want 1 and the no-terminal refusal", code, stderr.String())
	}
	if n := strings.Count(stderr.String(), "\n"); n != 1 {
		t.Fatalf("want one line on stderr, got %d: %q", n, stderr.String())
	}
}
