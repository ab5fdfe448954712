package piv

import (
	"bytes"
	"strings"
	"testing"
)

func TestAdminDataAsYkmanWritesIt(t *testing.T) {
	// A fresh card: no object; setting the flag gives 80 03 81 01 02.
	a, err := parseAdminData(nil)
	if err != nil {
		t.Fatal(err)
	}
	a.setFlag(adminFlagManagementProtected)
	if got, want := a.marshal(), []byte{0x80, 0x03, 0x81, 0x01, 0x02}; !bytes.Equal(got, want) {
		t.Fatalf("marshal = % x, want % x", got, want)
	}
	// An object ykman wrote with the PUK-blocked flag, a salt and a PIN
	// timestamp keeps them, in ykman's order, with the flag added.
	salt := bytes.Repeat([]byte{0xab}, 16)
	in := appendTLV(nil, 0x80, append(append(appendTLV(nil, 0x81, []byte{0x01}), appendTLV(nil, 0x82, salt)...), appendTLV(nil, 0x83, []byte{0, 0, 1, 0})...))
	a, err = parseAdminData(in)
	if err != nil {
		t.Fatal(err)
	}
	if a.managementKeyProtected() || !a.flag(adminFlagPUKBlocked) {
		t.Fatal("flags read wrong")
	}
	a.setFlag(adminFlagManagementProtected)
	want := appendTLV(nil, 0x80, append(append(appendTLV(nil, 0x81, []byte{0x03}), appendTLV(nil, 0x82, salt)...), appendTLV(nil, 0x83, []byte{0, 0, 1, 0})...))
	if got := a.marshal(); !bytes.Equal(got, want) {
		t.Fatalf("marshal = % x, want % x", got, want)
	}
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte{0x53, 0x00}, "tag 53, want 80"},
		{[]byte{0x80, 0x03, 0x81, 0x02, 0x02}, "length 2, 1 bytes left"},
		{[]byte{0x80, 0x04, 0x81, 0x02, 0x02, 0x00}, "flags field is 2 bytes"},
		{[]byte{0x80, 0x06, 0x81, 0x01, 0x02, 0x81, 0x01, 0x02}, "field 81 twice"},
		{[]byte{0x80, 0x00, 0x00}, "1 bytes after the 80 field"},
		{[]byte{0x80, 0x81, 0x01, 0x00}, "length byte 81"},
	} {
		if _, err := parseAdminData(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseAdminData(% x): err = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseAdminData: no panic; what parses re-encodes to an object that
// parses to the same fields, and marshal is a fixed point.
func FuzzParseAdminData(f *testing.F) {
	f.Add([]byte{0x80, 0x03, 0x81, 0x01, 0x02})
	f.Add([]byte{0x80, 0x00})
	f.Add([]byte{0x80, 0x19, 0x81, 0x01, 0x03, 0x82, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x83, 0x04, 0, 0, 0, 1})
	f.Add([]byte{0x80, 0x81, 0x80})
	f.Add([]byte{0x80, 0x03, 0x99, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAdminData(b)
		if err != nil {
			return
		}
		enc := a.marshal()
		back, err := parseAdminData(enc)
		if err != nil {
			t.Fatalf("re-encoded object does not parse: %v (% x)", err, enc)
		}
		if !bytes.Equal(back.marshal(), enc) || back.hadOtherField {
			t.Fatalf("marshal is not a fixed point: % x then % x", enc, back.marshal())
		}
		if len(enc) > maxAdminData+8 {
			t.Fatalf("re-encoded object is %d bytes", len(enc))
		}
	})
}
