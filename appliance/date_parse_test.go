package appliance

import (
	"strings"
	"testing"
	"time"
)

func FuzzParseConfirmedDate(f *testing.F) {
	for _, s := range []string{"2025-06-02", " 2025-06-02\n", "2025-6-2", "2025-02-30", "02/06/2025", "", "\x1b[2J2025-06-02", strings.Repeat("2", 100), "9999-12-31", "0000-01-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseConfirmedDate(s)
		if err != nil {
			if !strings.Contains(err.Error(), "type it as YYYY-MM-DD") || strings.ContainsAny(err.Error(), "\x1b\n\r") {
				t.Fatalf("parseConfirmedDate(%q): error %q", s, err)
			}
			return
		}
		if d.Location() != time.UTC || d.Hour() != 0 || d.Minute() != 0 || d.Second() != 0 || d.Nanosecond() != 0 {
			t.Fatalf("parseConfirmedDate(%q) = %v, want midnight UTC", s, d)
		}
		if got := d.Format(time.DateOnly); got != strings.TrimSpace(s) {
			t.Fatalf("parseConfirmedDate(%q) = %s, not the date typed", s, got)
		}
	})
}
