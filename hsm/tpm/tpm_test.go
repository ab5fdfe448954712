package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-tpm/tpm2"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/hsmtest"
	"airlock.dev/airlock/hsm/tpm"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
)

const (
	testHandle = 0x81000010
	testPIN    = "246810"
	testHolder = "Ada Lovelace"
)

// devices are the TPMs every test runs against.
var devices = []struct {
	name string
	open func(testing.TB) string
}{
	{"simulator", tpmtest.Simulator},
	{"swtpm", tpmtest.Swtpm},
	{"swtpm-unix", tpmtest.SwtpmUnix},
}

func forEachDevice(t *testing.T, f func(t *testing.T, dev string)) {
	for _, d := range devices {
		t.Run(d.name, func(t *testing.T) { f(t, d.open(t)) })
	}
}

func enroll(t testing.TB, dev string, handle uint32, pcrs []int) *tpm.Enrollment {
	t.Helper()
	e, err := tpm.Enroll(context.Background(), dev, tpm.EnrollOptions{
		Handle: handle, PIN: []byte(testPIN), PCRs: pcrs, Holder: testHolder,
	})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return e
}

func open(t testing.TB, uri hsm.URI, pins ...string) (hsm.Signer, *hsmtest.ScriptedPrompter) {
	t.Helper()
	p := &hsmtest.ScriptedPrompter{}
	for _, pin := range pins {
		p.PINs = append(p.PINs, []byte(pin))
	}
	s, err := hsm.Open(context.Background(), uri, p)
	if err != nil {
		t.Fatalf("hsm.Open(%s): %v", uri, err)
	}
	t.Cleanup(func() { s.(hsm.Closer).Close() })
	return s, p
}

func sign(s crypto.Signer, msg string) ([]byte, error) {
	d := sha256.Sum256([]byte(msg))
	return s.Sign(rand.Reader, d[:], crypto.SHA256)
}

func TestSignerConformance(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev string) {
		e := enroll(t, dev, testHandle, nil)
		hsmtest.RunSignerTests(t, func(t *testing.T) hsm.Signer {
			// Enough PINs for every signature a subtest makes.
			s, _ := open(t, e.URI, testPIN, testPIN, testPIN)
			return s
		})
	})
}

func TestEnrollSignVerify(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev string) {
		e := enroll(t, dev, testHandle, nil)
		if e.URI.String() != "tpm:handle=0x81000010;device="+dev {
			t.Errorf("URI = %s", e.URI)
		}
		s, p := open(t, e.URI, testPIN)
		if s.Holder() != testHolder {
			t.Errorf("Holder() = %q, want %q", s.Holder(), testHolder)
		}
		if !s.Public().(*ecdsa.PublicKey).Equal(e.Public) {
			t.Fatal("opened key's public key differs from the enrolled one")
		}
		sig, err := sign(s, "release v1.2.3")
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		d := sha256.Sum256([]byte("release v1.2.3"))
		if !ecdsa.VerifyASN1(e.Public.(*ecdsa.PublicKey), d[:], sig) {
			t.Fatal("signature does not verify")
		}
		if len(p.Asked) != 1 {
			t.Fatalf("asked for the pin %d times, want 1", len(p.Asked))
		}
		if diff := cmp.Diff(hsm.PINRequest{URI: e.URI, Holder: testHolder, Retries: p.Asked[0].Retries}, p.Asked[0]); diff != "" {
			t.Errorf("PIN request (-want +got):\n%s", diff)
		}
		if p.Asked[0].Retries <= 0 {
			t.Errorf("retries shown = %d, want the tpm's count of tries left", p.Asked[0].Retries)
		}
		// The PIN is asked for again at the next signature: never kept.
		if _, err := sign(s, "again"); !errors.Is(err, hsm.ErrCancelled) {
			t.Fatalf("second Sign with no PIN to give: %v, want ErrCancelled", err)
		}
		s.(hsm.Closer).Close()
		if _, err := sign(s, "closed"); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Sign after Close: %v", err)
		}
	})
}

