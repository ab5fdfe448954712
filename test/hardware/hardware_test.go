// Package hardware_test is the end-to-end test of hardware-held release
// keys: a delegated role with threshold 2 whose keys are an emulated YubiKey
// (reached through piv-go, libpcsclite, pcscd and vsmartcard-vpcd) and a key
// in a swtpm TPM. A release signed by both holders is accepted by Airlock's
// own client, go-tuf and tuf-js; a release signed by one is refused by
// combine, and when it is published anyway, all three clients reject it.
package hardware_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/hsmtest"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
	"airlock.dev/airlock/internal/gotuf"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/internal/testrig"
	"airlock.dev/airlock/tuf"
)

const (
	yubiKeySerial = 7300001
	yubiKeyPIN    = testrig.YubiKeyPIN
	tpmPIN        = "tpm-pin-4821"
	tpmHandle     = 0x81000010
	role          = "release"
)

// tufjs fetches target with tuf-js; it returns the bytes, or the client's
// refusal.
func tufjs(t *testing.T, base, rootFile, target string) ([]byte, error) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (scripts/install-test-deps.sh installs it): %v", err)
	}
	script, err := filepath.Abs(filepath.Join("..", "interop", "tufjs-fetch.js"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "target")
	var stderr bytes.Buffer
	cmd := exec.Command(node, script, base, rootFile, target, out)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return nil, errors.New(strings.TrimSpace(stderr.String()))
		}
		t.Fatalf("tufjs-fetch.js: %v: %s", err, stderr.String())
	}
	return os.ReadFile(out)
}

