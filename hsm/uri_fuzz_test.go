package hsm

import (
	"strings"
	"testing"
)

// FuzzParseURI feeds hostile key URIs to ParseURI: it must not panic, must
// never accept a secret parameter, and what it accepts must print to a
// string that parses back to the same value.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"yubikey:serial=12345678;slot=9c", "tpm:handle=0x81000010", "file:keys/a.pem",
		"yubikey:serial=1;slot=9c;pin-value=123456", "yubikey:slot=9c;slot=9a", "tpm:", ":", "",
		"yubikey:serial=%00;slot=9c", strings.Repeat("a", 5000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		low := strings.ToLower(s)
		if strings.Contains(low, "pin-value=") || strings.Contains(low, "management-key=") {
			t.Fatalf("accepted a secret in %q", s)
		}
		again, err := ParseURI(u.String())
		if err != nil {
			t.Fatalf("%q parsed to %q, which does not parse: %v", s, u.String(), err)
		}
		if again.String() != u.String() {
			t.Fatalf("%q -> %q -> %q", s, u.String(), again.String())
		}
	})
}
