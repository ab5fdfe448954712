package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestHelpListsFlags checks that -h prints the usage text and every flag.
func TestHelpListsFlags(t *testing.T) {
	var stderr bytes.Buffer
	fs := NewFlagSet("x", "usage: x --out DIR\n", &stderr)
	fs.String("out", "", "folder to write to")
	err := Parse(fs, []string{"-h"})
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"usage: x --out DIR", "-out", "folder to write to"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-h output lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestBadFlagReportedOnce checks that a wrong flag yields one usage error
// and prints nothing by itself (Exit prints the single message).
func TestBadFlagReportedOnce(t *testing.T) {
	var stderr bytes.Buffer
	fs := NewFlagSet("x", "usage: x\n", &stderr)
	err := Parse(fs, []string{"--bogus"})
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, "bogus") {
		t.Fatalf("Parse(--bogus) = %v, want a usage error naming the flag", err)
	}
	if stderr.Len() != 0 {
		t.Fatalf("Parse printed %q; the error must be printed once, by Exit", stderr.String())
	}
	if code := Exit("x", &stderr, err); code != 2 || strings.Count(stderr.String(), "bogus") != 1 {
		t.Fatalf("Exit = %d, output %q: want status 2 and one message", code, stderr.String())
	}
}
