package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
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

// TestBinariesWithoutTerminalDoNotPanic builds each binary and starts it
// with stdin from /dev/null and output to pipes, with no arguments, with
// -h, --version and a few commands that want a terminal or arguments:
// every run ends with an exit status and at most one error line, never a
// panic.
func TestBinariesWithoutTerminalDoNotPanic(t *testing.T) {
	dir := t.TempDir()
	runs := map[string][][]string{
		"airlock-appliance": {{}, {"-h"}, {"--version"}, {"--demo"}, {"review"}, {"sign"}, {"export"}, {"init-state"},
			{"sign", "--state", dir, "x", "--key", "file:k.pem", "--out", "o"}, {"nonsense"}},
		"airlock": {{}, {"-h"}, {"--version"}, {"bundle"}, {"bundle", "-h"}, {"qr", "-h"}, {"qr", "scan"}, {"sign"},
			{"combine"}, {"verify"}, {"client"}, {"key"}, {"nonsense"}},
	}
	for bin, argv := range runs {
		exe := filepath.Join(dir, bin)
		if out, err := exec.Command("go", "build", "-o", exe, "airlock.dev/airlock/cmd/"+bin).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", bin, err, out)
		}
		for _, args := range argv {
			null, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, args...)
			cmd.Stdin = null
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			null.Close()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("%s %v: %v", bin, args, err)
			}
			all := stdout.String() + stderr.String()
			if strings.Contains(all, "panic") || strings.Contains(all, "goroutine ") || code > 2 || code < 0 {
				t.Errorf("%s %v: exit %d\n%s", bin, args, code, all)
			}
			if code == 1 && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("%s %v: exit 1 with %d lines on stderr, want one:\n%s", bin, args, strings.Count(stderr.String(), "\n"), stderr.String())
			}
		}
	}
}

// Every command's -h exits 0 and shows its flags and a worked example.
func TestEveryHelpHasFlagsAndExample(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--demo", "-h"}, {"review", "-h"}, {"sign", "-h"}, {"init-state", "-h"}, {"export", "-h"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		help := stderr.String()
		if code != 0 || !strings.Contains(help, "example") {
			t.Errorf("%v: exit %d, help without an example:\n%s", args, code, help)
		}
		if len(args) > 1 && args[0] != "--demo" && !strings.Contains(help, "flags:") {
			t.Errorf("%v: help lists no flags:\n%s", args, help)
		}
	}
}
