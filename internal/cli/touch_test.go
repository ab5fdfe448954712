package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"airlock.dev/airlock/hsm"
)

// TestTouchPromptNamesHolderAndKey: through hsm.AskTouch, the terminal's
// touch prompt names the holder and the key; without a holder, the key.
func TestTouchPromptNamesHolderAndKey(t *testing.T) {
	var out bytes.Buffer
	u := hsm.URI{Kind: hsm.KindYubiKey, Serial: 42, Slot: "9c"}
	done := hsm.AskTouch(context.Background(), TerminalPrompter{Out: &out}, hsm.TouchRequest{URI: u, Holder: "Alice Example"})
	done()
	if got := strings.SplitN(out.String(), "\n", 2)[0]; got != "Alice Example: touch your key yubikey:serial=42;slot=9c now (it is blinking)" {
		t.Errorf("prompt %q", got)
	}
	out.Reset()
	TerminalPrompter{Out: &out}.Touch(context.Background(), u)()
	if !strings.HasPrefix(out.String(), "touch the key yubikey:serial=42;slot=9c now") {
		t.Errorf("prompt without holder %q", out.String())
	}
}
