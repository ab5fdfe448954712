package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestExitEscapesUntrustedText checks that an error quoting a hostile file
// name (ESC, BEL, a right-to-left override) reaches stderr escaped.
func TestExitEscapesUntrustedText(t *testing.T) {
	var out bytes.Buffer
	code := Exit("airlock qr scan", &out, errors.New("qr: frame\x1b]0;pwned\x07\u202egnp.png: not a png"))
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\u202e") {
		t.Fatalf("stderr holds raw control or bidi characters: %q", got)
	}
	want := `airlock qr scan: error: qr: frame\x1b]0;pwned\x07\u202egnp.png: not a png` + "\n"
	if got != want {
		t.Fatalf("stderr = %q, want %q", got, want)
	}
}
