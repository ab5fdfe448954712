package cli

import (
	"strings"
	"testing"
	"time"
)

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90d", "36h", "1d", "3650d", "3651d", "0d", "-1d", "d", "1.5d", "0s", "-5h", "9223372036854775807ns", "1h30m", "", " 90d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !strings.Contains(err.Error(), "duration ") {
				t.Fatalf("ParseDuration(%q): error %q does not name the duration", s, err)
			}
			return
		}
		if d <= 0 {
			t.Fatalf("ParseDuration(%q) = %v, want a positive duration", s, d)
		}
		if strings.HasSuffix(s, "d") && (d > 3650*24*time.Hour || d%(24*time.Hour) != 0) {
			t.Fatalf("ParseDuration(%q) = %v, want whole days up to 3650", s, d)
		}
	})
}