func TestThresholdYubiKeyAndTPM(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	dir := t.TempDir()

	// The YubiKey holder: an emulated card with a throwaway attestation CA,
	// reached through pcscd and vpcd. The TPM holder: a key in a fresh
	// swtpm, and the TPM's attestation key pinned as an appliance does
	// when it is provisioned.
	h := testrig.Start(t, testrig.Config{Serial: yubiKeySerial, TPM: tpmtest.Swtpm, TPMHandle: tpmHandle, TPMPIN: tpmPIN})
	ca, ak := h.CA, h.TPMAK

	// Repository: development keys for root, targets and the online role;
	// the release role is delegated 2-of-2 to the two hardware keys.
	r := h.Repository(t, dir, now, tuf.DelegationSpec{Name: role, Paths: []string{"app/*"}, Terminating: true})
	repo, repoDir, onlineKey := r.Repository, r.Dir, r.Online

	ykPrompter := &hsmtest.ScriptedPrompter{PINs: testrig.PINs(testrig.YubiKeyPIN, 8)}
	tpmPrompter := &hsmtest.ScriptedPrompter{PINs: testrig.PINs(tpmPIN, 8)}
	yk := testrig.Open(t, h.YubiKeyURI, ykPrompter)
	tk := testrig.Open(t, h.TPMURI, tpmPrompter)

	t.Run("attestations in the delegation verify", func(t *testing.T) {
		d, err := repo.Delegation(role)
		if err != nil {
			t.Fatal(err)
		}
		if d.Threshold != 2 || len(d.KeyIDs) != 2 {
			t.Fatalf("delegation threshold %d with %d keys, want 2 of 2", d.Threshold, len(d.KeyIDs))
		}
		emulatorCA := x509.NewCertPool()
		emulatorCA.AddCert(ca.Root)
		opts := attest.Options{YubicoRoots: emulatorCA, TPMAttestationKeys: []crypto.PublicKey{ak}}
		policy := attest.Policy{RequireHardware: true, RequirePINAlways: true, RequireTouchAlways: true}
		var got []attest.Facts
		for _, id := range d.KeyIDs {
			k := d.Keys[id]
			att, err := tuf.Attestation(k)
			if err != nil || att == nil {
				t.Fatalf("key %s (%s): attestation %v, %v", id, tuf.Holder(k), att, err)
			}
			pub, err := k.ToPublicKey()
			if err != nil {
				t.Fatal(err)
			}
			f, err := attest.Verify(att, pub, opts)
			if err != nil {
				t.Fatalf("key %s (%s): %v", id, tuf.Holder(k), err)
			}
			if err := policy.Check(f); err != nil {
				t.Errorf("key %s (%s): %v", id, tuf.Holder(k), err)
			}
			// Neither attestation verifies without its own trust anchor:
			// the emulator CA is not Yubico's, and the AK is not pinned.
			if _, err := attest.Verify(att, pub, attest.Options{}); err == nil {
				t.Errorf("key %s (%s) verified without the emulator CA or pinned AK", id, tuf.Holder(k))
			}
			f.Issuer = ""
			got = append(got, *f)
		}
		want := []attest.Facts{
			{Format: hsm.AttestationYubiKeyPIV, Hardware: true, Serial: yubiKeySerial, Firmware: "5.7.2", PINPolicy: "always", TouchPolicy: "always"},
			{Format: hsm.AttestationTPM2Certify, Hardware: true, PINPolicy: "always"},
		}
		sortFacts(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("attested facts (-want +got):\n%s", diff)
		}
	})

	artifacts := filepath.Join(dir, "ci")
	if err := os.Mkdir(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	attempt := 0
	bundle := func(t *testing.T, version string) (string, *tuf.Request, []byte) {
		t.Helper()
		data := []byte(strings.Repeat("app "+version+" release bytes\n", 300))
		file := filepath.Join(artifacts, "app-"+version+".tgz")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := online.CreateBundle(repo, online.BundleOptions{Role: role, Now: now, Add: []online.FileArg{{File: file, Target: "app/app-" + version + ".tgz"}}})
		if err != nil {
			t.Fatal(err)
		}
		attempt++
		bdir := filepath.Join(dir, "bundle-"+version+"-"+string(rune('a'+attempt)))
		if err := b.WriteDir(bdir); err != nil {
			t.Fatal(err)
		}
		return bdir, b.Request, data
	}
	sign := func(t *testing.T, req *tuf.Request, s hsm.Signer) *tuf.Response {
		t.Helper()
		r, err := online.Sign(req, []hsm.Signer{s}, now)
		if err != nil {
			t.Fatalf("sign with %s: %v", s.URI(), err)
		}
		return r
	}

	rootFile := r.RootFile
	rootBytes, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want 127.0.0.1", srv.URL)
	}

	t.Run("signed by both verifies everywhere", func(t *testing.T) {
		bdir, req, data := bundle(t, "1.0.0")
		touches, asked := ykPrompter.Touches, len(tpmPrompter.Asked)
		resps := []*tuf.Response{sign(t, req, yk), sign(t, req, tk)}
		if ykPrompter.Touches != touches+1 {
			t.Errorf("yubikey signature raised %d touch prompts, want 1", ykPrompter.Touches-touches)
		}
		if len(tpmPrompter.Asked) != asked+1 || tpmPrompter.Asked[asked].Retries < 1 {
			t.Errorf("tpm pin prompts %+v, want one showing the retries left", tpmPrompter.Asked[asked:])
		}
		res, err := online.Combine(repo, bdir, resps, onlineKey, now)
		if err != nil {
			t.Fatalf("combine: %v", err)
		}
		if len(res.Signers) != 2 {
			t.Errorf("combined %d signers, want 2", len(res.Signers))
		}
		target := "app/app-1.0.0.tgz"
		c := &tuf.Client{Fetch: tuf.DirFetcher(repoDir), RefTime: now}
		if _, got, err := c.Verify(ctx, rootBytes, target); err != nil || !bytes.Equal(got, data) {
			t.Errorf("airlock client: %v (%d bytes)", err, len(got))
		}
		if got, err := gotuf.Fetch(srv.URL, rootBytes, target); err != nil || !bytes.Equal(got, data) {
			t.Errorf("go-tuf: %v (%d bytes)", err, len(got))
		}
		if got, err := tufjs(t, srv.URL, rootFile, target); err != nil || !bytes.Equal(got, data) {
			t.Errorf("tuf-js: %v (%d bytes)", err, len(got))
		}
	})

	t.Run("signed by one is refused", func(t *testing.T) {
		bdir, req, data := bundle(t, "2.0.0")
		for _, s := range []hsm.Signer{yk, tk} {
			_, err := online.Combine(repo, bdir, []*tuf.Response{sign(t, req, s)}, onlineKey, now)
			var te *tuf.ThresholdError
			if !errors.As(err, &te) {
				t.Fatalf("combine with only %s: %v, want a threshold error", s.URI(), err)
			}
		}

		// Publish the under-signed metadata anyway, bypassing combine: the
		// YubiKey's signature alone, the target stored, snapshot and
		// timestamp refreshed with the online key.
		p, err := req.Payload()
		if err != nil {
			t.Fatal(err)
		}
		d, err := repo.Delegation(role)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := tuf.SignPayload(d, yk, p.Canonical)
		if err != nil {
			t.Fatal(err)
		}
		p.Targets.Signatures = []metadata.Signature{sig}
		raw, err := p.Targets.ToBytes(true)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(repoDir, "metadata", strconv.FormatInt(p.Version, 10)+"."+role+".json")
		if err := os.WriteFile(name, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		target := "app/app-2.0.0.tgz"
		if err := repo.AddTargetFile(target, data); err != nil {
			t.Fatal(err)
		}
		if err := repo.Refresh(onlineKey, now); err != nil {
			t.Fatal(err)
		}

		c := &tuf.Client{Fetch: tuf.DirFetcher(repoDir), RefTime: now}
		_, _, err = c.Verify(ctx, rootBytes, target)
		var te *tuf.ThresholdError
		if !errors.As(err, &te) {
			t.Errorf("airlock client: %v, want a threshold error", err)
		}
		if _, err := gotuf.Fetch(srv.URL, rootBytes, target); err == nil {
			t.Error("go-tuf accepted a release signed by one of two holders")
		} else if !strings.Contains(err.Error(), "not enough signatures, got 1, want 2") {
			t.Errorf("go-tuf refused for another reason than the threshold: %v", err)
		}
		if _, err := tufjs(t, srv.URL, rootFile, target); err == nil {
			t.Error("tuf-js accepted a release signed by one of two holders")
		} else if !strings.Contains(err.Error(), "signed by 1/2 keys") {
			t.Errorf("tuf-js refused for another reason than the threshold: %v", err)
		}
	})
}

func sortFacts(fs []attest.Facts) {
	if len(fs) == 2 && fs[0].Format != hsm.AttestationYubiKeyPIV {
		fs[0], fs[1] = fs[1], fs[0]
	}
}
