package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"airlock.dev/airlock/internal/appdemo"
	"airlock.dev/airlock/tuf"
)

func TestParseKeyList(t *testing.T) {
	got, err := parseKeyList([]byte("# holders\n\n  tpm:handle=0x81000010  \nyubikey:serial=12345678;slot=9c\n"))
	if err != nil || strings.Join(got, ",") != "tpm:handle=0x81000010,yubikey:serial=12345678;slot=9c" {
		t.Fatalf("got %q %v", got, err)
	}
	many := strings.Repeat("x", maxKeyListBytes+1)
	var lots strings.Builder
	for i := range maxKeyListKeys + 1 {
		lots.WriteString("tpm:handle=0x8100" + strings.Repeat("0", 2) + string(rune('a'+i/16)) + string("0123456789abcdef"[i%16]) + "\n")
	}
	for _, c := range []struct{ in, want string }{
		{"", "names no key"},
		{"# only a comment\n\n", "names no key"},
		{"tpm:handle=0x81000010\nbogus\n", "key list line 2:"},
		{"tpm:handle=0x81000010\n# x\ntpm:handle=0x81000010\n", "key list line 3: tpm:handle=0x81000010 repeats line 1"},
		{many, "over the 8192-byte cap"},
		{lots.String(), "more than 32 keys"},
	} {
		if _, err := parseKeyList([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.40q: got %v, want an error with %q", c.in, err, c.want)
		}
	}
}

func FuzzParseKeyList(f *testing.F) {
	f.Add([]byte("tpm:handle=0x81000010\nyubikey:serial=12345678;slot=9c\n"))
	f.Add([]byte("# c\n\nfile:alice.pem\n"))
	f.Add([]byte("tpm:handle=0x81000010;device=unix:/tmp/s\ntpm:handle=0x81000010;device=unix:/tmp/s\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseKeyList(b)
		if err != nil {
			return
		}
		if len(keys) == 0 || len(keys) > maxKeyListKeys {
			t.Fatalf("%d keys accepted", len(keys))
		}
		again, err := parseKeyList([]byte(strings.Join(keys, "\n")))
		if err != nil || strings.Join(again, "\n") != strings.Join(keys, "\n") {
			t.Fatalf("canonical list %q does not parse to itself: %q %v", keys, again, err)
		}
	})
}

// init-state --key provisions the holders' keys; the terminal ui started
// without --key (as the appliance image starts it) takes them from the
// state, refuses a state without them, and needs no --out when
// --export-usb is given.
func TestInitStateKeysForTheTUI(t *testing.T) {
	d, err := appdemo.Prepare(filepath.Join(t.TempDir(), "demo"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(d.RepoDir, "metadata", "1.root.json")
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"airlock_policy":1,"roles":{"sigstore":{}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runIt := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, &out, &errb)
		return code, out.String(), errb.String()
	}
	initArgs := func(state string, keys ...string) []string {
		a := []string{"init-state", "--state", state, "--root", root, "--policy", policy, "--trusted-root", "testdata/trusted_root.json"}
		for _, k := range keys {
			a = append(a, "--key", k)
		}
		return a
	}
	bad := filepath.Join(dir, "bad")
	code, _, stderr := runIt(initArgs(bad, "tpm:handle=0x81000010", "tpm:handle=0x81000010")...)
	if code != 2 || !strings.Contains(stderr, "--key: key list line 2: tpm:handle=0x81000010 repeats line 1") {
		t.Fatalf("a repeated --key: %d %q", code, stderr)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Fatal("a refused init-state created the state directory")
	}

	state := filepath.Join(dir, "state")
	if code, _, stderr := runIt(initArgs(state, "tpm:handle=0x81000010", "yubikey:serial=12345678;slot=9c")...); code != 0 {
		t.Fatalf("init-state --key: %d %s", code, stderr)
	}
	fi, err := os.Stat(filepath.Join(state, keysFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys.txt: %v %v", fi, err)
	}
	keys, err := stateKeys(state)
	if err != nil || strings.Join(keys, " ") != "tpm:handle=0x81000010 yubikey:serial=12345678;slot=9c" {
		t.Fatalf("state keys %q %v", keys, err)
	}
	// The keys came from the state and --export-usb stands in for --out:
	// the run gets as far as wanting a terminal.
	code, _, stderr = runIt("--state", state, "--export-usb", askUSB)
	if code != 1 || !strings.Contains(stderr, "the terminal ui needs a terminal on stdin") {
		t.Fatalf("ui with provisioned keys: %d %q", code, stderr)
	}
	code, _, stderr = runIt("--state", state)
	if code != 2 || !strings.Contains(stderr, "--out or --export-usb") {
		t.Fatalf("ui without --out or --export-usb: %d %q", code, stderr)
	}

	// A state without keys.txt, and one whose list holds a software key.
	plain := filepath.Join(dir, "plain")
	if code, _, stderr := runIt(initArgs(plain)...); code != 0 {
		t.Fatalf("init-state: %d %s", code, stderr)
	}
	code, _, stderr = runIt("--state", plain, "--export-usb", askUSB)
	if code != 1 || !strings.Contains(stderr, "no --key given and "+filepath.Join(plain, keysFile)+" does not exist") {
		t.Fatalf("ui without keys: %d %q", code, stderr)
	}
	if err := writeStateKeys(plain, []string{"file:alice.pem"}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runIt("--state", plain, "--export-usb", askUSB)
	if code != 2 || !strings.Contains(stderr, "software keys sign only with --dev") {
		t.Fatalf("ui with a provisioned software key: %d %q", code, stderr)
	}
	// --reprovision replaces the list.
	code, _, stderr = runIt(append(initArgs(plain, "tpm:handle=0x81000011"), "--reprovision")...)
	if code != 0 {
		t.Fatalf("reprovision --key: %d %q", code, stderr)
	}
	if keys, err := stateKeys(plain); err != nil || strings.Join(keys, " ") != "tpm:handle=0x81000011" {
		t.Fatalf("keys after reprovision %q %v", keys, err)
	}
}

// With --export-usb and no --out, the response goes only to the stick.
func TestTUIExportOnlyToUSB(t *testing.T) {
	img := filepath.Join(t.TempDir(), "out.img")
	if o, err := exec.Command("mkfs.vfat", "-F", "32", "-n", "TRANSFER", "-C", img, "40960").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat (dosfstools, installed by scripts/install-test-deps.sh): %v %s", err, o)
	}
	s := startSim(t, func(r *tuiRun, _ *appdemo.Demo) { r.out, r.exportUSB = "", img })
	s.approveAll()
	screen := s.wait("SIGNED")
	if !strings.Contains(screen, "out.img:/") {
		t.Fatalf("the done screen does not name the stick:\n%s", screen)
	}
	s.key(tcell.KeyEnter)
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.demo.Out); err == nil {
		t.Fatalf("a response folder %s was written without --out", s.demo.Out)
	}
	got := filepath.Join(t.TempDir(), "got")
	if o, err := exec.Command("mcopy", "-s", "-i", img, "::", got).CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v %s", err, o)
	}
	found, _ := filepath.Glob(filepath.Join(got, "*", "response.json"))
	if len(found) != 1 {
		t.Fatalf("response.json on the stick: %v", found)
	}
	b, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	if r, err := tuf.ParseResponse(b); err != nil || len(r.Signatures) != 2 {
		t.Fatalf("response %+v %v", r, err)
	}
}
