package tpm

import (
	"errors"

	"bytes"
	"github.com/google/go-tpm/tpm2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"airlock.dev/airlock/hsm"
)

func testRecord() *record {
	return &record{Holder: "Ada Lovelace", Attestation: hsm.Attestation{
		Format:         hsm.AttestationTPM2Certify,
		Statement:      []byte("statement"),
		Signature:      []byte("signature"),
		AttestationKey: []byte("ak"),
		KeyPublic:      []byte("key"),
	}}
}

func TestRecordRoundTrip(t *testing.T) {
	r := testRecord()
	b, err := r.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseRecord(b)
	if err != nil {
		t.Fatalf("parseRecord: %v", err)
	}
	if diff := cmp.Diff(r, got, cmp.AllowUnexported(record{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestParseRecordRefuses(t *testing.T) {
	good, err := testRecord().marshal()
	if err != nil {
		t.Fatal(err)
	}
	bigHolder := append([]byte(recordMagic), 0xff, 0xff)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not hold an airlock key record"},
		{"other magic", append([]byte("XXXX\x01"), good[5:]...), "not hold an airlock key record"},
		{"trailing", append(bytes.Clone(good), 0), "trailing"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"field over cap", bigHolder, "over the 128-byte cap"},
		{"too long", make([]byte, maxRecordLen+1), "cap"},
		{"control in holder", append([]byte(recordMagic), 0, 1, 0x1b), "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRecord(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseRecord: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// FuzzParseRecord: the NV record parser never panics, and what it accepts
// marshals back to exactly the input.
func FuzzParseRecord(f *testing.F) {
	good, err := testRecord().marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte(recordMagic))
	f.Add(append([]byte(recordMagic), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(b)
		if err != nil {
			return
		}
		back, err := r.marshal()
		if err != nil {
			t.Fatalf("accepted record does not marshal: %v", err)
		}
		if !bytes.Equal(back, b) {
			t.Fatalf("parse/marshal changed the record:\n in %x\nout %x", b, back)
		}
	})
}

func TestMapAuthError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      error
		retries int
		is      []error
		wrong   bool
		say     string
	}{
		{"wrong pin", tpm2.TPMRC(0x98e), 2, []error{tpm2.TPMRCAuthFail}, true, "2 retries left"},
		{"last try", tpm2.TPMRC(0x98e), 0, []error{tpm2.TPMRCAuthFail, hsm.ErrPINBlocked}, true, "last try"},
		{"lockout", tpm2.TPMRCLockout, -1, []error{tpm2.TPMRCLockout, hsm.ErrPINBlocked}, false, "reset the lockout"},
		{"policy", tpm2.TPMRC(0x99d), -1, []error{tpm2.TPMRCPolicyFail}, false, "boot state changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mapAuthError(tc.in, tc.retries)
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("%v is not %v", err, target)
				}
			}
			var w *hsm.WrongPINError
			if errors.As(err, &w) != tc.wrong {
				t.Errorf("%v: WrongPINError = %v, want %v", err, !tc.wrong, tc.wrong)
			}
			if tc.wrong && w.Retries != tc.retries {
				t.Errorf("retries %d, want %d", w.Retries, tc.retries)
			}
			if !strings.Contains(err.Error(), tc.say) {
				t.Errorf("%q does not say %q", err, tc.say)
			}
		})
	}
}
