package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A root rotation to all-new keys through the CLI: airlock root builds the
// bundle, each old and new key holder signs, combine refuses a set that
// misses either threshold and writes root version 2 once both are met; the
// client follows it.
func TestRootRotationToAllNewKeysThroughTheCLI(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, who := range []string{"r1", "r2", "t1", "online", "n1", "n2", "n3"} {
		mustAirlock(t, "key", "generate", "--dev", "--holder", who, "--out", p(who+".pem"))
	}
	if err := os.WriteFile(p("n2.json"), []byte(mustAirlock(t, "key", "public", "--key", "file:"+p("n2.pem"))), 0o644); err != nil {
		t.Fatal(err)
	}
	mustAirlock(t, "init", "--repo", p("repo"), "--root-key", "file:"+p("r1.pem"), "--root-key", "file:"+p("r2.pem"),
		"--root-threshold", "2", "--targets-key", "file:"+p("t1.pem"), "--online-key", "file:"+p("online.pem"))

	// Usage mistakes are named.
	code, _, errOut := runCLI(t, "root", "--repo", p("repo"), "--role", "sigstore", "--out", p("x"))
	if code != 2 || !strings.Contains(errOut, "want root, targets, snapshot or timestamp") {
		t.Fatalf("root --role sigstore: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "root", "--repo", p("repo"), "--remove-key", "file:"+p("n1.pem"), "--out", p("x"))
	if code != 1 || !strings.Contains(errOut, "not a key of root") {
		t.Fatalf("root --remove-key of a stranger: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "root", "--repo", p("repo"), "--threshold", "3", "--out", p("x"))
	if code != 1 || !strings.Contains(errOut, "threshold 3 is above the 2 distinct usable keys") {
		t.Fatalf("root --threshold 3 of 2 keys: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "root", "--repo", p("repo"), "--add-key", "file:"+p("r1.pem"), "--out", p("x"))
	if code != 1 || !strings.Contains(errOut, "already a key of root") {
		t.Fatalf("root --add-key of a present key: exit %d: %s", code, errOut)
	}

	_, _, errOut = runCLI(t, "root", "--repo", p("repo"), "--remove-key", "file:"+p("r1.pem"), "--remove-key", "file:"+p("r2.pem"),
		"--add-key", "file:"+p("n1.pem"), "--add-key", p("n2.json"), "--add-key", "file:"+p("n3.pem"), "--threshold", "2",
		"--expires", "200d", "--out", p("rotate"))
	if !strings.Contains(errOut, "root version 2 (root 2-of-3, root 2-of-3") {
		t.Fatalf("airlock root: %s", errOut)
	}
	for _, who := range []string{"r1", "r2", "n1", "n3"} {
		mustAirlock(t, "sign", "--key", "file:"+p(who+".pem"), p("rotate"), "--out", p(who+".json"))
	}
	code, _, errOut = runCLI(t, "combine", "--dev", "--repo", p("repo"), p("rotate"), p("r1.json"), p("n1.json"), p("n3.json"))
	if code != 1 || !strings.Contains(errOut, "under the keys of version 1") {
		t.Fatalf("combine without the old threshold: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "combine", "--dev", "--repo", p("repo"), p("rotate"), p("r1.json"), p("r2.json"), p("n1.json"))
	if code != 1 || !strings.Contains(errOut, "under its own keys") {
		t.Fatalf("combine without the new threshold: exit %d: %s", code, errOut)
	}
	out := mustAirlock(t, "combine", "--dev", "--repo", p("repo"), p("rotate"), p("r1.json"), p("r2.json"), p("n1.json"), p("n3.json"))
	if !strings.Contains(out, "root version 2: 4 signatures") {
		t.Fatalf("combine: %s", out)
	}
	out = mustAirlock(t, "verify", "--root", p("repo/metadata/1.root.json"), "--repo", p("repo"))
	if !strings.Contains(out, "root version 2: trusted") {
		t.Fatalf("verify after the rotation: %s", out)
	}
	// The next rotation needs only the new keys.
	mustAirlock(t, "root", "--repo", p("repo"), "--expires", "300d", "--out", p("rotate2"))
	for _, who := range []string{"n2", "n3"} {
		mustAirlock(t, "sign", "--key", "file:"+p(who+".pem"), p("rotate2"), "--out", p(who+"-2.json"))
	}
	code, _, errOut = runCLI(t, "sign", "--key", "file:"+p("r1.pem"), p("rotate2"), "--out", p("r1-2.json"))
	if code != 1 || !strings.Contains(errOut, "not a key of role root") {
		t.Fatalf("an old root key signs root version 3: exit %d: %s", code, errOut)
	}
	mustAirlock(t, "combine", "--dev", "--repo", p("repo"), p("rotate2"), p("n2-2.json"), p("n3-2.json"))
	out = mustAirlock(t, "verify", "--root", p("repo/metadata/1.root.json"), "--repo", p("repo"))
	if !strings.Contains(out, "root version 3: trusted") {
		t.Fatalf("verify after the second rotation: %s", out)
	}
}
