package main

import (
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/piv/pivtest"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
)

func readStatus(t *testing.T, args ...string) statusReport {
	t.Helper()
	r := mustRun(t, append([]string{"key", "status", "--json"}, args...)...)
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	return rep
}

// TestKeyStatusAndPINYubiKey: airlock key status on the emulated card before
// and after enrolment (retries, management key as ykman sees it, slot,
// attestation to a root given with --attestation-root, and the refusal
// naming the chain without it), then pin change and unblock with the PUK.
func TestKeyStatusAndPINYubiKey(t *testing.T) {
	env := pivtest.Start(t)
	ca, err := pivemu.NewAttestationCA()
	if err != nil {
		t.Fatal(err)
	}
	card, err := pivemu.New(pivemu.Config{Serial: 5150003, CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(card.Remove)
	env.Insert(t, card, 0)
	pinFile := writeFile(t, "pin", "123456\n", 0o600)
	rootsPEM := writeFile(t, "roots.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})), 0o644)

	rep := readStatus(t, "--serial", "5150003")
	if len(rep.YubiKeys) != 1 {
		t.Fatalf("status lists %d cards, want 1", len(rep.YubiKeys))
	}
	c := rep.YubiKeys[0]
	if c.PINRetries != 3 || c.PINRetriesTotal != 3 || c.PUKRetries != 3 || c.ManagementKey.Default != "yes" || c.ManagementKey.StoredProtected || len(c.Slots) != 0 {
		t.Fatalf("factory card status %+v", c)
	}

	mustRun(t, "key", "enroll", "--kind", "yubikey", "--holder", "Alice Example", "--pin-file", pinFile)
	c = readStatus(t, "--serial", "5150003", "--attestation-root", rootsPEM).YubiKeys[0]
	if c.ManagementKey.Default != "no" || !c.ManagementKey.StoredProtected || c.ManagementKey.Algorithm != "AES192" {
		t.Errorf("management key after enrolment: %+v, want random AES192 stored pin-protected", c.ManagementKey)
	}
	if len(c.Slots) != 1 {
		t.Fatalf("slots %+v, want 9c", c.Slots)
	}
	s := c.Slots[0]
	if s.Slot != "9c" || s.Holder != "Alice Example" || !s.Generated || s.PINPolicy != "always" || s.TouchPolicy != "always" || s.Algorithm != "ECCP256" {
		t.Errorf("slot 9c: %+v", s)
	}
	if want := "verified to " + ca.Root.Subject.String(); s.Attestation != want {
		t.Errorf("attestation %q, want %q", s.Attestation, want)
	}
	// Without the root the attestation is refused, naming the chain and
	// what was trusted.
	s = readStatus(t, "--serial", "5150003").YubiKeys[0].Slots[0]
	for _, want := range []string{"refused: ", "reaches no trusted root", "trusted: yubico's shipped piv attestation roots", "issued by \"CN=Airlock Test PIV Attestation Root"} {
		if !strings.Contains(s.Attestation, want) {
			t.Errorf("attestation without the root: %q lacks %q", s.Attestation, want)
		}
	}
	r := mustRun(t, "key", "status", "--serial", "5150003", "--attestation-root", rootsPEM)
	for _, want := range []string{"pin:             3 of 3 tries left", "stored on the card behind the pin (ykman: protected by pin)", `holder "Alice Example"`, "attestation verified to"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status text lacks %q:\n%s", want, r.stdout)
		}
	}

	// pin change with the PIN; a wrong PIN is refused with the tries left.
	newPIN := writeFile(t, "new", "654321\n", 0o600)
	wrong := writeFile(t, "wrong", "999999\n", 0o600)
	mustFail(t, 1, "the current pin was refused, 2 tries left", "key", "pin", "change", "--pin-file", wrong, "--new-pin-file", newPIN)
	mustRun(t, "key", "pin", "change", "--pin-file", pinFile, "--new-pin-file", newPIN)
	if card.PINRetries() != 3 {
		t.Errorf("retries %d after the right pin", card.PINRetries())
	}
	// Block the PIN, then unblock it with the PUK.
	for range 3 {
		airlock(t, "key", "pin", "change", "--pin-file", wrong, "--new-pin-file", newPIN)
	}
	mustFail(t, 1, "pin blocked: set a new pin with the puk", "key", "pin", "change", "--pin-file", newPIN, "--new-pin-file", pinFile)
	mustFail(t, 1, "pin blocked", "key", "enroll", "--kind", "yubikey", "--really-overwrite-slot", "--confirm-serial", "5150003", "--pin-file", newPIN)
	wrongPUK := writeFile(t, "wrongpuk", "00000000\n", 0o600)
	puk := writeFile(t, "puk", "12345678\n", 0o600)
	mustFail(t, 1, "the puk was refused, 2 tries left", "key", "pin", "unblock", "--puk-file", wrongPUK, "--new-pin-file", pinFile)
	mustRun(t, "key", "pin", "unblock", "--puk-file", puk, "--new-pin-file", pinFile)
	c = readStatus(t, "--serial", "5150003").YubiKeys[0]
	if c.PINRetries != 3 || c.PUKRetries != 3 {
		t.Errorf("after unblock: pin %d puk %d tries left, want 3 and 3", c.PINRetries, c.PUKRetries)
	}
	// The unblocked PIN signs.
	mustRun(t, "key", "public", "--key", "yubikey:serial=5150003;slot=9c", "--pin-file", pinFile)
	mustFail(t, 2, "--puk-file is for airlock key pin unblock", "key", "pin", "change", "--puk-file", puk)
}

// TestKeyStatusTPM: airlock key status on the TPM simulator and swtpm.
func TestKeyStatusTPM(t *testing.T) {
	for name, dev := range map[string]func(testing.TB) string{"simulator": tpmtest.Simulator, "swtpm": tpmtest.Swtpm} {
		t.Run(name, func(t *testing.T) {
			d := dev(t)
			rep := readStatus(t, "--tpm", d)
			if rep.TPM == nil || rep.TPM.PINRetries <= 0 || rep.TPM.PINRetries != rep.TPM.PINRetriesTotal || rep.TPM.Manufacturer == "" || rep.TPM.Firmware == "" {
				t.Fatalf("tpm status %+v", rep.TPM)
			}
			pinFile := writeFile(t, "pin", "correct horse\n", 0o600)
			mustRun(t, "key", "enroll", "--kind", "tpm", "--tpm-device", d, "--holder", "Bob Example", "--pin-file", pinFile, "--handle", "0x81000020")
			rep = readStatus(t, "--tpm", d)
			if !strings.HasPrefix(rep.TPM.AttestationKey, "tpm-ak:sha256:") {
				t.Errorf("attestation key %q", rep.TPM.AttestationKey)
			}
			var found bool
			for _, k := range rep.TPM.Keys {
				found = found || (k.Handle == "0x81000020" && k.Holder == "Bob Example" && k.Airlock)
			}
			if !found {
				t.Errorf("status lacks the enrolled key: %+v", rep.TPM.Keys)
			}
			r := mustRun(t, "key", "status", "--tpm", d)
			if !strings.Contains(r.stdout, "shared by every key's pin") || !strings.Contains(r.stdout, `holder "Bob Example"`) {
				t.Errorf("status text:\n%s", r.stdout)
			}
		})
	}
}
