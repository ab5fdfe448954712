package keypolicy

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-tpm/tpm2"
)

func TestExtraDataRoundTrip(t *testing.T) {
	digest := bytes.Repeat([]byte{0xab}, sha256.Size)
	for _, tc := range []struct {
		pcrs   []int
		digest []byte
	}{
		{nil, nil},
		{[]int{0}, digest},
		{[]int{0, 7, 23}, digest},
	} {
		b, err := ExtraData(tc.pcrs, tc.digest)
		if err != nil {
			t.Fatalf("ExtraData(%v): %v", tc.pcrs, err)
		}
		if len(b) > 64 {
			t.Errorf("extra data is %d bytes, over TPM2B_DATA's 64", len(b))
		}
		pcrs, d, err := ParseExtraData(b)
		if err != nil {
			t.Fatalf("ParseExtraData: %v", err)
		}
		if diff := cmp.Diff(tc.pcrs, pcrs); diff != "" {
			t.Errorf("pcrs (-want +got):\n%s", diff)
		}
		if !bytes.Equal(d, tc.digest) {
			t.Errorf("digest %x, want %x", d, tc.digest)
		}
	}
}

func TestParseExtraDataRefuses(t *testing.T) {
	good, _ := ExtraData([]int{7}, make([]byte, 32))
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not an airlock"},
		{"other magic", append([]byte("XLK1"), good[4:]...), "not an airlock"},
		{"short digest", good[:len(good)-1], "31-byte"},
		{"trailing without pcrs", []byte("ALK1\x00\x00\x00\x01"), "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseExtraData(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseExtraData: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestPolicyDigestKnownAnswer checks the policy digest against one
// computed by hand from TPM 2.0 Part 3 (23.18: PolicyAuthValue extends
// the digest with TPM_CC_PolicyAuthValue = 0x0000016B).
func TestPolicyDigestKnownAnswer(t *testing.T) {
	got, err := PolicyDigest(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write(make([]byte, 32))
	h.Write([]byte{0, 0, 0x01, 0x6b})
	if want := h.Sum(nil); !bytes.Equal(got, want) {
		t.Fatalf("PolicyDigest() = %x, want %x", got, want)
	}
	// With PCRs: PolicyPCR (CC 0x17F) over TPML_PCR_SELECTION || digest.
	pcrDigest := bytes.Repeat([]byte{1}, 32)
	got, err = PolicyDigest([]int{7}, pcrDigest)
	if err != nil {
		t.Fatal(err)
	}
	h = sha256.New()
	h.Write(make([]byte, 32))
	h.Write([]byte{0, 0, 0x01, 0x7f})
	h.Write([]byte{0, 0, 0, 1, 0, byte(tpm2.TPMAlgSHA256), 3, 0x80, 0, 0})
	h.Write(pcrDigest)
	step := h.Sum(nil)
	h = sha256.New()
	h.Write(step)
	h.Write([]byte{0, 0, 0x01, 0x6b})
	if want := h.Sum(nil); !bytes.Equal(got, want) {
		t.Fatalf("PolicyDigest([7]) = %x, want %x", got, want)
	}
}

func FuzzParseExtraData(f *testing.F) {
	for _, pcrs := range [][]int{nil, {0}, {7, 23}} {
		var d []byte
		if len(pcrs) > 0 {
			d = make([]byte, 32)
		}
		b, _ := ExtraData(pcrs, d)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pcrs, d, err := ParseExtraData(b)
		if err != nil {
			return
		}
		back, err := ExtraData(pcrs, d)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("accepted %x, re-encodes as %x (%v)", b, back, err)
		}
	})
}