func TestWrongPIN(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev string) {
		e := enroll(t, dev, testHandle, nil)
		tpmtest.SetDictionaryAttack(t, dev, 5, 1000, 1000)
		s, p := open(t, e.URI, "000000", testPIN)
		_, err := sign(s, "x")
		var wrong *hsm.WrongPINError
		if !errors.As(err, &wrong) {
			t.Fatalf("Sign with a wrong PIN: %v, want *hsm.WrongPINError", err)
		}
		if !errors.Is(err, tpm2.TPMRCAuthFail) {
			t.Errorf("error %v does not wrap TPM_RC_AUTH_FAIL", err)
		}
		t.Logf("wrong pin: %v", err)
		if wrong.Retries != 4 {
			t.Errorf("retries after one wrong PIN = %d, want 4", wrong.Retries)
		}
		if strings.Contains(err.Error(), "000000") {
			t.Errorf("error echoes the PIN: %v", err)
		}
		// The back end does not retry by itself: the next Sign asks again.
		if _, err := sign(s, "x"); err != nil {
			t.Fatalf("Sign with the right PIN after a wrong one: %v", err)
		}
		if got := []int{p.Asked[0].Retries, p.Asked[1].Retries}; !cmp.Equal(got, []int{5, 4}) {
			t.Errorf("retries shown = %v, want [5 4]", got)
		}
	})
}

func TestLockout(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev string) {
		e := enroll(t, dev, testHandle, nil)
		tpmtest.SetDictionaryAttack(t, dev, 2, 1000, 1000)
		s, p := open(t, e.URI, "111111", "222222", testPIN)
		if _, err := sign(s, "x"); !errors.As(err, new(*hsm.WrongPINError)) {
			t.Fatalf("first wrong PIN: %v", err)
		}
		_, err := sign(s, "x")
		if !errors.Is(err, hsm.ErrPINBlocked) || !errors.Is(err, tpm2.TPMRCAuthFail) {
			t.Fatalf("last wrong PIN: %v, want ErrPINBlocked over TPM_RC_AUTH_FAIL", err)
		}
		// Locked out: the holder is not even asked, and is told what to do.
		_, err = sign(s, "x")
		if !errors.Is(err, hsm.ErrPINBlocked) {
			t.Fatalf("Sign in lockout: %v, want ErrPINBlocked", err)
		}
		t.Logf("lockout: %v", err)
		for _, want := range []string{"locked out", "wait", "reset the lockout"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("lockout error %q does not say %q", err, want)
			}
		}
		if len(p.Asked) != 2 {
			t.Errorf("asked for the PIN %d times, want 2 (not in lockout)", len(p.Asked))
		}
		// The owner clears the lockout; the right PIN signs again.
		tpmtest.ResetLockout(t, dev)
		if _, err := sign(s, "x"); err != nil {
			t.Fatalf("Sign after lockout reset: %v", err)
		}
	})
}

func TestPCRBound(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev string) {
		e := enroll(t, dev, testHandle, []int{7, 0})
		if diff := cmp.Diff([]int{0, 7}, e.PCRs); diff != "" {
			t.Errorf("PCRs (-want +got):\n%s", diff)
		}
		s, _ := open(t, e.URI, testPIN, testPIN, testPIN)
		if diff := cmp.Diff([]int{0, 7}, s.(*tpm.Signer).PCRs()); diff != "" {
			t.Errorf("opened key PCRs (-want +got):\n%s", diff)
		}
		if _, err := sign(s, "before"); err != nil {
			t.Fatalf("Sign before the PCR changed: %v", err)
		}
		d := sha256.Sum256([]byte("another boot stage"))
		tpmtest.ExtendPCR(t, dev, 7, d[:])
		_, err := sign(s, "after")
		if err == nil {
			t.Fatal("PCR-bound key signed after its PCR changed")
		}
		t.Logf("pcr changed: %v", err)
		if !errors.Is(err, tpm2.TPMRCPolicyFail) || !strings.Contains(err.Error(), "boot state changed") {
			t.Fatalf("Sign after PCR change: %v, want a boot-state error over TPM_RC_POLICY_FAIL", err)
		}
		if errors.As(err, new(*hsm.WrongPINError)) {
			t.Errorf("PCR mismatch reported as a wrong PIN: %v", err)
		}
	})
}

