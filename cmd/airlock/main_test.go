package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// airlock runs the command in process and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustAirlock(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("airlock %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestReleaseFlowThroughTheCLI(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, who := range []string{"r1", "r2", "t1", "online", "alice", "bob", "carol"} {
		mustAirlock(t, "key", "generate", "--dev", "--holder", who, "--out", p(who+".pem"))
	}
	// carol's key goes in as a public key file, as a holder's enrolment would.
	if err := os.WriteFile(p("carol.json"), []byte(mustAirlock(t, "key", "public", "--key", "file:"+p("carol.pem"))), 0o644); err != nil {
		t.Fatal(err)
	}
	mustAirlock(t, "init", "--repo", p("repo"), "--root-key", "file:"+p("r1.pem"), "--root-key", "file:"+p("r2.pem"),
		"--root-threshold", "2", "--targets-key", "file:"+p("t1.pem"), "--online-key", "file:"+p("online.pem"))
	mustAirlock(t, "delegate", "--repo", p("repo"), "--sign-key", "file:"+p("t1.pem"), "--role", "proj", "--paths", "proj/*",
		"--key", "file:"+p("alice.pem"), "--key", "file:"+p("bob.pem"), "--key", p("carol.json"), "--threshold", "2",
		"--group", "core:1:#3")
	if err := os.WriteFile(p("pkg-1.0.0.tgz"), []byte("release bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustAirlock(t, "bundle", "create", "--repo", p("repo"), "--role", "proj", "--add", p("pkg-1.0.0.tgz")+"=proj/pkg-1.0.0.tgz", "--out", p("bundle"))
	mustAirlock(t, "sign", "--key", "file:"+p("alice.pem"), p("bundle"), "--out", p("alice.json"))
	mustAirlock(t, "sign", "--key", "file:"+p("bob.pem"), p("bundle"), "--out", p("bob.json"))
	mustAirlock(t, "sign", "--key", "file:"+p("carol.pem"), p("bundle"), "--out", p("carol-resp.json"))

	// Development responses are refused without --dev (TestCombineRefusesDevResponsesWithoutDev).
	code, _, errOut := runCLI(t, "combine", "--repo", p("repo"), p("bundle"), p("alice.json"), p("carol-resp.json"))
	if code != 1 || !strings.Contains(errOut, "response made with development keys") || !strings.Contains(errOut, "only with --dev") {
		t.Fatalf("combine of development responses without --dev: exit %d: %s", code, errOut)
	}
	// alice and bob meet the threshold but not the group that needs carol.
	code, _, errOut = runCLI(t, "combine", "--dev", "--repo", p("repo"), p("bundle"), p("alice.json"), p("bob.json"))
	if code != 1 || !strings.Contains(errOut, `approval group "core"`) {
		t.Fatalf("combine without the group: exit %d: %s", code, errOut)
	}
	// One holder twice is one signature.
	code, _, errOut = runCLI(t, "combine", "--dev", "--repo", p("repo"), p("bundle"), p("alice.json"), p("alice.json"))
	if code != 1 || !strings.Contains(errOut, "threshold is 2") {
		t.Fatalf("combine with one holder twice: exit %d: %s", code, errOut)
	}
	// The online side reads bundles with the appliance's rules: a link is refused.
	if err := os.Symlink("/etc/passwd", p("bundle/artifacts/passwd")); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "combine", "--dev", "--repo", p("repo"), p("bundle"), p("alice.json"), p("carol-resp.json"))
	if code != 1 || !strings.Contains(errOut, "artifacts/passwd") {
		t.Fatalf("combine of a bundle with a link: exit %d: %s", code, errOut)
	}
	os.Remove(p("bundle/artifacts/passwd"))
	out := mustAirlock(t, "combine", "--dev", "--repo", p("repo"), p("bundle"), p("alice.json"), p("carol-resp.json"))
	if !strings.Contains(out, "proj version 1: 2 signatures") {
		t.Fatalf("combine output: %s", out)
	}
	out = mustAirlock(t, "verify", "--root", p("repo/metadata/1.root.json"), "--repo", p("repo"), "--target", "proj/pkg-1.0.0.tgz", "--file", p("pkg-1.0.0.tgz"))
	if !strings.Contains(out, "bytes verified") {
		t.Fatalf("verify output: %s", out)
	}
	// A local file that differs from the target fails with exit 1.
	os.WriteFile(p("other.tgz"), []byte("other bytes"), 0o644)
	code, _, errOut = runCLI(t, "verify", "--root", p("repo/metadata/1.root.json"), "--repo", p("repo"), "--target", "proj/pkg-1.0.0.tgz", "--file", p("other.tgz"))
	if code != 1 || !strings.Contains(errOut, "differs from the signed target") {
		t.Fatalf("verify of another file: exit %d: %s", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{
		{},
		{"frobnicate"},
		{"init", "--repo"},
		{"key", "generate", "--out", "x.pem"},
		{"verify", "--root", "r.json"},
		{"delegate", "--repo", "r", "--role", "x", "--sign-key", "file:k", "--out", "b"},
		{"sign", "bundle"},
		{"gate"},
		{"gate", "--upstream", "ftp://127.0.0.1", "--online-key", "file:k"},
		{"gate", "wait", "--gate", "http://127.0.0.1:1", "not-a-stage-id"},
		{"gate", "submit", "--gate", "http://127.0.0.1:1", "11111111-2222-3333-4444-555555555555"},
		{"gate", "bundle", "--gate", "file:///x", "11111111-2222-3333-4444-555555555555", "--out", "b"},
		{"monitor", "--registry", "http://127.0.0.1:1"},
		{"monitor", "--registry", "http://127.0.0.1:1", "--tuf", "d", "--root", "r", "--package", "Bad Name"},
	}
	for _, args := range tests {
		code, _, errOut := runCLI(t, args...)
		if code != 2 {
			t.Errorf("airlock %v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
}

func TestKeyURIsCarryNoSecrets(t *testing.T) {
	code, _, errOut := runCLI(t, "sign", "--key", "yubikey:serial=1;pin=123456", "b", "--out", "r.json")
	if code != 2 || !strings.Contains(errOut, "secrets never go in a key uri") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
