package main

// These tests call the airlock command in process, as a user would run it,
// against the emulated YubiKey (pcscd + vpcd) and the TPM simulator and
// swtpm; nothing on the signing path is mocked.

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/piv/pivtest"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
	"airlock.dev/airlock/tuf"
)

type result struct {
	code           int
	stdout, stderr string
}

func airlock(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// mustRun runs airlock and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := airlock(t, args...)
	if r.code != 0 {
		t.Fatalf("airlock %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// mustFail runs airlock, wants exit status code and a message on stderr
// containing want.
func mustFail(t *testing.T, code int, want string, args ...string) result {
	t.Helper()
	r := airlock(t, args...)
	// The error is the last line of stderr, after any progress lines.
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code != code || !strings.Contains(last, want) || !strings.HasPrefix(last, "airlock ") {
		t.Fatalf("airlock %s: exit %d, stderr %q; want exit %d and a last line with %q", strings.Join(args, " "), r.code, r.stderr, code, want)
	}
	return r
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseKey(t *testing.T, raw []byte) (*metadata.Key, string) {
	t.Helper()
	var k metadata.Key
	if err := json.Unmarshal(raw, &k); err != nil {
		t.Fatalf("key json: %v\n%s", err, raw)
	}
	id, err := tuf.KeyID(&k)
	if err != nil {
		t.Fatal(err)
	}
	return &k, id
}

func TestKeyYubiKey(t *testing.T) {
	env := pivtest.Start(t)
	ca, err := pivemu.NewAttestationCA()
	if err != nil {
		t.Fatal(err)
	}
	card, err := pivemu.New(pivemu.Config{Serial: 5150001, CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(card.Remove)
	env.Insert(t, card, 0)
	dir := t.TempDir()
	pinFile := writeFile(t, "pin", "123456\n", 0o600)
	rootsPEM := writeFile(t, "roots.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})), 0o644)

	t.Run("list", func(t *testing.T) {
		r := mustRun(t, "key", "list", "--json", "--tpm", tpmtest.Swtpm(t))
		var l listing
		if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
			t.Fatal(err)
		}
		want := []listedCard{{Serial: 5150001, Firmware: "5.7.2", URI: "yubikey:serial=5150001;slot=9c"}}
		if diff := cmp.Diff(want, l.YubiKeys, cmpIgnoreReader); diff != "" {
			t.Errorf("yubikeys (-want +got):\n%s", diff)
		}
		r = mustRun(t, "key", "list")
		if !strings.Contains(r.stdout, "serial 5150001  firmware 5.7.2") {
			t.Errorf("list output lacks the card:\n%s", r.stdout)
		}
	})

	keyFile := filepath.Join(dir, "alice.json")
	var firstID string
	t.Run("enroll", func(t *testing.T) {
		r := mustRun(t, "key", "enroll", "--kind", "yubikey", "--holder", "Alice Example", "--pin-file", pinFile, "--out", keyFile)
		k, id := parseKey(t, []byte(r.stdout))
		firstID = id
		onDisk, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(onDisk, []byte(r.stdout)) {
			t.Error("--out file differs from what was printed")
		}
		if tuf.Holder(k) != "Alice Example" || tuf.KeyKind(k) != hsm.KindYubiKey {
			t.Errorf("holder %q kind %q", tuf.Holder(k), tuf.KeyKind(k))
		}
		if att, err := tuf.Attestation(k); err != nil || att == nil || att.Format != hsm.AttestationYubiKeyPIV {
			t.Errorf("attestation %+v, %v", att, err)
		}
		if !strings.Contains(r.stderr, "Alice Example: touch your key yubikey:serial=5150001;slot=9c now") || !strings.Contains(r.stderr, id) {
			t.Errorf("stderr lacks the touch prompt naming holder and key, or the key id:\n%s", r.stderr)
		}
		// The same key, read from the card, is the same public key (its
		// attestation is signed afresh at each read, so the key ID differs).
		r = mustRun(t, "key", "public", "--key", "yubikey:serial=5150001;slot=9c")
		if got, _ := parseKey(t, []byte(r.stdout)); got.Value.PublicKey != k.Value.PublicKey {
			t.Errorf("key public %s, enrolled %s", got.Value.PublicKey, k.Value.PublicKey)
		}
	})

	t.Run("verify-attestation", func(t *testing.T) {
		r := mustRun(t, "key", "verify-attestation", keyFile, "--yubico-roots", rootsPEM,
			"--require-hardware", "--require-pin-always", "--require-touch-always", "--json")
		var rep attestationReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		want := &attest.Facts{Format: hsm.AttestationYubiKeyPIV, Hardware: true, Serial: 5150001, Firmware: "5.7.2", PINPolicy: "always", TouchPolicy: "always"}
		if diff := cmp.Diff(want, rep.Facts, cmpIgnoreIssuer); diff != "" {
			t.Errorf("facts (-want +got):\n%s", diff)
		}
		if rep.KeyID != firstID || rep.Holder != "Alice Example" {
			t.Errorf("report %+v", rep)
		}
		r = mustRun(t, "key", "verify-attestation", "--yubico-roots", rootsPEM, keyFile)
		for _, want := range []string{"serial:       5150001", "pin policy:   always", "touch policy: always", "firmware:     5.7.2"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("text output lacks %q:\n%s", want, r.stdout)
			}
		}
		// Without the emulator's CA the chain leads to no trusted root; the
		// refusal names the chain and what was trusted.
		r = mustFail(t, 1, "attestation does not verify", "key", "verify-attestation", keyFile, "--require-hardware")
		for _, want := range []string{"reaches no trusted root", `issued by "CN=Airlock Test PIV Attestation Root`, "trusted: yubico's shipped piv attestation roots"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("refusal lacks %q: %s", want, r.stderr)
			}
		}
		// --attestation-root trusts the emulator's CA besides Yubico's roots.
		r = mustRun(t, "key", "verify-attestation", keyFile, "--attestation-root", rootsPEM, "--require-hardware", "--require-touch-always")
		if !strings.Contains(r.stdout, "verified to "+ca.Root.Subject.String()) {
			t.Errorf("verified with --attestation-root:\n%s", r.stdout)
		}
	})

	t.Run("overwrite needs the flag", func(t *testing.T) {
		before := card.Signatures()
		mustFail(t, 1, "--really-overwrite-slot", "key", "enroll", "--kind", "yubikey", "--pin-file", pinFile)
		if card.Signatures() != before {
			t.Error("a refused enrolment used the card")
		}
		// Destroying the key needs the serial typed, even in automation.
		mustFail(t, 1, "--confirm-serial 5150002 is not this card's serial", "key", "enroll", "--kind", "yubikey", "--really-overwrite-slot", "--confirm-serial", "5150002", "--pin-file", pinFile)
		if card.Signatures() != before {
			t.Error("an unconfirmed overwrite used the card")
		}
		r := mustRun(t, "key", "enroll", "--kind", "yubikey", "--serial", "5150001", "--holder", "Alice Example", "--really-overwrite-slot", "--confirm-serial", "5150001", "--pin-file", pinFile)
		if _, id := parseKey(t, []byte(r.stdout)); id == firstID {
			t.Error("overwriting enrolment kept the old key")
		}
	})

	t.Run("wrong pin is tried once", func(t *testing.T) {
		wrong := writeFile(t, "pin", "999999\n", 0o600)
		before := card.PINRetries()
		mustFail(t, 1, "wrong pin", "key", "enroll", "--kind", "yubikey", "--really-overwrite-slot", "--confirm-serial", "5150001", "--pin-file", wrong)
		if got := card.PINRetries(); got != before-1 {
			t.Errorf("retries %d after one wrong pin, want %d", got, before-1)
		}
		// The right PIN resets the counter.
		mustRun(t, "key", "enroll", "--kind", "yubikey", "--really-overwrite-slot", "--confirm-serial", "5150001", "--pin-file", pinFile)
		if got := card.PINRetries(); got != before {
			t.Errorf("retries %d after the right pin, want %d", got, before)
		}
	})
}

func TestKeyYubiKeyTouchNever(t *testing.T) {
	env := pivtest.Start(t)
	ca, err := pivemu.NewAttestationCA()
	if err != nil {
		t.Fatal(err)
	}
	card, err := pivemu.New(pivemu.Config{Serial: 5150002, CA: ca, ForceTouchPolicy: pivemu.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(card.Remove)
	env.Insert(t, card, 1)
	pinFile := writeFile(t, "pin", "123456", 0o600)
	rootsPEM := writeFile(t, "roots.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})), 0o644)
	keyFile := filepath.Join(t.TempDir(), "k.json")
	mustRun(t, "key", "enroll", "--kind", "yubikey", "--pin-file", pinFile, "--out", keyFile)
	r := mustRun(t, "key", "verify-attestation", keyFile, "--yubico-roots", rootsPEM, "--require-hardware", "--require-pin-always")
	if !strings.Contains(r.stdout, "touch policy: never") {
		t.Errorf("output lacks touch policy never:\n%s", r.stdout)
	}
	mustFail(t, 1, `touch policy always, key has "never"`, "key", "verify-attestation", keyFile, "--yubico-roots", rootsPEM, "--require-touch-always")
}

func testTPMKey(t *testing.T, dev string) {
	dir := t.TempDir()
	pinFile := writeFile(t, "pin", "correct horse\n", 0o600)
	keyFile := filepath.Join(dir, "bob.json")
	r := mustRun(t, "key", "enroll", "--kind", "tpm", "--tpm-device", dev, "--holder", "Bob Example", "--pcrs", "0,7", "--pin-file", pinFile, "--out", keyFile)
	k, id := parseKey(t, []byte(r.stdout))
	if tuf.Holder(k) != "Bob Example" || tuf.KeyKind(k) != hsm.KindTPM {
		t.Errorf("holder %q kind %q", tuf.Holder(k), tuf.KeyKind(k))
	}
	uri := "tpm:handle=0x81000010;device=" + dev

	r = mustRun(t, "key", "list", "--tpm", dev, "--json")
	var l listing
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, tk := range l.TPMKeys {
		if tk.Handle == "0x81000010" {
			found = true
			want := listedTPM{Handle: "0x81000010", URI: uri, Airlock: true, Holder: "Bob Example", PCRs: []int{0, 7}, Note: "airlock signing key"}
			if diff := cmp.Diff(want, tk); diff != "" {
				t.Errorf("listed key (-want +got):\n%s", diff)
			}
		}
	}
	if !found {
		t.Errorf("list does not show the enrolled key: %s", r.stdout)
	}

	akFile := filepath.Join(dir, "ak.pem")
	r = mustRun(t, "key", "attestation-key", "--tpm", dev, "--out", akFile)
	if !strings.HasPrefix(r.stdout, "-----BEGIN PUBLIC KEY-----") || !strings.Contains(r.stderr, "tpm-ak:sha256:") {
		t.Errorf("attestation-key printed %q / %q", r.stdout, r.stderr)
	}
	r = mustRun(t, "key", "verify-attestation", keyFile, "--tpm-ak", akFile, "--require-hardware", "--require-pin-always", "--require-touch-always", "--json")
	var rep attestationReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	want := &attest.Facts{Format: hsm.AttestationTPM2Certify, Hardware: true, PINPolicy: "always", PCRs: []int{0, 7}}
	if diff := cmp.Diff(want, rep.Facts, cmpIgnoreIssuer); diff != "" {
		t.Errorf("facts (-want +got):\n%s", diff)
	}
	if rep.KeyID != id {
		t.Errorf("report key id %s, want %s", rep.KeyID, id)
	}
	mustFail(t, 1, "is not trusted", "key", "verify-attestation", keyFile, "--require-hardware")

	// The key opens by URI and is the same key.
	r = mustRun(t, "key", "public", "--key", uri)
	if got, _ := parseKey(t, []byte(r.stdout)); got.Value.PublicKey != k.Value.PublicKey {
		t.Errorf("key public %s, enrolled %s", got.Value.PublicKey, k.Value.PublicKey)
	}
	// The handle is taken now.
	mustFail(t, 1, "choose another with --handle", "key", "enroll", "--kind", "tpm", "--tpm-device", dev, "--pin-file", pinFile)
}

func TestKeyTPMSimulator(t *testing.T) { testTPMKey(t, tpmtest.Simulator(t)) }

func TestKeyTPMSwtpm(t *testing.T) { testTPMKey(t, tpmtest.Swtpm(t)) }

func TestKeyUsageAndRefusals(t *testing.T) {
	dir := t.TempDir()
	pinFile := writeFile(t, "pin", "123456", 0o600)
	devKey := filepath.Join(dir, "dev.pem")
	r := mustRun(t, "key", "generate", "--dev", "--holder", "carol", "--out", devKey)
	devJSON := filepath.Join(dir, "dev.json")
	if err := os.WriteFile(devJSON, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{2, "--kind yubikey or --kind tpm is required", []string{"key", "enroll"}},
		{2, `--kind "hsm"`, []string{"key", "enroll", "--kind", "hsm"}},
		{2, "--pcrs", []string{"key", "enroll", "--kind", "tpm", "--pcrs", "0,24"}},
		{2, "given twice", []string{"key", "enroll", "--kind", "tpm", "--pcrs", "7,7"}},
		{2, "--handle", []string{"key", "enroll", "--kind", "tpm", "--handle", "nope"}},
		{2, "not a persistent handle", []string{"key", "enroll", "--kind", "tpm", "--handle", "0x80000001", "--pin-file", pinFile}},
		{2, "--pcrs is for --kind tpm", []string{"key", "enroll", "--kind", "yubikey", "--pcrs", "0"}},
		{2, "--serial is for --kind yubikey", []string{"key", "enroll", "--kind", "tpm", "--serial", "1"}},
		{2, "want one KEY.json", []string{"key", "verify-attestation"}},
		{2, "want --tpm DEVICE", []string{"key", "attestation-key"}},
		{2, "unknown key subcommand", []string{"key", "frobnicate"}},
		{1, "policy requires a hardware key", []string{"key", "verify-attestation", devJSON, "--require-hardware"}},
		{1, "not a TUF public key", []string{"key", "verify-attestation", pinFile}},
		{1, "pin file", []string{"key", "enroll", "--kind", "tpm", "--pin-file", filepath.Join(dir, "missing")}},
		{1, "tpm device", []string{"key", "list", "--tpm", "tcp:127.0.0.1:1"}},
	} {
		mustFail(t, tc.code, tc.want, tc.args...)
	}
	// A software key passes verification without a policy, and says what it is.
	r = mustRun(t, "key", "verify-attestation", devJSON)
	if !strings.Contains(r.stdout, "attestation:  none") {
		t.Errorf("output: %s", r.stdout)
	}
}

func TestFilePrompterNeverRetries(t *testing.T) {
	var errb bytes.Buffer
	p, err := newFilePrompter(writeFile(t, "pin", "123456\r\nignored\n", 0o644), &errb)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "readable by everyone") {
		t.Errorf("no warning for a world-readable pin file: %q", errb.String())
	}
	u := hsm.URI{Kind: hsm.KindYubiKey, Serial: 1, Slot: "9c"}
	for _, retries := range []int{3, 3, -1} {
		pin, err := p.PIN(context.Background(), hsm.PINRequest{URI: u, Retries: retries})
		if err != nil || string(pin) != "123456" {
			t.Fatalf("PIN(retries %d) = %q, %v", retries, pin, err)
		}
	}
	if _, err := p.PIN(context.Background(), hsm.PINRequest{URI: u, Retries: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.PIN(context.Background(), hsm.PINRequest{URI: u, Retries: 2}); err == nil {
		t.Fatal("the file's pin was offered again after the device refused it")
	}
}

func FuzzParsePINFile(f *testing.F) {
	for _, s := range []string{"123456\n", "123456\r\n", "", "\n", "a\x00b", strings.Repeat("9", 300), "pin\nsecond"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pin, err := parsePINFile(raw)
		if err != nil {
			return
		}
		if len(pin) == 0 || len(pin) > maxPINFileBytes || bytes.ContainsAny(pin, "\r\n\x00") {
			t.Fatalf("parsePINFile(%q) = %q", raw, pin)
		}
	})
}

func FuzzParsePCRs(f *testing.F) {
	for _, s := range []string{"", "0", "0,7", "7,7", "24", "-1", "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23", "a", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pcrs, err := parsePCRs(s)
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, p := range pcrs {
			if p < 0 || p > maxPCR || seen[p] {
				t.Fatalf("parsePCRs(%q) = %v", s, pcrs)
			}
			seen[p] = true
		}
	})
}

var (
	cmpIgnoreReader = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Reader" }, cmp.Ignore())
	cmpIgnoreIssuer = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Issuer" }, cmp.Ignore())
)
