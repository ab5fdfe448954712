package usb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzSysfsVendorModel puts hostile vendor, model and size strings (a USB
// device chooses its own) into a fake sysfs tree: ListRemovable shows at
// most 64 printable ASCII characters of each, trimmed, and never a device
// without a medium.
func FuzzSysfsVendorModel(f *testing.F) {
	f.Add([]byte("SanDisk \n"), []byte("Cruzer Blade\x1b[31m\n"), []byte("30031872\n"))
	f.Add([]byte(""), []byte("\x00\xff\u202e evil"), []byte("0"))
	f.Add([]byte(strings.Repeat("V", 5000)), []byte(strings.Repeat("é", 100)), []byte("281474976710657"))
	f.Add([]byte("  "), []byte("\t\n"), []byte("-5"))
	f.Fuzz(func(t *testing.T, vendor, model, size []byte) {
		root := t.TempDir()
		dev := filepath.Join(root, "block", "sdz")
		if err := os.MkdirAll(filepath.Join(dev, "device"), 0o755); err != nil {
			t.Fatal(err)
		}
		for attr, v := range map[string][]byte{"removable": []byte("1\n"), "ro": []byte("0\n"), "size": size, "device/vendor": vendor, "device/model": model} {
			if err := os.WriteFile(filepath.Join(dev, attr), v, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := ListRemovable(root, "/dev")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range got {
			if d.Size <= 0 || d.Size%512 != 0 {
				t.Fatalf("device with size %d listed", d.Size)
			}
			for _, s := range []string{d.Vendor, d.Model} {
				if len(s) > 64 || s != strings.TrimSpace(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
					t.Fatalf("vendor or model %q shown", s)
				}
			}
		}
	})
}