func TestListAndDelete(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev string) {
		a := enroll(t, dev, 0x81000010, nil)
		b := enroll(t, dev, 0x81000011, []int{7})
		keys, err := tpm.List(context.Background(), dev)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		type row struct {
			Handle  uint32
			Airlock bool
			Holder  string
			PCRs    []int
		}
		var got []row
		for _, k := range keys {
			got = append(got, row{k.Handle, k.Airlock, k.Holder, k.PCRs})
			if k.Public == nil {
				t.Errorf("key 0x%08x has no public key", k.Handle)
			}
		}
		want := []row{
			{0x81000010, true, testHolder, nil},
			{0x81000011, true, testHolder, []int{7}},
			{tpm.AKHandle, false, "", nil},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("List (-want +got):\n%s", diff)
		}
		if !keys[0].Public.(*ecdsa.PublicKey).Equal(a.Public) || !keys[1].Public.(*ecdsa.PublicKey).Equal(b.Public) {
			t.Error("listed public keys differ from the enrolled ones")
		}
		if err := tpm.Delete(context.Background(), dev, 0x81000010); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := hsm.Open(context.Background(), a.URI, &hsmtest.ScriptedPrompter{}); !errors.Is(err, hsm.ErrNotFound) {
			t.Fatalf("Open after Delete: %v, want ErrNotFound", err)
		}
		// The handle is free again.
		enroll(t, dev, 0x81000010, nil)
	})
}

func TestEnrollRefuses(t *testing.T) {
	dev := tpmtest.Simulator(t)
	enroll(t, dev, testHandle, nil)
	for _, tc := range []struct {
		name string
		opts tpm.EnrollOptions
		want string
	}{
		{"handle in use", tpm.EnrollOptions{Handle: testHandle, PIN: []byte(testPIN)}, "already in use"},
		{"ak handle", tpm.EnrollOptions{Handle: tpm.AKHandle, PIN: []byte(testPIN)}, "attestation key"},
		{"handle out of range", tpm.EnrollOptions{Handle: 0x81800000, PIN: []byte(testPIN)}, "0x81000000"},
		{"short pin", tpm.EnrollOptions{Handle: 0x81000020, PIN: []byte("123")}, "want 6 to 32"},
		{"long pin", tpm.EnrollOptions{Handle: 0x81000020, PIN: make([]byte, 33)}, "want 6 to 32"},
		{"nul in pin", tpm.EnrollOptions{Handle: 0x81000020, PIN: []byte("123\x00456")}, "nul"},
		{"pcr out of range", tpm.EnrollOptions{Handle: 0x81000020, PIN: []byte(testPIN), PCRs: []int{24}}, "out of range"},
		{"pcr twice", tpm.EnrollOptions{Handle: 0x81000020, PIN: []byte(testPIN), PCRs: []int{7, 7}}, "twice"},
		{"control in holder", tpm.EnrollOptions{Handle: 0x81000020, PIN: []byte(testPIN), Holder: "a\x1b[2Jb"}, "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tpm.Enroll(context.Background(), dev, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Enroll: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	dev := tpmtest.Simulator(t)
	enroll(t, dev, testHandle, nil)
	p := &hsmtest.ScriptedPrompter{}
	if _, err := hsm.Open(context.Background(), hsm.URI{Kind: hsm.KindTPM, Handle: 0x81000042, Device: dev}, p); !errors.Is(err, hsm.ErrNotFound) {
		t.Errorf("Open of an empty handle: %v, want ErrNotFound", err)
	}
	// The attestation key is a key, but not an Airlock signing key.
	if _, err := hsm.Open(context.Background(), hsm.URI{Kind: hsm.KindTPM, Handle: tpm.AKHandle, Device: dev}, p); err == nil {
		t.Error("Open of the attestation key succeeded")
	}
	if _, err := hsm.Open(context.Background(), hsm.URI{Kind: hsm.KindTPM, Handle: testHandle, Device: "bogus"}, p); err == nil || !strings.Contains(err.Error(), "tcp:HOST:PORT") {
		t.Errorf("Open on an unknown device: %v", err)
	}
	if len(p.Asked) != 0 {
		t.Errorf("Open asked for a PIN")
	}
}

func TestAttestationKeyStable(t *testing.T) {
	dev := tpmtest.Simulator(t)
	ak1, err := tpm.AttestationKey(context.Background(), dev)
	if err != nil {
		t.Fatalf("AttestationKey: %v", err)
	}
	e := enroll(t, dev, testHandle, nil)
	ak2, err := tpm.AttestationKey(context.Background(), dev)
	if err != nil {
		t.Fatalf("AttestationKey: %v", err)
	}
	if !ak1.(*ecdsa.PublicKey).Equal(ak2) {
		t.Fatal("attestation key changed across enrolment")
	}
	akPub, err := tpm2.Unmarshal[tpm2.TPMTPublic](e.Attestation.AttestationKey)
	if err != nil {
		t.Fatal(err)
	}
	inAtt, err := tpm2.Pub(*akPub)
	if err != nil {
		t.Fatal(err)
	}
	if !ak1.(*ecdsa.PublicKey).Equal(inAtt) {
		t.Fatal("the attestation names another attestation key")
	}
}
