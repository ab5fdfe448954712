package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/hsm/tpm/tpmtest"
)

// TestRepoCommandsTakePINFileAndRelativeOnlineKey: airlock init signs root
// with a TPM key whose PIN comes from --pin-file, and stores the online key
// relative to airlock-repo.json, so a later command run from another folder
// still finds it.
func TestRepoCommandsTakePINFileAndRelativeOnlineKey(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	if err := os.Mkdir("keys", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"t1", "online", "alice"} {
		mustRun(t, "key", "generate", "--dev", "--holder", who, "--out", filepath.Join("keys", who+".pem"))
	}
	dev := tpmtest.Simulator(t)
	pinFile := writeFile(t, "pin", "correct horse\n", 0o600)
	mustRun(t, "key", "enroll", "--kind", "tpm", "--tpm-device", dev, "--holder", "Root Holder", "--pin-file", pinFile, "--handle", "0x81000030")
	rootKey := "tpm:handle=0x81000030;device=" + dev
	// A PIN file that is not there is refused before any key is used.
	mustFail(t, 1, "pin file", "init", "--repo", "repo-nopin", "--root-key", rootKey, "--pin-file", filepath.Join(base, "nope"),
		"--targets-key", "file:keys/t1.pem", "--online-key", "file:keys/online.pem")
	mustRun(t, "init", "--repo", "repo", "--root-key", rootKey, "--pin-file", pinFile,
		"--targets-key", "file:keys/t1.pem", "--online-key", "file:keys/online.pem")
	cfg, err := os.ReadFile(filepath.Join("repo", "airlock-repo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), `"online_key": "file:../keys/online.pem"`) {
		t.Errorf("airlock-repo.json names the online key as:\n%s", cfg)
	}
	t.Chdir(t.TempDir())
	mustRun(t, "delegate", "--repo", filepath.Join(base, "repo"), "--sign-key", "file:"+filepath.Join(base, "keys", "t1.pem"),
		"--role", "proj", "--paths", "proj/*", "--key", "file:"+filepath.Join(base, "keys", "alice.pem"), "--threshold", "1")
}
