package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseManagementKey(t *testing.T) {
	key := strings.Repeat("0a", 24)
	file := filepath.Join(t.TempDir(), "mgmt")
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{key, "@" + file} {
		got, err := parseManagementKey(v)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{0x0a}, 24)) {
			t.Errorf("parseManagementKey(%q) = %x, %v", v, got, err)
		}
	}
	for v, want := range map[string]string{
		"0102":             "want 32, 48 or 64 hex digits",
		"zz" + key[2:]:     "want 32, 48 or 64 hex digits",
		"@" + file + ".no": "no such file",
	} {
		if _, err := parseManagementKey(v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseManagementKey(%q): err = %v, want %q", v, err, want)
		}
	}
}

func FuzzParseManagementKey(f *testing.F) {
	for _, s := range []string{"", strings.Repeat("01", 16), strings.Repeat("ab", 24), strings.Repeat("ff", 32), "0x12", "@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.HasPrefix(v, "@") {
			return // files are covered above
		}
		k, err := parseManagementKey(v)
		if err == nil && v != "" && len(k) != 16 && len(k) != 24 && len(k) != 32 {
			t.Fatalf("accepted a %d-byte key", len(k))
		}
	})
}
