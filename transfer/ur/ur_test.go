package ur

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// referenceVectors holds values printed by the reference JavaScript
// implementation (test/interop/ur-vectors.js); the first part and the
// bytewords strings are also the published BCR test vectors.
type referenceVectors struct {
	Rolls             []int    `json:"rolls"`
	Message           string   `json:"message"`
	Parts             []string `json:"parts"`
	Fragments         [][]int  `json:"fragments"`
	BytewordsStandard string   `json:"bytewordsStandard"`
	BytewordsMinimal  string   `json:"bytewordsMinimal"`
}

func loadVectors(t *testing.T) referenceVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/reference-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v referenceVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// makeMessage is the reference tests' deterministic message generator.
func makeMessage(n int, seed string) []byte {
	x := newXoshiro([]byte(seed))
	out := make([]byte, n)
	for i := range out {
		out[i] = x.nextByte()
	}
	return out
}

func TestXoshiroWolf(t *testing.T) {
	v := loadVectors(t)
	x := newXoshiro([]byte("Wolf"))
	got := make([]int, len(v.Rolls))
	for i := range got {
		got[i] = int(x.next() % 100)
	}
	if diff := cmp.Diff(v.Rolls, got); diff != "" {
		t.Errorf("xoshiro stream (-want +got):\n%s", diff)
	}
}

func TestMakeMessage(t *testing.T) {
	v := loadVectors(t)
	if got := hex.EncodeToString(makeMessage(256, "Wolf")); got != v.Message {
		t.Errorf("makeMessage(256, Wolf) = %s, want %s", got, v.Message)
	}
}

func TestChooseFragments(t *testing.T) {
	v := loadVectors(t)
	c := newChooser(11, 0x12345678)
	for i, want := range v.Fragments {
		seq := uint32(i + 1)
		if diff := cmp.Diff(want, c.fragments(seq)); diff != "" {
			t.Errorf("fragments(%d) (-want +got):\n%s", seq, diff)
		}
		if got := c.degree(seq); got != len(want) {
			t.Errorf("degree(%d) = %d, want %d", seq, got, len(want))
		}
	}
}

func TestBytewords(t *testing.T) {
	v := loadVectors(t)
	in := []byte{0, 1, 2, 0x80, 0xff}
	for _, tc := range []struct {
		style Style
		want  string
	}{
		{Standard, v.BytewordsStandard},
		{URI, strings.ReplaceAll(v.BytewordsStandard, " ", "-")},
		{Minimal, v.BytewordsMinimal},
	} {
		got := EncodeBytewords(tc.style, in)
		if got != tc.want {
			t.Errorf("EncodeBytewords(%d) = %q, want %q", tc.style, got, tc.want)
		}
		back, err := DecodeBytewords(tc.style, got)
		if err != nil || !bytes.Equal(back, in) {
			t.Errorf("DecodeBytewords(%d, %q) = %x, %v; want %x", tc.style, got, back, err, in)
		}
	}
	// Every byte value round-trips in every style.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, s := range []Style{Standard, URI, Minimal} {
		back, err := DecodeBytewords(s, EncodeBytewords(s, all))
		if err != nil || !bytes.Equal(back, all) {
			t.Errorf("style %d: all bytes do not round-trip: %v", s, err)
		}
	}
}

func TestBytewordsRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		style Style
		in    string
		want  string
	}{
		{"bad checksum", Minimal, "aeadaolazmjendeoto", "checksum mismatch"},
		{"too short", Minimal, "aeadaola", "too short"},
		{"odd length", Minimal, "aeadaolazmjendeotix", "odd length"},
		{"not a word", Minimal, "aeadaolazmjendeoqq", "not a byteword"},
		{"uppercase", Minimal, "AEADAOLAZMJENDEOTI", "not a lowercase byteword"},
		{"bad middle letters", Standard, "able acid also lava zoom jade need echo taxx", "not a byteword"},
		{"double space", Standard, "able acid  also lava zoom jade need echo taxi", "not four letters"},
		{"trailing space", Standard, "able acid also lava zoom jade need echo taxi ", "not four letters"},
		{"empty", URI, "", "not four letters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBytewords(tc.style, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeBytewords(%q) error = %v, want one containing %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	// SHA-256("abc") starts ba 78 16 bf.
	want := strings.Join([]string{word(0xba), word(0x78), word(0x16), word(0xbf)}, " ")
	if got := Fingerprint([]byte("abc")); got != want {
		t.Errorf("Fingerprint(abc) = %q, want %q", got, want)
	}
	if Fingerprint([]byte("abd")) == want {
		t.Error("different messages share a fingerprint")
	}
}

func TestEncoderReferenceVector(t *testing.T) {
	v := loadVectors(t)
	const published = "ur:bytes/1-9/lpadascfadaxcywenbpljkhdcahkadaemejtswhhylkepmykhhtsytsnoyoyaxaedsuttydmmhhpktpmsrjtdkgslpgh"
	if v.Parts[0] != published {
		t.Fatalf("reference vectors file does not start with the published part")
	}
	e, err := NewEncoder(makeMessage(256, "Wolf"), EncoderOptions{MaxFragmentLen: 30, Schedule: ScheduleReference, Lowercase: true})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(v.Parts))
	for i := range got {
		got[i] = e.NextPart()
	}
	if diff := cmp.Diff(v.Parts, got); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}
	// The default schedule starts with the same pure parts, upper-cased.
	e, err = NewEncoder(makeMessage(256, "Wolf"), EncoderOptions{MaxFragmentLen: 30})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < e.SeqLen(); i++ {
		if got, want := e.NextPart(), strings.ToUpper(v.Parts[i]); got != want {
			t.Errorf("dense part %d = %q, want %q", i+1, got, want)
		}
	}
}

func TestDecodeReferenceParts(t *testing.T) {
	v := loadVectors(t)
	want := makeMessage(256, "Wolf")
	// Mixed parts only (10..30), in reverse order: the pure parts are never seen.
	d := NewDecoder(Limits{})
	for i := len(v.Parts) - 1; i >= 9 && !d.Done(); i-- {
		if err := d.Receive(v.Parts[i]); err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
	}
	got, err := d.Message()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("decoded message differs")
	}
	if p := d.Progress(); !p.Done || p.Fraction != 1 || p.Known != 9 || p.Fragments != 9 {
		t.Errorf("progress = %+v", p)
	}
}

func TestPartRoundTrip(t *testing.T) {
	e, err := NewEncoder(makeMessage(1000, "round"), EncoderOptions{MaxFragmentLen: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		s := e.NextPart()
		p, err := DecodePart(s)
		if err != nil {
			t.Fatalf("DecodePart(%q): %v", s, err)
		}
		if again := strings.ToUpper(encodeMultipart(p)); again != s {
			t.Fatalf("re-encoding part %d changed it:\n%s\n%s", p.SeqNum, s, again)
		}
	}
}

func TestSinglePart(t *testing.T) {
	msg := []byte("small response")
	e, err := NewEncoder(msg, EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !e.SinglePart() {
		t.Fatal("small message should be single-part")
	}
	s := e.NextPart()
	if !strings.HasPrefix(s, "UR:BYTES/") || strings.Count(s, "/") != 1 {
		t.Fatalf("single part %q", s)
	}
	got, err := DecodeSingle(s, 0)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("DecodeSingle = %q, %v", got, err)
	}
	d := NewDecoder(Limits{})
	if err := d.Receive(s); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Message(); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("decoder message = %q, %v", got, err)
	}
	if _, err := DecodeSingle(s, 5); !errors.Is(err, ErrLimit) {
		t.Errorf("DecodeSingle with a 5-byte cap: %v, want a limit error", err)
	}
}
